// Warm the join path once in this process and print what joined each way, as one JSON line:
//   <runtime> tests/_fixtures/warm_child.ts [deno|bun|node|-] [stuck|default]
// The first argument is the transport ("-" or none: the runtime's); `stuck` replaces the runtime's
// WebSocket client with one that never connects, never closes (a sandbox that swallows loopback);
// `default` asks for as many loopback joins as the transport wants (otherwise 30).
import process from "node:process";
import { warmJoinPath } from "../../src/_warm.ts";
import { loopbackAllowed, type TransportName } from "../../src/transport/mod.ts";

const named = process.argv[2];
const transport = named && named !== "-" ? named as TransportName : undefined;
if (process.argv[3] === "stuck") {
  (globalThis as { WebSocket: unknown }).WebSocket = class {
    onmessage: unknown;
    onclose: unknown;
    close(): void {}
    send(): void {}
  };
}
const loopback = process.argv[3] === "default" ? undefined : 30;
const first = await warmJoinPath({ transport, inMemory: 40, loopback });
const again = await warmJoinPath({ transport, inMemory: 40, loopback: 30 });
console.log(JSON.stringify({ allowed: loopbackAllowed(), first, again }));
// Nothing of the warm-up may keep the process alive: it ends on its own.
