/**
 * A WebSocket upgrade request, from the transport to admission (internal):
 * refuse while not serving, find the client address, ask admission, let the
 * connection in, and hand the socket to the transport. Every refusal is an
 * HTTP answer with a metric label; nothing here throws.
 *
 * @module
 */
import { type Admission, quote } from "./_admission.ts";
import type { ClientAddresses } from "./_client_address.ts";
import { errorText } from "./_errors.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import { errorPage } from "./_static.ts";
import type { RequestContext, SocketLimits, Transport } from "./transport/types.ts";

/** What the upgrade path needs. */
export interface UpgradeDeps {
  /** Whether the server accepts connections now (not starting, not draining). */
  running(): boolean;
  /** The runtime's transport. */
  transport: Transport;
  /** Which address a request comes from (trusted proxies, IPv6 prefixes). */
  clients: ClientAddresses;
  /** The origins this server's own page is served under. */
  ownOrigins(): string[];
  /** Who may connect, and the connections let in. */
  admission: Admission;
  /** What the runtime enforces itself per socket. */
  limits: SocketLimits;
  /** The server's logger. */
  log: Logger;
  /** The server's counters. */
  metrics: Metrics;
}

/** The handler for requests that ask to become a WebSocket. */
export function upgrader(d: UpgradeDeps): (req: Request, ctx: RequestContext) => Response {
  // Asked by admission only when an origin list is configured and does not name the request's.
  const ownOrigins = () => d.ownOrigins();
  return (req, ctx) => {
    if (!d.running()) {
      d.metrics.reject("draining");
      return errorPage(503, "Service Unavailable");
    }
    const peer = d.transport.clientIp(req, ctx);
    if (peer === null) {
      // The peer reset before we could see its address: nothing to upgrade.
      d.metrics.reject("peer_gone");
      return errorPage(400, "Bad Request");
    }
    const client = d.clients.resolve(peer, req.headers);
    const ip = client.address;
    // Read only for what uses it: the origin list, and the `connected` line.
    const origin = d.admission.checksOrigin || d.log.enabled("info")
      ? req.headers.get("origin")
      : null;
    const refusal = d.admission.check(client, origin, ownOrigins);
    if (refusal) return errorPage(refusal.status, refusal.title);
    const conn = d.admission.admit(client);
    try {
      const res = d.transport.upgrade(req, ctx, d.limits, conn);
      // Built only when written: at `warn` or quieter a connection costs no string for its line.
      if (d.log.enabled("info")) {
        d.log.info(`connected from ${ip}${origin ? ` (origin ${quote(origin)})` : ""}`, conn.id);
      }
      return res;
    } catch (err) {
      conn.drop(1002, "Bad upgrade");
      d.log.warn(`bad upgrade from ${ip}: ${errorText(err)}`);
      return errorPage(400, "Bad Request");
    }
  };
}
