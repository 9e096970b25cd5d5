// The churn attacker of the `big-guild` benchmark, in its own process so that what it receives
// costs the driver (which times the other viewers' re-joins) nothing: `connections` raw viewers
// from one loopback address, each alternating `connect` between the big and the small guild as
// soon as the last answer came. Argument: JSON `{ "port", "address", "connections", "seconds" }`.
// Prints `READY` once connected, starts on a `go` line on stdin, then prints one JSON line
// (bytes received, joins, refusals, CPU seconds) and exits.
import { createInterface } from "node:readline";
import process from "node:process";
import { BIG_GUILD_SHORT, SMALL_GUILD_SHORT } from "../tests/_fixtures/big_guild.ts";
import { RawViewer } from "../tests/_fixtures/raw_viewer.ts";
import { cpuSeconds } from "./_procfs.ts";

const spec = JSON.parse(Deno.args[0]) as {
  port: number;
  address: string;
  connections: number;
  seconds: number;
};
const attacker = await Promise.all(
  Array.from(
    { length: spec.connections },
    () => RawViewer.connect(spec.port, { localAddress: spec.address }),
  ),
);
console.log("READY");
await new Promise<void>((resolve) =>
  createInterface({ input: process.stdin }).on("line", (l) => l.trim() === "go" && resolve())
);
const cpu0 = cpuSeconds(Deno.pid);
const received0 = attacker.reduce((n, a) => n + a.received, 0);
const end = performance.now() + spec.seconds * 1000;
let joins = 0;
let refused = 0;
await Promise.all(attacker.map(async (a, k) => {
  for (let i = k; performance.now() < end && !a.isClosed; i++) {
    const from = a.frames.length;
    a.connect(i % 2 ? SMALL_GUILD_SHORT : BIG_GUILD_SHORT);
    const f = await a.waitFor(
      (f) => f.type === "server-join" || f.type === "error",
      from,
      Math.max(1, end - performance.now()),
    );
    if (f?.type === "server-join") joins++;
    else if (f?.type === "error") refused++;
  }
}));
const bytes = attacker.reduce((n, a) => n + a.received, 0) - received0;
console.log(JSON.stringify({ bytes, joins, refused, cpuSeconds: cpuSeconds(Deno.pid) - cpu0 }));
for (const a of attacker) a.destroy();
Deno.exit(0);
