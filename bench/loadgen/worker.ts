// One load-generator process: holds a share of the benchmark's WebSocket
// clients on raw TCP sockets. Each client does the real handshake (HTTP
// upgrade, receive `server-list`, send a masked `connect`, receive
// `server-join`) and then reads `message` broadcasts, taking the sequence
// number and send time out of the first bytes of each frame without decoding
// the rest, so that a frame costs the generator as little as possible.
//
// Commands arrive on stdin and answers leave on stdout, one JSON object a line
// (see bench/run.ts). Started by the driver:
//
//   deno run -A bench/loadgen/worker.ts
//
// Commands:
//   {"cmd":"join","port":P,"n":N,"concurrency":C,"stall":false}  → {"ev":"joined",...}
//   {"cmd":"reset"}                                               → {"ev":"reset"}
//   {"cmd":"report"}                                              → {"ev":"report",...}
//   {"cmd":"drain-stalled","ms":M}                                → {"ev":"stalled",...}
//   {"cmd":"close-all"}                                           → {"ev":"closed"}
//   {"cmd":"exit"}
// Unprompted: {"ev":"p","d":<highest seq every live client of this worker has received>}

const encoder = new TextEncoder();
const RING = 1 << 16;
const HEAD = 160; // bytes of each frame's payload kept for inspection
const LN_STEP = Math.log(1.01); // latency histogram: 1 % wide buckets
const BUCKETS = 2400;

function out(obj: unknown): void {
  const bytes = encoder.encode(JSON.stringify(obj) + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

// --- per-worker counters -------------------------------------------------

const ring = new Int32Array(RING); // clients that have received seq s, at s % RING
let done = 0; // every counted client has received every seq <= done
let expected = 0; // live joined, non-stalled clients
let frames = 0; // message frames received since reset
let bytes = 0; // bytes received since reset
let hist = new Uint32Array(BUCKETS);
let maxLatency = 0;
let minLatency = Infinity;
let progressScheduled = false;
let lastReported = -1;
const closeCodes: Record<string, number> = {};

function reportProgress(): void {
  progressScheduled = false;
  if (done !== lastReported) {
    lastReported = done;
    out({ ev: "p", d: done });
  }
}

function advance(): void {
  while (expected > 0) {
    const i = (done + 1) & (RING - 1);
    if (ring[i] < expected) break;
    ring[i] = 0;
    done++;
  }
  if (!progressScheduled && done !== lastReported) {
    progressScheduled = true;
    setTimeout(reportProgress, 0);
  }
}

function record(seq: number, latencyUs: number): void {
  frames++;
  if (seq > done) {
    ring[seq & (RING - 1)]++;
    if (seq === done + 1) advance();
  }
  if (latencyUs > maxLatency) maxLatency = latencyUs;
  if (latencyUs < minLatency) minLatency = latencyUs;
  const b = latencyUs <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(latencyUs) / LN_STEP));
  hist[b]++;
}

// --- one client ------------------------------------------------------------

const MASK = crypto.getRandomValues(new Uint8Array(4));

function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  if (payload.length > 125) throw new Error("client frames here are small");
  const f = new Uint8Array(6 + payload.length);
  f[0] = 0x80 | opcode;
  f[1] = 0x80 | payload.length;
  f.set(MASK, 2);
  for (let i = 0; i < payload.length; i++) f[6 + i] = payload[i] ^ MASK[i & 3];
  return f;
}

const CONNECT = maskedFrame(
  1,
  encoder.encode('{"type":"connect","data":{"server":"bench"}}'),
);
const CLOSE = maskedFrame(8, new Uint8Array([0x03, 0xe8]));
const H_LIST = encoder.encode('{"type":"server-list"');
const H_JOIN = encoder.encode('{"type":"server-join"');
const H_MSG = encoder.encode('{"type":"message"');
const K_MSG = encoder.encode('"message":"');

