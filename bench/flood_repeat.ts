// Repeated attackers against the Node transport, on Deno and on Node: each attacker upgrades,
// sends 8 MiB of unfinished 4 KiB text fragments (the limit is 1 KiB: refused with 1009 at once),
// reads until the server closes and goes; the next one follows. The server child
// (servers/flood_target.ts) is dback with its Node transport, or bare node:http + ws torn down as
// the transport did before (`ws-late`) or does now (`ws-paused`). Its memory is read after a GC
// every `--every` attackers, and once more after ten GCs and a settling pause at the end.
//
//   deno run -A bench/flood_repeat.ts [--attackers 240] [--every 80] [--runtimes deno,node]
//     [--kinds dback,ws-late,ws-paused] [--out FILE]
import { parseArgs } from "node:util";
import { flood } from "./_flood_attacker.ts";
import { machineInfo } from "./_procfs.ts";
import { lines, sleep } from "./_procs.ts";
import { nodeBinary, output } from "./_targets.ts";

const MiB = 1024 * 1024;
const TARGET = new URL("./servers/flood_target.ts", import.meta.url).pathname;
const round = (x: number) => Math.round(x * 10) / 10;
const fail = (why: string): never => {
  throw new Error(why);
};

async function attack(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  await flood(conn); // the 101, then the close frame
}

interface Mem {
  rss: number;
  heap: number;
  external: number;
  readBytes: number;
}

async function run(runtime: string, kind: string, attackers: number, every: number) {
  const [cmd, flags] = runtime === "deno"
    ? [Deno.execPath(), ["run", "-A", "--v8-flags=--expose-gc"]]
    : [nodeBinary() ?? fail("no Node.js >= 22.18 (nor npx node@24)"), ["--expose-gc"]];
  const child = new Deno.Command(cmd, {
    args: [...flags, TARGET, kind],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = lines(child.stdout);
  const line = async () => {
    const { value, done } = await out.next();
    if (done) throw new Error(`${runtime} ${kind}: the server exited`);
    return value;
  };
  const writer = child.stdin.getWriter();
  const ask = async (what: string): Promise<Mem> => {
    await writer.write(new TextEncoder().encode(what + "\n"));
    return JSON.parse(await line());
  };
  const port = Number((await line()).replace("PORT ", ""));
  const start = await ask("mem");
  const mib = (m: Mem) => ({
    rssGrowthMiB: round((m.rss - start.rss) / MiB),
    heapMiB: round(m.heap / MiB),
    externalMiB: round(m.external / MiB),
  });
  const checkpoints = [];
  for (let n = 1; n <= attackers; n++) {
    await attack(port);
    if (n % every === 0) {
      await sleep(300);
      checkpoints.push({ attackers: n, ...mib(await ask("mem")) });
    }
  }
  // dback and ws-late destroy a refused socket a second after the refusal.
  await sleep(1500);
  const settled = await ask("settle");
  await sleep(10_000);
  const later = await ask("settle");
  child.kill("SIGKILL");
  await child.status;
  return {
    runtime,
    kind,
    start: { rssMiB: round(start.rss / MiB), heapMiB: round(start.heap / MiB) },
    checkpoints,
    afterTenGcs: mib(settled),
    tenSecondsLater: mib(later),
    kibReadPerAttacker: kind === "dback" ? null : Math.round(later.readBytes / 1024 / attackers),
  };
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    attackers: { type: "string", default: "240" },
    every: { type: "string", default: "80" },
    runtimes: { type: "string", default: "deno,node" },
    kinds: { type: "string", default: "dback,ws-late,ws-paused" },
    out: { type: "string" },
  },
});
const loadBefore = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
const runs = [];
for (const runtime of args.runtimes!.split(",")) {
  for (const kind of args.kinds!.split(",")) {
    const r = await run(runtime, kind, Number(args.attackers), Number(args.every));
    console.error(JSON.stringify(r));
    runs.push(r);
  }
}
const report = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  command: `deno run -A bench/flood_repeat.ts ${
    Deno.args.filter((a) => !a.startsWith("--out")).join(" ")
  }`
    .trim(),
  commit: output("git", ["rev-parse", "--short", "HEAD"]),
  note:
    "repeated attackers of 8 MiB of fragments each, one at a time; memory after a GC; one run per row on a shared 2-core VM (noisy: other jobs ran)",
  machine: machineInfo(
    {
      deno: `deno ${Deno.version.deno}`,
      node: args.runtimes!.includes("node")
        ? `node ${output(nodeBinary() ?? "node", ["--version"])}`
        : "",
    },
    "deno (attackers)",
  ),
  loadavg: {
    start: loadBefore,
    end: Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number),
  },
  runs,
};
const text = JSON.stringify(report, null, 2) + "\n";
if (args.out) await Deno.writeTextFile(args.out, text);
else console.log(text);
