/**
 * Keeps a `Deno.serve` listener alive through accept failures.
 *
 * Why: when `accept()` fails (EMFILE "Too many open files" is the common one:
 * a flood of silent TCP connections uses up the fd limit), Deno 2 ends the
 * server's accept loop and rejects `HttpServer.finished`. Unhandled, that
 * rejection kills the process ("Uncaught (in promise) Http: Error: Too many
 * open files"); handled, the process lives but nothing listens any more. This
 * module listens again on the same address, after a back-off, for as long as
 * it takes; connections already open stay with the server that accepted them.
 *
 * What it does not do: bound idle connections before their request head is
 * complete. `Deno.serve` has no header timeout and calls no code of ours
 * before the head is read, so a silent connection holds its fd until the
 * peer goes away; the fd budget (`ulimit -n`) and a front proxy bound that.
 *
 * @module
 */
import { errorText } from "../_errors.ts";

/** A listener that lived this long is healthy again: the back-off restarts. */
const STABLE_MS = 30_000;

/** The TCP form of `Deno.serve`, which is all {@link serveGuarded} calls. */
export type ServeTcp = (
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
) => Deno.HttpServer<Deno.NetAddr>;

/** How {@link serveGuarded} retries and reports. */
export interface AcceptGuardOptions {
  /** Told about every failure and every recovery; default: `console.error`. */
  log?: (message: string) => void;
  /** First wait before listening again, in ms; doubles per failure. Default 100. */
  retryMs?: number;
  /** Longest wait between attempts, in ms. Default 2000. */
  maxRetryMs?: number;
  /** The `Deno.serve` to call; default: `Deno.serve` as it is at the call. */
  serve?: ServeTcp;
}

/**
 * `Deno.serve(options, handler)` for TCP, with the accept loop restarted
 * whenever it dies: the returned server's `finished` settles only after `shutdown()` (or the
 * `signal`), `addr` is the address first bound, and a restart binds that same
 * port again. `onListen` is called once, for the first bind.
 *
 * @example
 * ```ts
 * import { serveGuarded } from "./_accept_guard.ts";
 * const server = serveGuarded(
 *   { hostname: "127.0.0.1", port: 0, onListen: () => {} },
 *   () => new Response("ok"),
 *   { log: () => {} },
 * );
 * const res = await fetch(`http://127.0.0.1:${server.addr.port}/`);
 * if ((await res.text()) !== "ok") throw new Error("expected ok");
 * await server.shutdown();
 * ```
 */
export function serveGuarded(
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  guard: AcceptGuardOptions = {},
): Deno.HttpServer<Deno.NetAddr> {
  const log = guard.log ?? ((m: string) => console.error(m));
  const firstDelay = guard.retryMs ?? 100;
  const maxDelay = guard.maxRetryMs ?? 2000;
  const serve: ServeTcp = guard.serve ?? Deno.serve;
  const servers = new Set<Deno.HttpServer<Deno.NetAddr>>();
  let closing = false;
  let referenced = true;
  let delay = firstDelay;
  let listenedAt = Date.now();
  let retry: ReturnType<typeof setTimeout> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => resolveFinished = r);

  const settle = async () => {
    clearTimeout(retry);
    retry = undefined;
    await Promise.allSettled([...servers].map((s) => s.finished));
    resolveFinished();
  };

  const watch = (server: Deno.HttpServer<Deno.NetAddr>) => {
    server.finished.then(
      () => {
        servers.delete(server);
        if (!closing && !options.signal?.aborted) {
          // A clean end we did not ask for: treat it like a failure.
          relistenSoon("the listener stopped");
        }
      },
      (err) => {
        if (closing || options.signal?.aborted) return;
        relistenSoon(errorText(err));
      },
    );
  };

  const listen = (port: number, first: boolean) => {
    const server = serve(
      first ? { ...options, port } : { ...options, port, onListen: () => {} },
      handler,
    );
    servers.add(server);
    if (!referenced) server.unref();
    watch(server);
    return server;
  };

  const first = listen(options.port ?? 8000, true);
  const addr = first.addr;

  function relistenSoon(reason: string) {
    if (retry !== undefined || closing) return;
    // A listener that lasted a while earns a fresh, short back-off; one that
    // died at once (the fds are still used up) waits longer each time.
    if (Date.now() - listenedAt > STABLE_MS) delay = firstDelay;
    log(`accept failed (${reason}); listening again on port ${addr.port} in ${delay} ms`);
    retry = setTimeout(attempt, delay);
    delay = Math.min(delay * 2, maxDelay);
  }

  function attempt() {
    retry = undefined;
    if (closing || options.signal?.aborted) return;
    try {
      listen(addr.port, false);
      listenedAt = Date.now();
      log(`listening again on port ${addr.port}`);
    } catch (err) {
      relistenSoon(errorText(err));
    }
  }

  options.signal?.addEventListener("abort", () => {
    closing = true;
    void settle();
  }, { once: true });

  return {
    finished,
    addr,
    ref() {
      referenced = true;
      for (const s of servers) s.ref();
    },
    unref() {
      referenced = false;
      for (const s of servers) s.unref();
    },
    async shutdown() {
      closing = true;
      clearTimeout(retry);
      retry = undefined;
      // A server whose accept loop died may refuse a shutdown: nothing to wait for there.
      await Promise.allSettled([...servers].map((s) => s.shutdown()));
      await settle();
    },
    async [Symbol.asyncDispose]() {
      await this.shutdown();
    },
  };
}
