/**
 * What a server holds while it runs, taken and given back (internal): its
 * ports (the viewer port through the transport, and `/metrics` on a port of
 * its own when configured), its data source and broker, and on stop the
 * drain of its connections. Every step is bounded: stopping returns by its
 * deadline even when a peer or a part never answers.
 *
 * @module
 */
import type { Admission } from "./_admission.ts";
import { errorText } from "./_errors.ts";
import type { Logger } from "./log.ts";
import { startMetricsListener } from "./_metrics_port.ts";
import type { Settings } from "./options.ts";
import { errorPage } from "./_static.ts";
import type { FetchHandler, Listener, Transport } from "./transport/types.ts";

/** How long a listener may take to shut down before the server stops anyway. */
const LISTENER_GRACE_MS = 1000;

/**
 * What a viewer port does with each request: refuses one without `Host`,
 * answers a failed one with a 500 page, and logs both.
 *
 * @example
 * ```ts
 * import { portHandlers } from "./_lifecycle.ts";
 * import { Logger } from "./log.ts";
 * const h = portHandlers(() => new Response("hi"), new Logger("silent"));
 * const url = "http://dzone.local/";
 * const ok = await h.fetch(new Request(url, { headers: { host: "dzone.local" } }), undefined);
 * const bare = await h.fetch(new Request(url), undefined);
 * if ((await ok.text()) !== "hi" || bare.status !== 400) throw new Error(`${ok.status} ${bare.status}`);
 * if (h.onError(new Error("x")).status !== 500) throw new Error("500 page");
 * ```
 */
export function portHandlers(fetch: FetchHandler, log: Logger): {
  fetch: FetchHandler;
  onError: (err: unknown) => Response;
  log: (message: string) => void;
} {
  return {
    // From the network, a request without Host is malformed (mounted use may build one).
    fetch: (req, ctx) =>
      req.headers.get("host") !== null ? fetch(req, ctx) : (
        log.debug("request without a Host header: 400"), errorPage(400, "Bad Request")
      ),
    onError: (err) => {
      log.error(`request failed: ${errorText(err)}`);
      return errorPage(500, "Internal Server Error");
    },
    log: (message) => log.error(message),
  };
}

/**
 * The ports of one server.
 *
 * @example
 * ```ts
 * import { Ports } from "./_lifecycle.ts";
 * import { Logger } from "./log.ts";
 * import { parseOptions } from "./options.ts";
 * import { denoTransport } from "./transport/_deno.ts";
 * const ports = new Ports();
 * const log = new Logger("silent");
 * await ports.open({
 *   listen: true,
 *   transport: denoTransport,
 *   settings: parseOptions({ port: 0, hostname: "127.0.0.1", metrics: { port: 0 } }),
 *   fetch: () => new Response("hi"),
 *   metricsText: () => "dback_up 1\n",
 *   log,
 * });
 * const viewer = await fetch(`http://127.0.0.1:${ports.viewer!.port}/`);
 * const metrics = await fetch(`http://127.0.0.1:${ports.metrics!.port}/metrics`);
 * if ((await viewer.text()) !== "hi" || (await metrics.text()) !== "dback_up 1\n") throw new Error();
 * await ports.close(log);
 * if (ports.viewer || ports.metrics) throw new Error("both freed");
 * ```
 */
export class Ports {
  /** The viewer port, once bound. */
  viewer: Listener | undefined;
  /** `/metrics` on its own port, once bound. */
  metrics: Listener | undefined;

  /**
   * Bind the viewer port (when `listen`) and the metrics port (when
   * configured). On failure, whatever did bind is let go again and the error
   * is thrown.
   */
  async open(o: {
    listen: boolean;
    transport: Transport;
    settings: Settings;
    fetch: FetchHandler;
    metricsText: () => string;
    log: Logger;
  }): Promise<void> {
    const { settings: s, log } = o;
    try {
      if (o.listen) {
        this.viewer = await o.transport.serve({
          port: s.port,
          hostname: s.hostname,
          tls: s.tls,
          headerTimeoutMs: s.headerTimeoutMs,
          ...portHandlers(o.fetch, log),
        });
      }
      if (s.metrics) {
        const l = await startMetricsListener(
          s.metrics.port,
          s.metrics.hostname ?? s.hostname,
          o.metricsText,
        );
        this.metrics = l;
        log.info(`/metrics on ${l.hostname}:${l.port}`);
      }
    } catch (err) {
      // A port that did bind (the viewer port, when the metrics port did not) is let go.
      for (const l of [this.metrics, this.viewer]) await l?.shutdown().catch(() => {});
      this.metrics = this.viewer = undefined;
      throw err;
    }
  }

  /** Free both ports; the viewer port gets a short grace for in-flight requests. */
  async close(log: Logger): Promise<void> {
    await this.metrics?.shutdown();
    this.metrics = undefined;
    const viewer = this.viewer;
    this.viewer = undefined;
    if (!viewer) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), LISTENER_GRACE_MS));
    const done = await Promise.race([viewer.shutdown().then(() => "done" as const), late]);
    clearTimeout(timer);
    if (done === "late") log.warn("the HTTP server did not finish in time; stopped anyway");
  }
}

/**
 * Close every connection with 1001 and wait for them until `timeoutMs`;
 * those still open then are forgotten (and counted in a warning).
 */
export async function drainConnections(
  admission: Admission,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  admission.closeAll(1001, "Server shutting down");
  while (admission.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  if (admission.size > 0) {
    log.warn(`${admission.forgetAll()} connection(s) did not close in time`);
  }
}

/**
 * Stop each part in turn (the data source, then the broker); one that throws
 * does not keep the next from stopping. Failures are logged when `log` is given.
 *
 * @example
 * ```ts
 * import { stopParts } from "./_lifecycle.ts";
 * import { Logger, type LogRecord } from "./log.ts";
 * const lines: LogRecord[] = [];
 * const stopped: string[] = [];
 * await stopParts([
 *   ["data source", () => { throw new Error("stuck"); }],
 *   ["broker", () => void stopped.push("broker")],
 * ], new Logger("error", (r) => lines.push(r)));
 * if (stopped.join() !== "broker") throw new Error("the broker must stop anyway");
 * if (lines[0]?.message !== "data source failed to stop: stuck") throw new Error(lines[0]?.message);
 * ```
 */
export async function stopParts(
  parts: ReadonlyArray<readonly [string, () => unknown]>,
  log?: Logger,
): Promise<void> {
  for (const [what, stop] of parts) {
    try {
      await stop();
    } catch (err) {
      log?.error(`${what} failed to stop: ${errorText(err)}`);
    }
  }
}
