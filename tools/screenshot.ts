/**
 * Renders the live view in Debian's headless chromium and saves a PNG:
 *
 * ```sh
 * deno run -A tools/screenshot.ts                      # → docs/screenshot.png (1280×800)
 * deno run -A tools/screenshot.ts --dark --out=out/dark.png
 * deno run -A tools/screenshot.ts --width=390 --height=844 --out=out/phone.png
 * deno run -A tools/screenshot.ts --server=dworld --port=0 --out=out/dworld.png
 * ```
 *
 * It listens on 127.0.0.1:3000 (another free port when that one is taken).
 * The mock world's own activity is switched off and a few chat lines are sent
 * from here, so the picture is the same every time (except for clock times).
 *
 * @module
 */
/// <reference lib="dom" />
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { MockSource, WebSocketServer } from "../mod.ts";
import { launchBrowser, openPage, type PageProblem } from "../tests/_fixtures/browser.ts";

const USAGE = `Usage: deno task screenshot [options]

Starts a mock server, opens the live view in Debian's headless chromium and saves a PNG.
  --out=<file>        where to write it (default docs/screenshot.png)
  --width=<px>        viewport width (default 1280)
  --height=<px>       viewport height (default 800)
  --server=<id>       dworld, docs or repos (default repos)
  --port=<n>          port to listen on (default 3000; another free one when taken; 0: any)
  --dark              dark colour scheme
  -h, --help          print this help`;

function parse() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        out: { type: "string", default: "docs/screenshot.png" },
        width: { type: "string", default: "1280" },
        height: { type: "string", default: "800" },
        server: { type: "string", default: "repos" },
        port: { type: "string", default: "3000" },
        dark: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
}
const values = parse();
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

const DISCORD_IDS: Record<string, string> = {
  dworld: "232769614004748288",
  docs: "482241773318701056",
  repos: "987654321098765432",
};
const discordId = DISCORD_IDS[values.server];
if (!discordId) {
  console.error(
    `error: --server must be one of ${Object.keys(DISCORD_IDS).join(", ")}\n\n${USAGE}`,
  );
  Deno.exit(2);
}

// Hour-long intervals: no random activity while the picture is taken.
const mock = new MockSource({ presenceIntervalMs: 3_600_000, messageIntervalMs: 3_600_000 });
const newServer = (port: number) =>
  new WebSocketServer({
    port,
    hostname: "127.0.0.1",
    logLevel: "warn",
    source: mock,
  });
// The usual port makes a nicer socketURL in the picture; any free one will do.
let server = newServer(Number(values.port));
try {
  await server.start();
} catch (err) {
  if (!(err instanceof Deno.errors.AddrInUse)) throw err;
  server = newServer(0);
  await server.start();
}
const { browser, close } = await launchBrowser();
const problems: PageProblem[] = [];
try {
  const page = await openPage(browser, (p) => problems.push(p), {
    width: Number(values.width),
    height: Number(values.height),
  });
  await page.emulateMediaFeatures([
    { name: "prefers-color-scheme", value: values.dark ? "dark" : "light" },
  ]);
  await page.goto(`http://127.0.0.1:${server.port}/?s=${values.server}`);
  await page.waitForFunction(
    (id) => {
      const name = document.getElementById("server-name");
      return name?.dataset.server === id && document.querySelectorAll("#members .card").length > 0;
    },
    { polling: 50, timeout: 10_000 },
    values.server,
  );
  const users = Object.values(mock.getUserData(discordId));
  const say = (i: number, message: string) =>
    server.broadcastMessage({
      server: discordId,
      uid: users[i % users.length].uid!,
      message,
      channel: "527964146659229701",
    });
  // A little life: a few statuses and a short conversation.
  const statuses = ["idle", "dnd", "offline", "idle", "offline"] as const;
  statuses.forEach((status, n) => {
    const u = users[(n * 3 + 1) % users.length];
    server.broadcastPresence({ server: discordId, uid: u.uid!, status });
  });
  say(0, "hello");
  say(2, "how are you?");
  say(3, "D-Zone rocks!");
  say(1, "this is a test message");
  say(5, "what's up?");
  await page.waitForFunction(() => document.querySelectorAll("#feed .msg").length >= 5, {
    polling: 50,
    timeout: 10_000,
  });
  // Let the arrival animations finish; the last speaker stays highlighted.
  await new Promise((r) => setTimeout(r, 600));
  await Deno.mkdir(dirname(values.out), { recursive: true });
  await page.screenshot({ path: values.out as `${string}.png`, fullPage: true });
  console.log(`wrote ${values.out}`);
  if (problems.length) throw new Error(`the page reported problems: ${JSON.stringify(problems)}`);
} finally {
  await close();
  await server.stop();
}
