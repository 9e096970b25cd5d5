// Node with the `ws` package, speaking the same minimal protocol. The frame is
// turned into a Buffer once per broadcast, then written to every joined client.
//
//   node bench/peers/node-ws.mjs --users 100
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import { createRequire } from "node:module";
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

// `ws` lives in bench/npm/node_modules (a package.json directly in bench/ would
// make Deno treat bench/ as a separate Node project).
const { WebSocketServer } = createRequire(new URL("../npm/package.json", import.meta.url))("ws");

const { users } = parseArgs(process.argv.slice(2));
const usersJson = JSON.stringify(makeUsers(users));
const joined = new Set();

const publish = createPublisher((text) => {
  const frame = Buffer.from(messageFrame(text));
  for (const ws of joined) {
    if (ws.readyState === 1) ws.send(frame, { binary: false });
  }
});

const http = createServer((req, res) => {
  const body = publish(new URL(req.url ?? "/", "http://x").pathname);
  if (body === null) {
    res.writeHead(404).end("not found\n");
  } else {
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  }
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.send(SERVER_LIST);
  ws.on("message", (data) => {
    const r = parseConnect(String(data));
    if ("error" in r) return ws.send(errorFrame(r.error));
    ws.send(serverJoinFrame(usersJson, r.server));
    joined.add(ws);
  });
  ws.on("close", () => joined.delete(ws));
});
http.listen(0, "127.0.0.1", () => {
  const addr = http.address();
  console.log(`READY ${typeof addr === "object" && addr ? addr.port : 0}`);
});
