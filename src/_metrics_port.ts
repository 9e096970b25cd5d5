/**
 * `/metrics` on a port of its own (internal), so operators can keep it off
 * the public viewer port. A plain `node:http` server: it carries no
 * WebSockets, so it needs nothing from the runtime's transport and runs the
 * same on Deno, Bun and Node. It answers `GET`/`HEAD /metrics` and 404
 * otherwise.
 *
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Listener } from "./transport/types.ts";

/**
 * Listen on `hostname:port` (0 picks a free port); resolves once bound.
 *
 * @example
 * ```ts
 * import { startMetricsListener } from "./_metrics_port.ts";
 * const l = await startMetricsListener(0, "127.0.0.1", () => "dback_up 1\n");
 * const res = await fetch(`http://127.0.0.1:${l.port}/metrics`);
 * if ((await res.text()) !== "dback_up 1\n") throw new Error("unexpected");
 * await l.shutdown();
 * ```
 */
export function startMetricsListener(
  port: number,
  hostname: string,
  text: () => string,
): Promise<Listener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    const body = text();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      const addr = server.address() as AddressInfo;
      resolve({
        hostname: addr.address,
        port: addr.port,
        shutdown: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}
