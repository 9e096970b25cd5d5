// A dback server with the big guild, in its own process so that its memory is its own; runs
// under `deno run -A` and `bun run` alike. Argument: JSON
// `{ "members": N, "offline": share, "presencePerSecond": R, "options": {...} }`. Prints `READY <port>`, then one
// JSON line per log record at `warn` and above (or the `logLevel` of its options); answers `metrics` and `presence <count>` lines on stdin.
import process from "node:process";
import { createInterface } from "node:readline";
import { type ServerOptions, WebSocketServer } from "../../mod.ts";
import { bigGuildCallbacks, presenceEvent } from "./big_guild.ts";

interface Spec {
  members: number;
  offline?: number;
  presencePerSecond?: number;
  options?: ServerOptions;
}

const spec: Spec = JSON.parse(process.argv[2] ?? "{}");
const print = (value: unknown) => process.stdout.write(JSON.stringify(value) + "\n");

const server = new WebSocketServer({
  port: 0,
  hostname: "127.0.0.1",
  logLevel: "warn",
  logSink: (log) => print({ log }),
  maxConnectionsPerIp: 1000,
  userDataCacheMs: 60_000,
  callbacks: bigGuildCallbacks(spec.members, spec.offline),
  ...spec.options,
});
await server.start();
let n = 0;
const presence = spec.presencePerSecond
  ? setInterval(
    () => server.broadcastPresence(presenceEvent(n++, spec.members)),
    1000 / spec.presencePerSecond,
  )
  : undefined;
process.stdout.write(`READY ${server.port}\n`);

createInterface({ input: process.stdin }).on("line", (line) => {
  const [op, arg] = line.trim().split(" ");
  if (op === "metrics") print({ metrics: server.metrics });
  else if (op === "presence") {
    for (let i = 0; i < Number(arg); i++) {
      server.broadcastPresence(presenceEvent(n++, spec.members));
    }
    print({ presence: Number(arg) });
  }
});

const stop = async () => {
  clearInterval(presence);
  await server.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
