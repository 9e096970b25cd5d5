/**
 * The Node transport (internal): `node:http` and the `ws` package, on
 * Node.js (>= 22.18) and, opt-in, on Deno's `node:http`. `ws` bounds an
 * inbound message while its frames arrive (fragments included: 1009 before
 * they are buffered), `terminate()` destroys the socket, `bufferedAmount` is
 * the socket's own queue, and the HTTP server's header timeout closes
 * connections that never send a request.
 *
 * `ws` is the only npm package imported here, and only when a server is
 * served: loading this module loads `node:` built-ins only.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import type {
  FetchHandler,
  Listener,
  RequestContext,
  SocketLimits,
  Transport,
  WsEvents,
  WsPeer,
} from "./types.ts";
import { toRequest, upgradeRequest, writeRawResponse, writeResponse } from "./_node_http.ts";
import { keepAccepting } from "./_listen_watch.ts";
import { errorText } from "../_errors.ts";

/** The part of `ws`'s `WebSocket` used here. */
interface WsSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | Buffer, options: { binary: boolean }): void;
  close(code: number, reason: string): void;
  terminate(): void;
  ping(): void;
  on(event: "message", fn: (data: Buffer, isBinary: boolean) => void): void;
  on(event: "close", fn: (code: number) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  on(event: "pong", fn: () => void): void;
}

/** The part of `ws`'s `WebSocketServer` used here. */
interface WsServer {
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    cb: (ws: WsSocket) => void,
  ): void;
}

interface WsModule {
  WebSocketServer: new (options: Record<string, unknown>) => WsServer;
}

/** What the Node transport passes as the request context. */
export interface NodeContext {
  /** The node request (for an upgrade: its head only). */
  readonly req: IncomingMessage;
  /** For an upgrade request: the raw socket and the bytes read past the head. */
  readonly upgrade?: { socket: Duplex; head: Buffer };
}

const OPEN = 1;
// The answer to an upgrade the transport wrote itself (the 101 from ws): one for all of them.
const UPGRADED = new Response(null, { status: 200 });
// A Sec-WebSocket-Key is 16 bytes in base64; ws would refuse anything else after admission.
const KEY = /^[+/0-9A-Za-z]{22}==$/;

let wsModule: Promise<WsModule> | undefined;
// The specifier is built at run time: Deno fetches every literal import before a program starts,
// dynamic ones included, and a run on Deno or Bun must not download ws. On Deno it is the full
// npm specifier: imported from a registry, deno.json's scopes do not apply, and a publish cannot
// rewrite a specifier it cannot see. The version is deno.json's (a test keeps them equal).
const WS = "Deno" in globalThis ? ["npm:ws", "8.23.1"].join("@") : ["w", "s"].join("");
function loadWs(): Promise<WsModule> {
  return wsModule ??= import(WS) as Promise<WsModule>;
}

// A broadcast hands one frame to every viewer of a room in turn: encode it once, on its second
// send, not once per viewer. A frame sent once (an answer, a join) goes as a string, which the
// socket writes without a Buffer of its own.
let lastFrame = "";
let lastBytes: Buffer | undefined;
function payload(frame: string): string | Buffer {
  if (frame !== lastFrame) {
    lastFrame = frame;
    lastBytes = undefined;
    return frame;
  }
  return lastBytes ??= Buffer.from(frame, "utf8");
}

