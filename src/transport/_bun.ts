/**
 * The Bun transport (internal): `Bun.serve` with `websocket` handlers
 * (uWebSockets underneath). Unlike Deno's, this socket refuses an oversized
 * or fragmented-oversized inbound message before buffering it (1009), closes
 * a peer that lets `maxBufferedBytes` pile up, can be torn down at once
 * (`terminate()` on an open socket; after `close()` the socket lingers up
 * to ~16 s), and fans a frame out to a topic in one native call.
 *
 * Nothing here touches `Bun` at module load, so Deno can load (and type
 * check) this file; Bun's types are described by the few members used.
 *
 * @module
 */
import type {
  Listener,
  MountedWebSocket,
  NativeRooms,
  RequestContext,
  SocketLimits,
  Transport,
  WsEvents,
  WsPeer,
} from "./types.ts";

/** The part of Bun's `ServerWebSocket` used here. */
interface BunSocket {
  data: BunPeer;
  readyState: number;
  send(data: string): number;
  close(code?: number, reason?: string): void;
  terminate(): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  getBufferedAmount(): number;
}

/** The part of Bun's `Server` used here. */
interface BunServer {
  readonly hostname?: string;
  readonly port?: number;
  upgrade(req: Request, options: { data: BunPeer }): boolean;
  requestIP(req: Request): { address: string } | null;
  publish(topic: string, data: string): number;
  stop(closeActiveConnections?: boolean): Promise<void>;
}

interface BunGlobal {
  serve(options: Record<string, unknown>): BunServer;
}

const OPEN = 1;
// Bun has answered the upgrade itself and ignores what fetch returns then: one shared, empty
// response (never read, so never used up) instead of one per upgrade.
const UPGRADED = new Response(null);
// Topics are per Bun server; the prefix keeps ours apart from a host app's own.
const TOPIC = "dback/";

/** One socket: made at the upgrade (it is the socket's `data`), attached when it opens. */
class BunPeer implements WsPeer {
  #ws!: BunSocket;
  #terminated = false;
  /** Where the socket's events go. */
  readonly events: WsEvents;
  constructor(events: WsEvents) {
    this.events = events;
  }
  /** The socket opened. */
  attach(ws: BunSocket): void {
    this.#ws = ws;
  }
  get socket(): BunSocket {
    return this.#ws;
  }
  send(frame: string): void {
    try {
      this.#ws.send(frame);
    } catch {
      // closed meanwhile: the close event tells the core
    }
  }
  get bufferedAmount(): number {
    try {
      return this.#ws.getBufferedAmount();
    } catch {
      return 0;
    }
  }
  get isOpen(): boolean {
    return this.#ws.readyState === OPEN;
  }
  close(code: number, reason: string): void {
    if (this.#ws.readyState !== OPEN) return;
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closing
    }
  }
  terminate(): boolean {
    // After close(), Bun waits up to ~16 s for the peer's close frame (behind any unsent
    // bytes, so for a slow reader the whole time) and terminate() no longer does anything.
    if (this.#ws.readyState !== OPEN) return false;
    try {
      this.#ws.terminate();
    } catch {
      // already gone: that is what we wanted
    }
    this.#terminated = true;
    return true;
  }
  gone(): boolean | undefined {
    // terminate() closes the file descriptor before it returns (its close event fires inside).
    return this.#terminated ? true : undefined;
  }
}

function bunGlobal(): BunGlobal {
  const bun = (globalThis as { Bun?: BunGlobal }).Bun;
  if (!bun) throw new Error("the Bun transport needs the Bun runtime");
  return bun;
}

/**
 * A Bun transport for one `WebSocketServer`. The socket limits are fixed
 * here because Bun takes them per server, not per upgrade.
 */
export function bunTransport(limits: SocketLimits): Transport {
  // The Bun server that upgraded our sockets: ours, or the host app's when mounted.
  let server: BunServer | undefined;

  const websocket: MountedWebSocket = {
    maxPayloadLength: limits.maxPayloadBytes,
    // Bun counts in seconds and allows at most 960; 0 disables.
    idleTimeout: Math.min(limits.idleTimeoutSeconds, 960),
    backpressureLimit: limits.maxBufferedBytes,
    closeOnBackpressureLimit: true,
    open(ws) {
      const peer = (ws as BunSocket).data;
      peer.attach(ws as BunSocket);
      peer.events.open(peer);
    },
    message(ws, message) {
      (ws as BunSocket).data.events.message(message);
    },
    close(ws, code) {
      (ws as BunSocket).data.events.close(code);
    },
    drain() {
      // Nothing waits for drain: the core checks the unsent bytes when it sends.
    },
  };

  const rooms: NativeRooms = {
    subscribe(peer, room) {
      try {
        (peer as BunPeer).socket.subscribe(TOPIC + room);
      } catch {
        // closed meanwhile
      }
    },
    unsubscribe(peer, room) {
      try {
        (peer as BunPeer).socket.unsubscribe(TOPIC + room);
      } catch {
        // closed meanwhile: Bun dropped its topics already
      }
    },
    publish(room, frame) {
      server?.publish(TOPIC + room, frame);
    },
  };

  return {
    runtime: "bun",
    rooms,
    websocket,
    // RSS per unsent byte of a slow reader with ~10 MB frames (1.07 with 1 MB ones).
    memory: { factor: 1.7 },
    // JavaScriptCore optimises later than V8: more real joins pay (first 1,000 real joins 64.8 ->
    // 54.4 µs each with 500, 47.7 with 1,000) for more CPU at start (~150 ms; 1,000: ~250 ms).
    loopbackWarmUp: 500,

    serve({ port, hostname, tls, fetch, onError }): Promise<Listener> {
      const s = bunGlobal().serve({
        port,
        hostname,
        ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
        fetch: (req: Request, srv: BunServer) => fetch(req, srv),
        error: onError,
        websocket,
      });
      server = s;
      return Promise.resolve({
        hostname: s.hostname ?? hostname,
        port: s.port ?? port,
        shutdown: async () => {
          // The core closed every WebSocket already; idle keep-alive sockets must not hold the port.
          await s.stop(true);
        },
      });
    },

    clientIp(req: Request, ctx: RequestContext): string | null {
      const srv = ctx as BunServer | undefined;
      if (typeof srv?.requestIP !== "function") return null;
      return srv.requestIP(req)?.address || null;
    },

    upgrade(req: Request, ctx: RequestContext, _limits: SocketLimits, events: WsEvents): Response {
      const srv = ctx as BunServer | undefined;
      if (typeof srv?.upgrade !== "function") {
        throw new Error("on Bun, pass the Bun server as the second argument of fetch()");
      }
      if (!srv.upgrade(req, { data: new BunPeer(events) })) {
        throw new Error("not a WebSocket upgrade");
      }
      server = srv;
      return UPGRADED;
    },
  };
}
