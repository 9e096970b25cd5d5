// Warm the join path once in this process and print what joined each way, as one JSON line:
//   <runtime> tests/_fixtures/warm_child.ts [deno|bun|node|-] [stuck|default|strict]
// The first argument is the transport ("-" or none: the runtime's); `stuck` replaces `node:net`
// with one whose sockets never connect, never close (a sandbox that swallows loopback);
// `default` asks for as many loopback joins as the transport wants (otherwise 30); `strict`
// copies a server that checks origins and lets 2 connections and 1 join per second per address.
import process from "node:process";
import { EventEmitter } from "node:events";
import { warmJoinPath } from "../../src/_warm.ts";
import type { Net } from "../../src/_loopback_client.ts";
import { parseOptions } from "../../src/options.ts";
import { loopbackAllowed, type TransportName } from "../../src/transport/mod.ts";

const named = process.argv[2];
const mode = process.argv[3];
const transport = named && named !== "-" ? named as TransportName : undefined;
const settings = parseOptions({
  transport,
  ...(mode === "strict"
    ? {
      allowedOrigins: ["https://d-zone.example"],
      maxConnectionsPerIp: 2,
      ipJoinsPerSecond: 1,
      ipJoinBurst: 2,
    }
    : {}),
});
class Stuck extends EventEmitter {
  write(): boolean {
    return true;
  }
  end(): void {}
  destroy(): void {}
}
const net = mode === "stuck" ? { connect: () => new Stuck() } as unknown as Net : undefined;
const loopback = mode === "default" ? undefined : 30;
const first = await warmJoinPath({ settings, inMemory: 40, loopback, net });
const again = await warmJoinPath({ settings, inMemory: 40, loopback: 30 });
console.log(JSON.stringify({ allowed: loopbackAllowed(), first, again }));
// Nothing of the warm-up may keep the process alive: it ends on its own.