class NodePeer implements WsPeer {
  #ws: WsSocket;
  #socket: Duplex;
  /** Where the socket's events go. */
  readonly events: WsEvents;
  /** The transport's live peers (the heartbeat's), left on close. */
  readonly peers: Set<NodePeer>;
  /** Traffic or a pong since the last heartbeat. */
  alive = true;
  constructor(ws: WsSocket, socket: Duplex, events: WsEvents, peers: Set<NodePeer>) {
    this.#ws = ws;
    this.#socket = socket;
    this.events = events;
    this.peers = peers;
  }
  send(frame: string): void {
    if (this.#ws.readyState !== OPEN) return;
    try {
      this.#ws.send(payload(frame), { binary: false });
    } catch {
      // closed meanwhile: the close event tells the core
    }
  }
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
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
    if (this.#socket.writableLength === 0 && !this.#socket.destroyed) {
      // The close frame is with the kernel already: stop reading what the peer still sends
      // (an attacker's flood), let the frame reach it (FIN) and destroy the socket shortly in
      // case it never finishes its side. Destroying at once could reset the connection before
      // the peer has read why.
      this.#socket.pause();
      this.#socket.end();
      setTimeout(() => this.#ws.terminate(), 1000).unref();
    } else {
      // Unsent bytes would only be held for a peer that does not read: drop them now.
      this.#ws.terminate();
    }
    return true;
  }
  /** Read nothing more from the peer, even once ws resumes the socket. */
  stopReading(): void {
    this.#socket.pause();
    this.#socket.once("resume", pauseAgain);
  }
  gone(): boolean {
    // The TCP socket itself: destroyed means its file descriptor is closed.
    return this.#socket.destroyed;
  }
  /** The heartbeat: `false` once a peer missed a whole period (then it was terminated). */
  beat(): boolean {
    if (!this.alive) {
      this.#ws.terminate();
      return false;
    }
    this.alive = false;
    try {
      this.#ws.ping();
    } catch {
      // closing: the close event follows
    }
    return true;
  }
}

// The socket's listeners are shared by every socket (ws calls them on the socket, whose peer is
// kept under PEER): no closures per connection.
const PEER = Symbol("dback peer");
type PeerSocket = WsSocket & { [PEER]: NodePeer };
const ignore = () => {};
function onMessage(this: PeerSocket, data: Buffer, isBinary: boolean): void {
  const peer = this[PEER];
  peer.alive = true;
  peer.events.message(isBinary ? data : data.toString("utf8"));
}
function onPong(this: PeerSocket): void {
  this[PEER].alive = true;
}
function onError(this: PeerSocket): void {
  // ws sent the close (1009 too big, 1002 bad frame, 1007 bad UTF-8) and, on the next tick,
  // resumes the socket to discard what the peer still sends: an attacker's flood would be read
  // until the socket is paused (on Deno 130-340 KiB per attacker, not 64), and on Deno that
  // garbage outlives the next collection long enough to raise RSS by tens of MiB under repeated
  // attackers. The socket goes once that frame is out.
  const peer = this[PEER];
  peer.stopReading();
  setTimeout(() => peer.terminate(), 0);
}
function pauseAgain(this: Duplex): void {
  this.pause();
}
function onClose(this: PeerSocket, code: number): void {
  const peer = this[PEER];
  peer.peers.delete(peer);
  peer.events.close(code);
}

// Descriptors kept free for everything but client sockets (files being sent, Redis, logs).
const FD_RESERVE = 64;

/** The soft open-files limit (Linux), or `undefined` where it cannot be read. */
function openFilesLimit(): number | undefined {
  try {
    const m = readFileSync("/proc/self/limits", "utf8").match(/^Max open files\s+(\d+)/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** `node:http` + `ws`, one instance per `WebSocketServer`. */
export function nodeTransport(): Transport {
  let ws: WsModule | undefined;
  // ws takes maxPayload per server, dback per upgrade: one ws server per limit seen.
  const servers = new Map<number, WsServer>();
  const peers = new Set<NodePeer>();
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let heartbeatMs = 0;

  const wsServer = (maxPayload: number): WsServer => {
    if (!ws) throw new Error("the Node transport handles upgrades once it serves");
    let s = servers.get(maxPayload);
    if (!s) {
      s = new ws.WebSocketServer({
        noServer: true,
        maxPayload,
        perMessageDeflate: false,
        clientTracking: false,
      });
      servers.set(maxPayload, s);
    }
    return s;
  };

  const startHeartbeat = (idleSeconds: number) => {
    if (idleSeconds <= 0 || heartbeat !== undefined) return;
    // A peer is pinged every half period and terminated when it let a whole half pass
    // without a pong or a message: dead peers go within idleTimeoutSeconds.
    heartbeatMs = Math.max(500, idleSeconds * 500);
    heartbeat = setInterval(() => {
      for (const p of peers) if (!p.beat()) peers.delete(p);
    }, heartbeatMs);
    (heartbeat as { unref?: () => void }).unref?.();
  };

  return {
    runtime: "node",
    // RSS per unsent byte of frames not shared between sockets: 1.0 (10 MB) to 1.3 (100 KB).
    memory: { factor: 1.3 },
    // As on Deno: with 200 the first 1,000 joins of a fresh server cost what bare ws's do, for a
    // few hundred ms more CPU at start (bench/README.md, warm-up).
    loopbackWarmUp: 200,

    async serve(
      { port, hostname, tls, fetch, onError, log, headerTimeoutMs },
    ): Promise<Listener> {
      ws = await loadWs();
      const headersTimeout = headerTimeoutMs ?? 10_000;
      const timeouts = {
        headersTimeout,
        // requestTimeout bounds the whole request, body included; dback reads no body.
        requestTimeout: headersTimeout * 2,
        connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)),
        keepAliveTimeout: 5000,
        // The server's own Host check answers (and logs) a request without one, as on Deno.
        requireHostHeader: false,
      };
      // https.Server is an http.Server over TLS: the same events, timeouts and upgrades.
      const server: Server = tls
        ? createTlsServer({ ...timeouts, cert: tls.cert, key: tls.key })
        : createServer(timeouts);
      const secure = tls !== undefined;
      // Deno's node:net stops accepting for good after an accept fails with EMFILE: past this
      // many connections, a new one is closed right after its accept, so that accepts rarely
      // fail (a burst still can: those closes come later); the watch below covers the rest.
      const fds = openFilesLimit();
      if (fds !== undefined && fds > 2 * FD_RESERVE) server.maxConnections = fds - FD_RESERVE;
      const fallback = () => {
        const a = server.address();
        return a && typeof a === "object"
          ? `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`
          : "localhost";
      };
      const answer = async (req: Request, ctx: NodeContext): Promise<Response> => {
        try {
          return await (fetch as FetchHandler)(req, ctx);
        } catch (err) {
          return onError(err);
        }
      };
      server.on("request", (req: IncomingMessage, res: ServerResponse) => {
        let request: Request;
        try {
          request = toRequest(req, fallback(), secure);
        } catch {
          // A method the Fetch API forbids (TRACE, TRACK): dback answers GET and HEAD only.
          res.writeHead(405, { allow: "GET, HEAD", "content-length": "0" }).end();
          return;
        }
        answer(request, { req })
          .then((r) => writeResponse(res, r, req.method === "HEAD"))
          .catch((err) => {
            log(`response failed: ${errorText(err)}`);
            res.destroy();
          });
      });
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        socket.on("error", ignore); // a reset before ws takes the socket over
        let request: Request;
        try {
          // Not a web Request: the upgrade path reads the method, the URL and a few headers.
          request = upgradeRequest(req, fallback(), secure);
        } catch {
          socket.destroy();
          return;
        }
        answer(request, { req, upgrade: { socket, head } }).then((r) => {
          if (r !== UPGRADED) return writeRawResponse(socket, r);
        }).catch(() => socket.destroy());
      });
      // No "clientError" listener: without one, Node answers 400/408/431 and closes the socket
      // itself, and that is also how the header timeout ends a silent connection.
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port, host: hostname }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      // After listening, an accept failure (EMFILE) is told, not fatal.
      server.on("error", (err: Error) => log(`HTTP server: ${err.message}`));
      const addr = server.address();
      const bound = addr && typeof addr === "object" ? addr : { address: hostname, port };
      // Deno's node:net may stop accepting after an accept failed (EMFILE) without telling:
      // listen again when connections wait unaccepted. Node's own listener recovers by itself.
      const stopWatch = "Deno" in globalThis
        ? keepAccepting(server, bound.port, hostname, log)
        : () => {};
      return {
        hostname: bound.address,
        port: bound.port,
        shutdown: () =>
          new Promise<void>((resolve) => {
            clearInterval(heartbeat);
            heartbeat = undefined;
            stopWatch();
            // The core closed its WebSockets already; whatever is left must not hold the port.
            for (const p of peers) p.terminate();
            peers.clear();
            server.close(() => resolve());
            server.closeIdleConnections();
            // In-flight responses get a moment, then every connection goes.
            setTimeout(() => server.closeAllConnections(), 500).unref();
          }),
      };
    },

