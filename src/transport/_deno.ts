/**
 * The Deno transport (internal): `Deno.serve` and `Deno.upgradeWebSocket`.
 * Deno's server WebSocket cannot bound an inbound message before buffering
 * it, nor tear down a socket whose peer stopped reading: `terminate()`
 * answers `false`, and whether a dropped socket is really gone is read
 * from the kernel's TCP table (Deno's close event does not prove it).
 *
 * Deno copies every frame it sends into a per-socket write buffer that keeps
 * the size of the largest frame until the socket closes (each viewer of a
 * 13 MB `server-join` kept 13 MB), unless its vectored writes are on: then a
 * frame over 1 KiB goes out from its own bytes and nothing stays. They are
 * switched by `DENO_USE_WRITEV`, read once per process at its first
 * WebSocket; this transport sets it before that when it may (env access).
 * When it may not, the core charges the copy and warns once about it.
 *
 * @module
 */
import { serveGuarded } from "./_accept_guard.ts";
import { remoteKeys, socketHeld } from "./_tcp_table.ts";
import type {
  Listener,
  RequestContext,
  SocketLimits,
  Transport,
  WsEvents,
  WsPeer,
} from "./types.ts";

const WRITEV = "DENO_USE_WRITEV";

let vectored: boolean | undefined;
let restoreEnv = false;

/**
 * Whether Deno's WebSockets write big frames without keeping a copy: turns
 * `DENO_USE_WRITEV` on when env access is granted (never prompts). Deno reads
 * it at the first WebSocket of the process, so this is asked before any.
 */
export function vectoredWrites(): boolean {
  if (vectored !== undefined) return vectored;
  vectored = false;
  try {
    if (Deno.permissions.querySync({ name: "env", variable: WRITEV }).state !== "granted") {
      return vectored;
    }
    if (!Deno.env.get(WRITEV)) {
      Deno.env.set(WRITEV, "1");
      restoreEnv = true; // read by Deno at the first socket; then out of child processes' way
    }
    vectored = true;
  } catch {
    // no permissions API or no env access: Deno's default (a copy per socket)
  }
  return vectored;
}

function opened(): void {
  if (!restoreEnv) return;
  restoreEnv = false;
  try {
    Deno.env.delete(WRITEV);
  } catch {
    // access revoked meanwhile: it stays set, harmlessly
  }
}

/**
 * One socket: the peer the core sends through, and the one listener of the
 * socket's events (`handleEvent`), so a connection holds no closures here.
 */
class DenoPeer implements WsPeer, EventListenerObject {
  #ws: WebSocket;
  #events: WsEvents;
  // Only a dropped socket needs its table keys: made then, from these.
  #hostname: string | undefined;
  #port: number | undefined;
  constructor(ws: WebSocket, events: WsEvents, hostname?: string, port?: number) {
    this.#ws = ws;
    this.#events = events;
    this.#hostname = hostname;
    this.#port = port;
  }
  handleEvent(e: Event): void {
    switch (e.type) {
      case "open":
        opened();
        return this.#events.open(this);
      case "message":
        return this.#events.message((e as MessageEvent).data);
      case "close":
        return this.#events.close((e as CloseEvent).code);
    }
  }
  send(frame: string): void {
    try {
      this.#ws.send(frame);
    } catch {
      // closed meanwhile: the close event tells the core
    }
  }
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }
  // Deno adds the whole frame to its count in `send` and writes it later (a getter: no field
  // per socket). Checked against the runtime by the transports' own tests.
  get countsWholeSend(): boolean {
    return true;
  }
  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }
  close(code: number, reason: string): void {
    const state = this.#ws.readyState;
    if (state === WebSocket.CLOSING || state === WebSocket.CLOSED) return;
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closing
    }
  }
  terminate(): boolean {
    return false;
  }
  gone(): boolean | undefined {
    // Deno's close event proves nothing: after a frame that follows its close frame, Deno
    // reports the socket closed (code 0) but keeps it, and its unsent bytes, while the peer lives.
    const host = this.#hostname;
    const held = socketHeld(host && this.#port ? remoteKeys(host, this.#port) : []);
    return held === undefined ? undefined : !held;
  }
}

type Addr = { hostname?: string; port?: number } | undefined;

// Deno's `info.remoteAddr` is a getter that asks the runtime and builds an object on every read
// (about 0.5 µs): the upgrade path reads it once, in `clientIp`, and `upgrade` (called next, in
// the same synchronous call, with the same `info`) takes it from here.
let lastInfo: unknown;
let lastAddr: Addr;

const readAddr = (ctx: RequestContext): Addr =>
  (ctx as { remoteAddr?: Addr } | undefined)?.remoteAddr;

// No "error" listener: the close event that follows says what happened, and an error event
// nobody listens to is dropped (each listener costs ~0.5 KiB of allocation per upgrade).
const EVENTS = ["open", "message", "close"] as const;

/** `Deno.serve` + `Deno.upgradeWebSocket`. */
export const denoTransport: Transport = {
  runtime: "deno",
  // V8 compiles the upgrade and the socket code only for real sockets; 200 are enough for the first
  // 1,000 joins of a fresh server to cost what the bare loop's do (bench/README.md, warm-up).
  loopbackWarmUp: 200,

  // Deno holds each unsent frame (100 KB frames: 1.7 bytes of RSS per unsent byte) and, without
  // vectored writes, a write buffer the size of the largest frame it has sent, until the socket
  // closes. Asked when the server is put together, before its first socket.
  get memory() {
    return { factor: 1.7, keepsLargestFrame: !vectoredWrites() };
  },

  serve({ port, hostname, tls, fetch, onError, log }): Promise<Listener> {
    return new Promise((resolve, reject) => {
      try {
        // Guarded: an accept failure (EMFILE) must not end the process or the listening.
        const server = serveGuarded(
          { port, hostname, onListen: () => {}, onError, ...(tls ?? {}) },
          fetch as (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response,
          { log },
        );
        resolve({
          hostname: server.addr.hostname,
          port: server.addr.port,
          shutdown: async () => {
            await server.shutdown();
            await server.finished;
          },
        });
      } catch (err) {
        reject(err);
      }
    });
  },

  clientIp(_req: Request, ctx: RequestContext): string | null {
    lastInfo = ctx;
    const ip = (lastAddr = readAddr(ctx))?.hostname;
    // A peer that reset before we looked is reported as the unspecified address.
    if (!ip || ip === "0.0.0.0" || ip === "::") return null;
    return ip;
  },

  upgrade(req: Request, ctx: RequestContext, limits: SocketLimits, events: WsEvents): Response {
    // Read before the upgrade: Deno's request info is gone after it.
    const addr = ctx === lastInfo && ctx !== undefined ? lastAddr : readAddr(ctx);
    lastInfo = lastAddr = undefined; // nothing of this request is kept past it
    vectoredWrites(); // before the first socket (already asked when the server was put together)
    const { socket, response } = Deno.upgradeWebSocket(req, {
      idleTimeout: limits.idleTimeoutSeconds,
    });
    socket.binaryType = "arraybuffer";
    const peer = new DenoPeer(socket, events, addr?.hostname, addr?.port);
    for (const type of EVENTS) socket.addEventListener(type, peer);
    return response;
  },
};
