// dback under test: the real WebSocketServer from mod.ts with every feature on
// (zod validation, inbound limits, slow-client protection, metrics, static
// files). Only configuration differs from the defaults: the connection caps are
// raised because every benchmark client comes from 127.0.0.1, and logLevel is
// "warn" so that no line is written per connection.
//
// Runtime-neutral (node:process instead of Deno.*), so the same file is the
// `dback` target under Deno, `dback-bun` under Bun, `dback-node` under Node.js
// and, with DBACK_BENCH_TRANSPORT=node, `dback-deno-node` (Deno, Node transport):
//
//   deno run -A bench/servers/dback.ts --users 100
//   NODE_PATH=bench/npm/node_modules bun run --no-install bench/servers/dback.ts --users 100
//   node bench/servers/dback.ts --users 100
//   DBACK_BENCH_TRANSPORT=node deno run -A bench/servers/dback.ts --users 100
//
// Prints `READY <port>`, or `UNAVAILABLE <reason>` and exits when dback cannot
// start on this runtime; the control endpoint (GET /publish/<count>/<rate>[/<pad>])
// is served through the public `staticRequest` hook and publishes through the
// public `broadcastMessage`.
import process from "node:process";
import type { UserMap, WebSocketServer } from "../../mod.ts";
import {
  CHANNEL,
  createPublisher,
  DID,
  makeUsers,
  parseArgs,
  SERVER_NAME,
  SHORT_ID,
  SPEAKER,
} from "../peers/common.mjs";

const runtime = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node.js";
const transport = process.env.DBACK_BENCH_TRANSPORT === "node" ? "node" : undefined;
const { users } = parseArgs(process.argv.slice(2));
const userMap: UserMap = makeUsers(users);

let server: WebSocketServer;
try {
  // Imported here, so that a runtime that cannot even load dback (a missing zod, say)
  // is reported like one that cannot start it.
  const dback = await import("../../mod.ts");
  server = new dback.WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "warn",
    transport,
    maxConnections: 1_000_000,
    maxConnectionsPerIp: 1_000_000,
    // Every load-generator client comes from 127.0.0.1: the per-IP inbound budget would refuse joins.
    ipFramesPerSecond: 1_000_000,
    ipBytesPerSecond: 1_000_000_000,
    callbacks: {
      getServerData: () => ({
        [DID]: { id: SHORT_ID, name: SERVER_NAME, default: true },
      }),
      getUserData: () => userMap,
      staticRequest: (path) => {
        const body = publish(path);
        return body === null ? null : ["application/json", body];
      },
    },
  });
  await server.start();
} catch (err) {
  // One line the driver reports as the reason (e.g. dback does not run on Bun yet).
  const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  console.log(`UNAVAILABLE dback did not start on ${runtime}: ${why.split("\n")[0]}`);
  process.exit(0);
}

const publish = createPublisher((message) => {
  server.broadcastMessage({
    server: DID,
    uid: SPEAKER,
    message,
    channel: CHANNEL,
  });
});

console.log(`READY ${server.port}`);

// Exit cleanly on SIGTERM so that a --cpu-prof profile is written (see BENCH_DENO_FLAGS in _targets.ts).
process.on("SIGTERM", () => process.exit(0));