function startsWith(a: Uint8Array, len: number, prefix: Uint8Array): boolean {
  if (len < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

function indexOf(
  a: Uint8Array,
  len: number,
  needle: Uint8Array,
  from: number,
): number {
  outer: for (let i = from; i <= len - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (a[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

type Phase = "http" | "list" | "join" | "joined" | "closed";

class Client {
  phase: Phase = "http";
  conn: Deno.TcpConn | undefined;
  readonly stall: boolean;
  started = 0;
  joinMs = -1;
  error = "";
  closeCode = 0;
  counted = false;
  #resume: (() => void) | undefined;
  #paused: Promise<void> | undefined;
  #settle!: () => void;
  readonly settled: Promise<void>;
  // handshake bytes
  #http = "";
  // frame parser state
  #hdr = new Uint8Array(14);
  #hl = 0;
  #need = 2;
  #left = 0;
  #inPayload = false;
  #op = 0; // opcode of the message being assembled
  #ctl = false; // current frame is a control frame
  #fin = false;
  #head = new Uint8Array(HEAD);
  #headLen = 0;
  #ctlBuf = new Uint8Array(125);
  #ctlLen = 0;
  #ctlOp = 0;
  #maskLeft = 0; // masked server frames are not expected; ignore the key bytes

  constructor(stall: boolean) {
    this.stall = stall;
    this.settled = new Promise((r) => this.#settle = r);
  }

  async run(port: number): Promise<void> {
    this.started = performance.now();
    try {
      this.conn = await Deno.connect({ hostname: "127.0.0.1", port });
      this.conn.setNoDelay(true);
      await this.conn.write(encoder.encode(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      ));
    } catch (err) {
      this.#fail(err instanceof Error ? err.message : String(err));
      return;
    }
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      if (this.#paused) await this.#paused;
      let n: number | null;
      try {
        n = await this.conn.read(buf);
      } catch (err) {
        if (this.phase !== "closed") {
          this.#fail(err instanceof Error ? err.message : String(err));
        }
        break;
      }
      if (n === null) {
        this.#fail("eof");
        break;
      }
      bytes += n;
      try {
        this.#feed(buf, n);
      } catch (err) {
        this.#fail(err instanceof Error ? err.message : String(err));
      }
      if (this.phase === "closed") break;
    }
  }

  resume(): void {
    const r = this.#resume;
    this.#paused = undefined;
    this.#resume = undefined;
    r?.();
  }

  close(): void {
    if (this.phase === "closed") return;
    const conn = this.conn;
    this.#fail("closed by generator");
    if (conn) conn.write(CLOSE).catch(() => {}).finally(() => this.#shut(conn));
  }

  #shut(conn: Deno.TcpConn): void {
    try {
      conn.close();
    } catch { /* closed already */ }
  }

  #fail(reason: string): void {
    if (this.phase === "closed") return;
    if (this.phase !== "joined") this.error = reason;
    this.phase = "closed";
    if (this.counted) {
      this.counted = false;
      expected--;
      advance();
    }
    if (this.conn && reason !== "closed by generator") this.#shut(this.conn);
    this.resume();
    this.#settle();
  }

  #send(frame: Uint8Array): void {
    this.conn?.write(frame).catch(() => {});
  }

  #feed(b: Uint8Array, n: number): void {
    let i = 0;
    if (this.phase === "http") {
      // Headers are small; the server may put frames right behind them.
      while (i < n && this.phase === "http") {
        this.#http += String.fromCharCode(b[i++]);
        if (this.#http.endsWith("\r\n\r\n")) {
          if (!this.#http.startsWith("HTTP/1.1 101")) {
            this.#fail(`upgrade refused: ${this.#http.split("\r\n")[0]}`);
            return;
          }
          this.phase = "list";
          this.#http = "";
        }
      }
    }
    while (i < n) {
      if (this.#inPayload) {
        const take = Math.min(this.#left, n - i);
        if (this.#ctl) {
          this.#ctlBuf.set(b.subarray(i, i + take), this.#ctlLen);
          this.#ctlLen += take;
        } else if (this.#headLen < HEAD) {
          const k = Math.min(take, HEAD - this.#headLen);
          this.#head.set(b.subarray(i, i + k), this.#headLen);
          this.#headLen += k;
        }
        this.#left -= take;
        i += take;
        if (this.#left === 0) {
          this.#inPayload = false;
          this.#frameDone();
          if (this.phase === "closed") return;
        }
        continue;
      }
      if (this.#maskLeft > 0) {
        this.#maskLeft--;
        i++;
        continue;
      }
      const h = this.#hdr;
      h[this.#hl++] = b[i++];
      if (this.#hl === 2) {
        const l7 = h[1] & 127;
        this.#need = 2 + (l7 === 126 ? 2 : l7 === 127 ? 8 : 0);
      }
      if (this.#hl >= 2 && this.#hl === this.#need) {
        const l7 = h[1] & 127;
        let len = l7;
        if (l7 === 126) len = (h[2] << 8) | h[3];
        else if (l7 === 127) {
          len = 0;
          for (let k = 2; k < 10; k++) len = len * 256 + h[k];
        }
        const op = h[0] & 15;
        this.#fin = (h[0] & 0x80) !== 0;
        this.#ctl = op >= 8;
        if (this.#ctl) {
          this.#ctlLen = 0;
          this.#ctlOp = op;
        } else if (op !== 0) {
          this.#op = op;
          this.#headLen = 0;
        }
        this.#maskLeft = (h[1] & 0x80) ? 4 : 0;
        this.#hl = 0;
        this.#need = 2;
        this.#left = len;
        if (this.#maskLeft > 0) throw new Error("server sent a masked frame");
        if (len === 0) this.#frameDone();
        else this.#inPayload = true;
        if (this.phase === "closed") return;
      }
    }
  }

  #frameDone(): void {
    if (this.#ctl) return this.#control();
    if (!this.#fin) return; // wait for the continuation frames
    if (this.#op !== 1 && this.#op !== 2) return;
    const head = this.#head;
    const len = this.#headLen;
    switch (this.phase) {
      case "joined": {
        if (!startsWith(head, len, H_MSG)) return;
        const k = indexOf(head, len, K_MSG, H_MSG.length);
        if (k < 0) return;
        let p = k + K_MSG.length;
        let seq = 0;
        while (p < len && head[p] !== 58) seq = seq * 10 + head[p++] - 48;
        p++;
        let ts = 0;
        while (p < len && head[p] !== 58 && head[p] !== 34) {
          ts = ts * 10 + head[p++] - 48;
        }
        const now = (performance.timeOrigin + performance.now()) * 1000;
        if (this.counted) record(seq, now - ts);
        return;
      }
      case "list":
        if (startsWith(head, len, H_LIST)) {
          this.phase = "join";
          this.#send(CONNECT);
        } else this.#fail("expected server-list");
        return;
      case "join":
        if (startsWith(head, len, H_JOIN)) {
          this.phase = "joined";
          this.joinMs = performance.now() - this.started;
          if (this.stall) {
            this.#paused = new Promise((r) => this.#resume = r);
          } else {
            this.counted = true;
            expected++;
          }
          this.#settle();
        } else {
          this.#fail(
            `join refused: ${new TextDecoder().decode(head.subarray(0, len))}`,
          );
        }
        return;
    }
  }

  #control(): void {
    const op = this.#ctlOp;
    if (op === 9) {
      this.#send(maskedFrame(10, this.#ctlBuf.subarray(0, this.#ctlLen)));
    } else if (op === 8) {
      this.closeCode = this.#ctlLen >= 2 ? (this.#ctlBuf[0] << 8) | this.#ctlBuf[1] : 1005;
      closeCodes[this.closeCode] = (closeCodes[this.closeCode] ?? 0) + 1;
      this.#fail(`closed by server (${this.closeCode})`);
    }
  }
}

// --- the command loop ------------------------------------------------------

let clients: Client[] = [];

function percentileOf(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function join(
  port: number,
  n: number,
  concurrency: number,
  stall: boolean,
): Promise<void> {
  const mine: Client[] = [];
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      const c = new Client(stall);
      mine.push(c);
      clients.push(c);
      c.run(port);
      await c.settled;
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency || n, n)) }, lane),
  );
  const wallMs = performance.now() - t0;
  const ok = mine.filter((c) => c.phase === "joined");
  const lat = ok.map((c) => c.joinMs).sort((a, b) => a - b);
  const errors: Record<string, number> = {};
  for (const c of mine) {
    if (c.phase !== "joined") errors[c.error] = (errors[c.error] ?? 0) + 1;
  }
  out({
    ev: "joined",
    ok: ok.length,
    failed: n - ok.length,
    wallMs,
    lat,
    p50: percentileOf(lat, 0.5),
    p99: percentileOf(lat, 0.99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    errors,
  });
}

async function drainStalled(ms: number): Promise<void> {
  const stalled = clients.filter((c) => c.stall);
  const before = stalled.map((c) => c.phase);
  for (const c of stalled) c.resume();
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && stalled.some((c) => c.phase !== "closed")) {
    await new Promise((r) => setTimeout(r, 20));
  }
  out({
    ev: "stalled",
    n: stalled.length,
    phasesBefore: before,
    closedByServer: stalled.filter((c) => c.phase === "closed").length,
    closeCodes: stalled.map((c) => c.closeCode || (c.phase === "closed" ? c.error : "open")),
  });
}

function report(): void {
  const sparse: Record<string, number> = {};
  for (let i = 0; i < BUCKETS; i++) if (hist[i]) sparse[i] = hist[i];
  out({
    ev: "report",
    frames,
    bytes,
    hist: sparse,
    max: maxLatency,
    min: minLatency === Infinity ? 0 : minLatency,
    live: clients.filter((c) => c.phase === "joined").length,
    counted: expected,
    done,
    closeCodes,
  });
}

function reset(): void {
  frames = 0;
  bytes = 0;
  hist = new Uint32Array(BUCKETS);
  maxLatency = 0;
  minLatency = Infinity;
  for (const k of Object.keys(closeCodes)) delete closeCodes[k];
}

async function closeAll(): Promise<void> {
  for (const c of clients) c.close();
  await Promise.race([
    Promise.all(clients.map((c) => c.settled)),
    new Promise((r) => setTimeout(r, 3000)),
  ]);
  clients = [];
  ring.fill(0);
  done = 0;
  lastReported = -1;
  expected = 0;
  reset();
  out({ ev: "closed" });
}

async function main(): Promise<void> {
  out({ ev: "ready", pid: Deno.pid });
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      const m = JSON.parse(line);
      switch (m.cmd) {
        case "join":
          join(m.port, m.n, m.concurrency ?? 0, m.stall === true);
          break;
        case "reset":
          reset();
          out({ ev: "reset" });
          break;
        case "report":
          report();
          break;
        case "drain-stalled":
          drainStalled(m.ms ?? 3000);
          break;
        case "close-all":
          await closeAll();
          break;
        case "exit":
          Deno.exit(0);
      }
    }
  }
  Deno.exit(0);
}

main();
