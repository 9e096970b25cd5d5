/**
 * The transport seam (internal): what the server core needs from a runtime.
 * Listening, upgrading a request to a WebSocket, and the few socket calls
 * the core makes. One adapter per runtime implements it; nothing above this
 * seam names a runtime.
 *
 * @module
 */

/** A server-side WebSocket, as the core sees it. */
export interface WsPeer {
  /** Queue one text frame; never throws (a closed socket drops it). */
  send(frame: string): void;
  /** Bytes queued and not yet written to the network. */
  readonly bufferedAmount: number;
  /**
   * `true` where a send adds exactly the frame's UTF-8 bytes to
   * `bufferedAmount` before it returns and nothing drains during it (Deno
   * writes later, on its own loop): the unsent bytes after a send are then
   * known without asking again. Elsewhere they are asked for.
   */
  readonly countsWholeSend?: boolean;
  /** Whether frames can still be sent. */
  readonly isOpen: boolean;
  /** Start the close handshake. */
  close(code: number, reason: string): void;
  /**
   * Tear the connection down without waiting for the peer, and release its
   * TCP socket. Returns `false` where the runtime cannot (then only the close
   * handshake, or the runtime's own timeouts, end it), or no longer can (a
   * close already started).
   */
  terminate(): boolean;
  /**
   * Whether the runtime has let go of the TCP socket: `true` proven gone,
   * `false` still held, `undefined` when it cannot tell (then its close
   * event is taken as the proof). Asked about dropped sockets only.
   */
  gone?(): boolean | undefined;
}

/** What the core wants to hear from one upgraded socket. */
export interface WsEvents {
  /** The socket is open; `peer` is how to talk to it from now on. */
  open(peer: WsPeer): void;
  /** One complete message. */
  message(data: string | ArrayBuffer | Uint8Array): void;
  /** The socket closed (for whatever reason). */
  close(code: number): void;
}

/** Limits the runtime enforces itself, where it can. */
export interface SocketLimits {
  /** Seconds without traffic/pong before the runtime closes the socket; 0 disables. */
  idleTimeoutSeconds: number;
  /** Largest inbound message; a runtime that can refuses larger ones before buffering them. */
  maxPayloadBytes: number;
  /** Unsent bytes at which a runtime that can closes the socket itself. */
  maxBufferedBytes: number;
}

/** Whatever the runtime passes next to the request (Deno's `info`, Bun's `server`). */
export type RequestContext = unknown;

/** The core's request handler, as a runtime calls it. */
export type FetchHandler = (req: Request, ctx: RequestContext) => Response | Promise<Response>;

/** A listening server. */
export interface Listener {
  /** The bound address. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /** Stop accepting, let in-flight requests finish; resolves when the port is free. */
  shutdown(): Promise<void>;
}

/**
 * Native fan-out, for runtimes that have it (Bun's topics): one call per
 * broadcast serialises and writes the frame to every subscriber outside JS.
 * The hub mirrors its rooms here when the transport offers it; without it,
 * the hub loops over its members. Frames sent this way bypass each
 * connection's send-time slow-client check, so the server then sweeps
 * connections on a timer (see `_connection.ts`).
 */
export interface NativeRooms {
  /** Add `peer` to `room`. */
  subscribe(peer: WsPeer, room: string): void;
  /** Take `peer` out of `room` (a closed peer is ignored). */
  unsubscribe(peer: WsPeer, room: string): void;
  /** Send `frame` to every subscriber of `room`. */
  publish(room: string, frame: string): void;
}

/**
 * WebSocket handlers for a `Bun.serve` the user owns (pass them as its
 * `websocket` option). Typed without Bun's types: the socket is opaque here.
 */
export interface MountedWebSocket {
  /** Largest inbound message; larger ones close with 1009 before they are buffered. */
  readonly maxPayloadLength: number;
  /** Seconds without traffic before the runtime closes the socket. */
  readonly idleTimeout: number;
  /** Unsent bytes at which the runtime closes the socket. */
  readonly backpressureLimit: number;
  /** Close (rather than skip) a socket past `backpressureLimit`. */
  readonly closeOnBackpressureLimit: boolean;
  /** The socket opened. */
  open(ws: unknown): void;
  /** One message arrived. */
  message(ws: unknown, message: string | Uint8Array): void;
  /** The socket closed. */
  close(ws: unknown, code: number, reason: string): void;
  /** The socket can take more data. */
  drain(ws: unknown): void;
}

/** One runtime's way to serve HTTP and WebSockets. */
export interface Transport {
  /** Which runtime this is, for logs and `/metrics`. */
  readonly runtime: string;
  /** Native fan-out, when the runtime has it. */
  readonly rooms?: NativeRooms;
  /** Handlers to mount dback in a server the user owns, when the runtime needs them. */
  readonly websocket?: MountedWebSocket;
  /**
   * What the runtime holds per socket, measured (see docs/runtimes.md):
   * `factor` bytes of memory per unsent byte of a slow reader (2 when not
   * given), and whether it keeps a buffer the size of the largest frame it
   * sent until the socket closes. Charges are estimated with it.
   */
  readonly memory?: { readonly factor?: number; readonly keepsLargestFrame?: boolean };
  /**
   * How many real clients should join over a private loopback listener when
   * the server warms its join path at start (see `_warm.ts`); measured per
   * runtime (bench/README.md, "What a join costs the server"). 0 or absent:
   * none; stand-in sockets then join in memory instead.
   */
  readonly loopbackWarmUp?: number;
  /** Bind and serve; resolves once listening. */
  serve(options: {
    port: number;
    hostname: string;
    /** Serve HTTPS/WSS with this PEM certificate (chain) and key. */
    tls?: { cert: string; key: string };
    fetch: FetchHandler;
    onError: (err: unknown) => Response;
    /** Told about transport trouble the server survives (e.g. accept failures). */
    log: (message: string) => void;
    /**
     * A connection whose request head is not complete within this many ms is
     * closed, where the runtime lets the transport bound it.
     */
    headerTimeoutMs?: number;
  }): Promise<Listener>;
  /** The client's IP address, or `null` when the runtime no longer knows it (peer already gone). */
  clientIp(req: Request, ctx: RequestContext): string | null;
  /**
   * Upgrade `req` to a WebSocket wired to `events`. Returns the response to
   * answer the request with. Throws on a request that cannot be upgraded.
   */
  upgrade(req: Request, ctx: RequestContext, limits: SocketLimits, events: WsEvents): Response;
}
