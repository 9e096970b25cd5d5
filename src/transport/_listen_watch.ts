/**
 * Notices a listening socket that stopped accepting, for the Node transport
 * on Deno.
 *
 * Why: when an accept fails for want of a file descriptor (EMFILE), Deno's
 * `node:net` may stop accepting on that listener for good, without an error
 * event, while the kernel keeps queueing connections for it. The watch looks
 * at the kernel's accept queue once per period: connections waiting there
 * through a whole period while the server accepted none, although it was
 * below its connection cap, mean the listener is stuck, and `relisten` is
 * called. Looking costs no connection (a self-connect would need a
 * descriptor exactly when they have run out), only a short read of the
 * kernel's table. {@link keepAccepting} does this for a `node:net` server.
 *
 * @module
 */
import { Server as NetServer, type Socket } from "node:net";
import { acceptQueue } from "./_tcp_table.ts";

/** What {@link watchListener} looks at and does. */
export interface ListenWatch {
  /** Connections waiting in the kernel's accept queue; `undefined`: cannot tell now. */
  queued(): number | undefined;
  /** Connections accepted so far (only grows). */
  accepted(): number;
  /** Whether the server takes more connections (at its cap, accepts are dropped, not counted). */
  belowCap(): boolean;
  /** The listener is stuck: close it and listen again. */
  relisten(queued: number): void;
  /** Between two looks, in ms. Default 1000. */
  periodMs?: number;
}

/**
 * Look at a listener every `periodMs` and call `relisten` once connections
 * have waited unaccepted through a whole period; the returned function stops
 * the watch. The timer does not keep a process alive.
 *
 * @example
 * ```ts
 * import { watchListener } from "./_listen_watch.ts";
 * let accepted = 0;
 * let relistened = 0;
 * const stop = watchListener({
 *   queued: () => 3,
 *   accepted: () => accepted,
 *   belowCap: () => true,
 *   relisten: () => relistened++,
 *   periodMs: 10,
 * });
 * await new Promise((r) => setTimeout(r, 200));
 * stop();
 * if (relistened === 0) throw new Error("a stuck listener was not noticed");
 * ```
 */
export function watchListener(watch: ListenWatch): () => void {
  let lastAccepted = watch.accepted();
  // Looks in a row that found connections waiting and none accepted since the look before.
  let stuck = 0;
  const timer = setInterval(() => {
    const queued = watch.queued();
    const accepted = watch.accepted();
    const idle = accepted === lastAccepted;
    lastAccepted = accepted;
    if (queued === undefined || queued === 0 || !idle || !watch.belowCap()) {
      stuck = 0;
      return;
    }
    // The first such look may only have caught a connection that has just arrived; the second
    // means it waited a whole period.
    if (++stuck < 2) return;
    stuck = 0;
    watch.relisten(queued);
  }, watch.periodMs ?? 1000);
  if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(timer);
  } else (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}

/** Options of {@link keepAccepting}. */
export interface KeepAcceptingOptions {
  /** Between two looks, in ms. Default 1000. */
  periodMs?: number;
  /** The accept queue's length; default: the kernel's, read from its TCP table. */
  queued?: () => number | undefined;
}

/**
 * Watch `server` (listening on `port`, on `host`) with {@link watchListener}
 * and, when its listener is stuck, close that listener alone (connections
 * stay) and listen again on the same port, retrying with a back-off while
 * the port cannot be bound yet. Everything is told to `log`. The returned
 * function stops the watch and any retry.
 *
 * @example
 * ```ts
 * import { createServer } from "node:net";
 * import { keepAccepting } from "./_listen_watch.ts";
 * const server = createServer((socket) => socket.end("hi"));
 * await new Promise<void>((r) => server.listen({ port: 0, host: "127.0.0.1" }, r));
 * const { port } = server.address() as { port: number };
 * const stop = keepAccepting(server, port, "127.0.0.1", () => {});
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const buf = new Uint8Array(2);
 * await conn.read(buf);
 * if (new TextDecoder().decode(buf) !== "hi") throw new Error("not served");
 * conn.close();
 * stop();
 * await new Promise((r) => server.close(r));
 * ```
 */
export function keepAccepting(
  server: NetServer,
  port: number,
  host: string | undefined,
  log: (message: string) => void,
  options: KeepAcceptingOptions = {},
): () => void {
  const { periodMs, queued = () => acceptQueue(port) } = options;
  let accepted = 0;
  let open = 0;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const counted = () => open--;
  const onConnection = (socket: Socket) => {
    accepted++;
    open++;
    socket.once("close", counted);
  };
  server.on("connection", onConnection);

  const listenAgain = (delay: number) => {
    retry = undefined;
    if (stopped) return;
    const failed = (err: Error) => {
      server.off("listening", listened);
      if (stopped) return;
      log(`listening again on port ${port} failed (${err.message}); next try in ${delay} ms`);
      retry = setTimeout(() => listenAgain(Math.min(delay * 2, 2000)), delay);
    };
    const listened = () => {
      server.off("error", failed);
      log(`listening again on port ${port}`);
    };
    server.once("error", failed);
    server.once("listening", listened);
    server.listen({ port, host });
  };

  const stopWatch = watchListener({
    queued,
    accepted: () => accepted,
    belowCap: () => server.maxConnections === undefined || open < server.maxConnections,
    relisten(queued) {
      if (retry !== undefined || !server.listening) return;
      log(`the listener on port ${port} stopped accepting (${queued} connections waiting)`);
      // net's close, not the HTTP server's: that one would also close idle keep-alive connections.
      NetServer.prototype.close.call(server);
      listenAgain(100);
    },
    periodMs,
  });
  return () => {
    stopped = true;
    stopWatch();
    clearTimeout(retry);
    server.off("connection", onConnection);
  };
}
