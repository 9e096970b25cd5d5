// How many bytes of RSS a runtime holds per unsent byte of a WebSocket peer that never reads:
// the factor dback's memory charge multiplies unsent bytes by. For each runtime (Deno, Bun, and
// Node with `ws`) and frame size, a bare server (no dback) sends the same frames to each of 16
// non-reading peers; RSS growth ÷ the runtime's own bufferedAmount is the factor.
//
//   deno run -A bench/memory_factor.ts            # writes bench/results/memory_factor.json
//   deno run -A bench/memory_factor.ts deno-writev OUT   # only Deno with vectored writes, to OUT
//   (the server side runs as `<runtime> bench/memory_factor.ts serve <frameBytes> <frames>`)
import process from "node:process";

const PEERS = 16;

interface Peer {
  send(s: string): void;
  buffered(): number;
}

function serve(frameBytes: number, frames: number): void {
  const frame = JSON.stringify({ a: "x".repeat(frameBytes) });
  const bun =
    (globalThis as { Bun?: { serve(o: unknown): { port: number }; gc(f: boolean): void } })
      .Bun;
  const gc = bun ? () => bun.gc(true) : (globalThis as { gc?: () => void }).gc ?? (() => {});
  const peers: Peer[] = [];
  let before = 0;
  const opened = (p: Peer) => {
    if (peers.length === 0) {
      gc();
      before = process.memoryUsage().rss;
    }
    peers.push(p);
    for (let i = 0; i < frames; i++) p.send(frame);
    if (peers.length < PEERS) return;
    setTimeout(() => {
      gc();
      const buffered = peers.reduce((s, p) => s + p.buffered(), 0);
      const growth = process.memoryUsage().rss - before;
      console.log(JSON.stringify({ buffered, growth }));
      process.exit(0);
    }, 2000);
  };
  if (!bun && typeof (globalThis as { Deno?: unknown }).Deno === "undefined") {
    // Node: node:http + ws, as dback's Node transport (one Buffer per frame, shared).
    serveNode(frame, opened);
  } else if (bun) {
    const s = bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req: Request, srv: { upgrade(r: Request): boolean }) {
        srv.upgrade(req);
        return undefined;
      },
      websocket: {
        backpressureLimit: 2 ** 40,
        closeOnBackpressureLimit: false,
        open(ws: { send(s: string): void; getBufferedAmount(): number }) {
          opened({ send: (f) => ws.send(f), buffered: () => ws.getBufferedAmount() });
        },
        message() {},
      },
    });
    console.log(`PORT ${s.port}`);
  } else {
    Deno.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen: (a) => console.log(`PORT ${a.port}`),
    }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onopen = () =>
        opened({ send: (f) => socket.send(f), buffered: () => socket.bufferedAmount });
      return response;
    });
  }
}

async function serveNode(frame: string, opened: (p: Peer) => void): Promise<void> {
  const { createServer } = await import("node:http");
  const { Buffer } = await import("node:buffer");
  const { WebSocketServer } = await import("ws");
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = createServer();
  type Ws = { send(data: Uint8Array, o: { binary: boolean }): void; bufferedAmount: number };
  // One Buffer per send (the case of frames not shared between sockets): a Buffer shared by
  // every socket, as dback's broadcasts are, costs nothing per socket.
  server.on(
    "upgrade",
    (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws: Ws) =>
        opened({
          send: () => ws.send(Buffer.from(frame, "utf8"), { binary: false }),
          buffered: () => ws.bufferedAmount,
        })),
  );
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address() as { port: number };
    console.log(`PORT ${addr.port}`);
  });
}

async function measure(command: string[], frameBytes: number, frames: number) {
  const child = new Deno.Command(command[0], {
    args: [...command.slice(1), "bench/memory_factor.ts", "serve", `${frameBytes}`, `${frames}`],
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/PORT \d+/.test(out)) out += (await lines.read()).value ?? "";
  const port = Number(out.match(/PORT (\d+)/)![1]);
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < PEERS; i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(
      new TextEncoder().encode(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      ),
    );
    conns.push(c);
  }
  while (!out.includes("growth")) {
    const r = await lines.read();
    if (r.done) break;
    out += r.value;
  }
  await child.status;
  for (const c of conns) c.close();
  const { buffered, growth } = JSON.parse(out.slice(out.indexOf("{")));
  return {
    frameBytes,
    frames,
    buffered,
    growth,
    factor: Math.round(growth / buffered * 100) / 100,
  };
}

if (process.argv[2] === "serve") {
  serve(Number(process.argv[3]), Number(process.argv[4]));
} else {
  const deno = [Deno.execPath(), "run", "-A", "--v8-flags=--expose-gc"];
  // Deno's vectored writes (see docs/runtimes.md, "Big frames on Deno"), as dback's transport sets them.
  const writev = process.argv[2] === "deno-writev";
  // Node >= 22.18 runs the .ts file itself; an older `node` gets one from npm.
  const node = writev ? "" : new TextDecoder().decode(
    (await new Deno.Command("npx", { args: ["-y", "node@24", "-p", "process.execPath"] }).output())
      .stdout,
  ).trim();
  const runtimes: Record<string, string[]> = writev
    ? { "deno-writev": ["env", "DENO_USE_WRITEV=1", ...deno] }
    : { deno, bun: ["bun"], node: [node, "--expose-gc"] };
  const results: Record<string, unknown[]> = {};
  for (const [name, command] of Object.entries(runtimes)) {
    results[name] = [];
    for (const [frameBytes, frames] of [[10_000_000, 1], [1_000_000, 10], [100_000, 100]]) {
      const r = await measure(command, frameBytes, frames);
      console.log(name, r);
      results[name].push(r);
    }
  }
  const loadavg = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
  await Deno.writeTextFile(
    writev ? process.argv[3] : "bench/results/memory_factor.json",
    JSON.stringify({ date: new Date().toISOString(), peers: PEERS, loadavg, results }, null, 2) +
      "\n",
  );
}
