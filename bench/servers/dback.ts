// dback under test: the real WebSocketServer from mod.ts with every feature on
// (zod validation, inbound limits, slow-client protection, metrics, static
// files). Only configuration differs from the defaults: the connection caps are
// raised because every benchmark client comes from 127.0.0.1, and logLevel is
// "warn" so that no line is written per connection.
//
//   deno run -A bench/servers/dback.ts --users 100
//
// Prints `READY <port>`; the control endpoint (GET /publish/<count>/<rate>[/<pad>])
// is served through the public `staticRequest` hook and publishes through the
// public `broadcastMessage`.
import { type UserMap, WebSocketServer } from "../../mod.ts";
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

const { users } = parseArgs(Deno.args);
const userMap: UserMap = makeUsers(users);

const server = new WebSocketServer({
  port: 0,
  hostname: "127.0.0.1",
  logLevel: "warn",
  maxConnections: 1_000_000,
  maxConnectionsPerIp: 1_000_000,
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

const publish = createPublisher((message) => {
  server.broadcastMessage({
    server: DID,
    uid: SPEAKER,
    message,
    channel: CHANNEL,
  });
});

await server.start();
console.log(`READY ${server.port}`);

// Exit cleanly on SIGTERM so that a --cpu-prof profile is written (see BENCH_DENO_FLAGS in run.ts).
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
