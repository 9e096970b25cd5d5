// The server bench/flood_repeat.ts attacks, on Deno or Node (`deno run -A --v8-flags=--expose-gc`
// or `node --expose-gc`, then this file and a kind): `dback`, dback with its Node transport; or a
// bare node:http + ws server that refuses over 1 KiB and tears the socket down as dback's Node
// transport did before (`ws-late`: paused a timer after ws's refusal, when ws has already resumed
// it to discard the rest) or does now (`ws-paused`: paused at the refusal and kept paused). Prints
// `PORT <n>`; on stdin, `mem` prints process.memoryUsage() after one GC, `settle` after ten GCs
// 200 ms apart, each as one JSON line with the KiB read from attackers' sockets (ws kinds).
import process from "node:process";
import { createInterface } from "node:readline";
import { createServer } from "node:http";
import type { Socket } from "node:net";

const kind = process.argv[2];
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
let readBytes = 0;
let port: number;

if (kind === "dback") {
  const { MockSource, WebSocketServer } = await import("../../mod.ts");
  const quiet = { presenceIntervalMs: 86_400_000, messageIntervalMs: 86_400_000 };
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "error",
    transport: "node",
    maxFrameBytes: 1024,
    maxConnectionsPerIp: 1000,
    source: new MockSource(quiet),
  });
  await server.start();
  port = server.port;
} else if (kind === "ws-late" || kind === "ws-paused") {
  // The specifier is built at run time, as in the transport: Deno takes the npm one.
  const spec = "Deno" in globalThis ? ["npm:ws", "8.23.1"].join("@") : ["w", "s"].join("");
  const { WebSocketServer } = await import(spec);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1024,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const http = createServer();
  http.on("upgrade", (req, socket: Socket, head) => {
    socket.on("error", () => {});
    socket.on("close", () => readBytes += socket.bytesRead);
    wss.handleUpgrade(req, socket, head, (ws: { terminate(): void; on: Socket["on"] }) => {
      ws.on("error", () => {
        if (kind === "ws-paused") {
          socket.pause();
          socket.once("resume", () => socket.pause());
        }
        setTimeout(() => {
          socket.pause();
          socket.end();
          setTimeout(() => ws.terminate(), 1000);
        }, 0);
      });
    });
  });
  await new Promise<void>((r) => http.listen({ port: 0, host: "127.0.0.1" }, r));
  port = (http.address() as { port: number }).port;
} else {
  throw new Error(`unknown kind ${kind}`);
}

const report = () => {
  const m = process.memoryUsage();
  process.stdout.write(
    JSON.stringify({ rss: m.rss, heap: m.heapUsed, external: m.external, readBytes }) + "\n",
  );
};
createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line === "mem") {
    gc();
    report();
  } else if (line === "settle") {
    for (let i = 0; i < 10; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 200));
    }
    report();
  }
});
process.stdout.write(`PORT ${port}\n`);