    clientIp(_req: Request, ctx: RequestContext): string | null {
      const ip = (ctx as NodeContext | undefined)?.req?.socket?.remoteAddress;
      if (!ip) return null;
      // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; limits count them as IPv4.
      return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
    },

    upgrade(_req: Request, ctx: RequestContext, limits: SocketLimits, events: WsEvents): Response {
      const c = ctx as NodeContext | undefined;
      if (!c?.upgrade) throw new Error("not a WebSocket upgrade on this server");
      const { req } = c;
      const { socket, head } = c.upgrade;
      if (!KEY.test(String(req.headers["sec-websocket-key"] ?? ""))) {
        throw new Error("missing or malformed Sec-WebSocket-Key");
      }
      const version = String(req.headers["sec-websocket-version"] ?? "");
      if (version !== "13" && version !== "8") throw new Error("unsupported WebSocket version");
      startHeartbeat(limits.idleTimeoutSeconds);
      let opened = false;
      wsServer(limits.maxPayloadBytes).handleUpgrade(req, socket, head, (w) => {
        opened = true;
        const peer = new NodePeer(w, socket, events, peers);
        (w as WsSocket & { [PEER]?: NodePeer })[PEER] = peer;
        peers.add(peer);
        w.on("message", onMessage);
        w.on("pong", onPong);
        w.on("error", onError);
        w.on("close", onClose);
        // Open at once: a frame may be read before a deferred open would run (seen on Deno).
        events.open(peer);
      });
      // ws drops a socket that was already gone without calling back.
      if (!opened) events.close(1006);
      return UPGRADED;
    },
  };
}
