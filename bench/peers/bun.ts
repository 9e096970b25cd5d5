// Bun.serve with native pub/sub (`server.publish`), speaking the same minimal
// protocol. Run with the bun binary of the `bun` npm package:
//
//   bench/node_modules/bun/bin/bun.exe bench/peers/bun.ts --users 100
//
// Bun's own types are not installed; `Bun` is declared loosely so that
// `deno check` and `deno lint` still accept the file.
import process from "node:process";
import {
  createPublisher,
  errorFrame,
  makeUsers,
  messageFrame,
  parseArgs,
  parseConnect,
  SERVER_LIST,
  serverJoinFrame,
} from "./common.mjs";

interface BunSocket {
  send(data: string): number;
  subscribe(topic: string): void;
}
interface BunServer {
  port: number;
  upgrade(req: Request): boolean;
  publish(topic: string, data: string): number;
}
declare const Bun: {
  serve(options: {
    port: number;
    hostname: string;
    fetch(req: Request, server: BunServer): Response | undefined;
    websocket: {
      perMessageDeflate: boolean;
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
    };
  }): BunServer;
};

const { users } = parseArgs(process.argv.slice(2));
const usersJson = JSON.stringify(makeUsers(users));
const decoder = new TextDecoder();

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req, server) {
    if (server.upgrade(req)) return undefined;
    const body = publish(new URL(req.url).pathname);
    return body === null
      ? new Response("not found\n", { status: 404 })
      : new Response(body, { headers: { "content-type": "application/json" } });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws) {
      ws.send(SERVER_LIST);
    },
    message(ws, message) {
      const r = parseConnect(
        typeof message === "string" ? message : decoder.decode(message),
      );
      if ("error" in r) {
        ws.send(errorFrame(r.error));
        return;
      }
      ws.send(serverJoinFrame(usersJson, r.server));
      ws.subscribe("room");
    },
  },
});

const publish = createPublisher((text) => {
  server.publish("room", messageFrame(text));
});

console.log(`READY ${server.port}`);
