// The command line under Bun and Node: `bun run examples/main.ts`, `node examples/main.ts`,
// `deno run -A examples/main.ts --transport node`, and the single-file binary built by
// `deno task binary`, each started as a real process on port 0 and spoken to over a real WebSocket.
import assert from "node:assert/strict";
import { ensureBun, ensureNode, ROOT, whileListening } from "../_fixtures/runtimes.ts";
import { DWORLD, joined } from "../_fixtures/helpers.ts";

/** Start `cmd args`, wait until it listens, run `body`, then SIGTERM it: it must stop cleanly. */
async function withProcess(
  cmd: string,
  args: string[],
  body: (port: number) => Promise<void>,
): Promise<void> {
  const { code, out } = await whileListening(cmd, args, ROOT, body);
  assert.equal(code, 0, `exit status; output:\n${out}`);
  assert.match(out, /stopped/);
}

async function conversation(port: number): Promise<void> {
  const c = await joined(`ws://127.0.0.1:${port}`, "dworld");
  // The mock world runs at the flags' pace: a chat message arrives within 300 ms.
  const m = await c.nextOf("message", 5000);
  assert.equal(m.server, DWORLD);
  const page = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(await page.text(), /<html/i);
  const app = await fetch(`http://127.0.0.1:${port}/app.js`);
  assert.equal(app.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(await app.text(), await Deno.readTextFile(`${ROOT}public/app.js`));
  const version = await (await fetch(`http://127.0.0.1:${port}/api/version`)).json();
  assert.equal(typeof version.version, "string");
  await c.close();
}

const FLAGS = ["--port", "0", "--host", "127.0.0.1", "--message-interval", "300"];

Deno.test("bun run examples/main.ts serves the mock world with the same flags", async () => {
  await ensureBun();
  await withProcess("bun", ["run", "examples/main.ts", ...FLAGS], conversation);
});

Deno.test("node examples/main.ts serves the mock world with the same flags", async () => {
  await withProcess(await ensureNode(), ["examples/main.ts", ...FLAGS], conversation);
});

Deno.test("deno run examples/main.ts --transport node serves the mock world", async () => {
  await withProcess(
    Deno.execPath(),
    ["run", "-A", "examples/main.ts", ...FLAGS, "--transport", "node"],
    conversation,
  );
});

Deno.test("the single-file binary builds, serves the embedded live page and speaks the protocol", async () => {
  await ensureBun();
  const dir = await Deno.makeTempDir({ prefix: "dback-binary-" });
  try {
    const bin = `${dir}/dback`;
    const build = await new Deno.Command("deno", {
      args: ["run", "-A", "tools/build_binary.ts", bin],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(build.success, new TextDecoder().decode(build.stderr));
    // Its usage names the executable, not the commands that run the sources.
    const help = await new Deno.Command(bin, { args: ["--help"], stdout: "piped" }).output();
    const usage = new TextDecoder().decode(help.stdout);
    assert.equal(help.code, 0);
    assert.match(usage, /^Usage: dback \[options\]$/m);
    assert.doesNotMatch(usage, /examples\/main\.ts|deno run/);
    assert.match(usage, /--port <n>/, "the options are still listed");
    // The page comes from the binary: its own path to public/ points inside the executable.
    await withProcess(bin, FLAGS, conversation);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
