/**
 * The broker seam: how one event reaches every viewer of a server. The local
 * broker hands the event straight back to this process; a cluster broker
 * (see the `./redis` entry point) carries it through Redis to every
 * instance, and each instance's server delivers it to its own viewers.
 *
 * @module
 */
import type { ServerEvent } from "./events.ts";

/**
 * Where an event came from: the data source (in a cluster only the lease
 * holder's source may publish) or a library broadcast (any instance may).
 *
 * @example
 * ```ts
 * import type { EventOrigin } from "@dzone/dback";
 * import { LocalBroker } from "./broker.ts";
 * const broker = new LocalBroker();
 * const origins: EventOrigin[] = [];
 * await broker.open(() => 1);
 * for (const origin of ["source", "library"] as const) {
 *   if (broker.publish({ type: "server-gone", event: { server: "1" } }, origin) === 1) {
 *     origins.push(origin);
 *   }
 * }
 * if (origins.join() !== "source,library") throw new Error(origins.join());
 * ```
 */
export type EventOrigin = "source" | "library";

/**
 * Delivers an event to this instance's viewers (patching its cached user
 * map first) and returns how many connections it reached.
 *
 * @example
 * ```ts
 * import type { Deliver } from "@dzone/dback";
 * import { LocalBroker } from "./broker.ts";
 * const seen: string[] = [];
 * const deliver: Deliver = (e) => seen.push(e.type);
 * const broker = new LocalBroker();
 * await broker.open(deliver);
 * broker.publish({ type: "update-clientid", event: { server: "1", clientId: "2" } }, "library");
 * await broker.close();
 * broker.publish({ type: "update-clientid", event: { server: "1", clientId: "3" } }, "library");
 * if (seen.join() !== "update-clientid") throw new Error("delivered after close");
 * ```
 */
export type Deliver = (event: ServerEvent) => number;

/**
 * Carries events to every instance. The server calls `open` in `start()`,
 * `publish` for every validated event (with its origin), `watch` when a
 * server gains its first or loses its last local viewer, and `close` in
 * `stop()`.
 *
 * @example
 * ```ts
 * import { type Broker, type Deliver, WebSocketServer } from "@dzone/dback";
 * let deliver: Deliver = () => 0;
 * const origins: string[] = [];
 * const broker: Broker = {
 *   open: (d) => { deliver = d; return Promise.resolve(); },
 *   publish: (e, origin) => { origins.push(`${origin} ${e.type}`); return deliver(e); },
 *   watch: () => {},
 *   close: () => Promise.resolve(),
 * };
 * await using server = new WebSocketServer({ broker, logLevel: "silent" });
 * await server.start({ listen: false });
 * server.broadcastMessage({ server: "1", uid: "2", message: "hi", channel: "3" });
 * if (origins.join() !== "library message") throw new Error(origins.join());
 * ```
 */
export interface Broker {
  /** Start; `deliver` is called for every event that reaches this instance, from any instance. */
  open(deliver: Deliver): Promise<void>;
  /**
   * Send a validated event to all instances. Returns the connections reached
   * now (this instance's, for a cluster).
   */
  publish(event: ServerEvent, origin: EventOrigin): number;
  /** This instance's viewers of `serverId` came (`true`) or all left (`false`). */
  watch(serverId: string, active: boolean): void;
  /** Stop; no `deliver` call follows. */
  close(): Promise<void>;
  /** Extra Prometheus text lines for `/metrics` (e.g. a cluster's Redis state). */
  metrics?(): string;
  /** This instance's part in a cluster (`leader`, `follower`), for `/api/status`. Absent: a single instance. */
  role?(): string;
}

/** The broker of a single process: every event goes straight back to this instance (internal). */
export class LocalBroker implements Broker {
  #deliver: Deliver = () => 0;
  /** Keep `deliver`. */
  open(deliver: Deliver): Promise<void> {
    this.#deliver = deliver;
    return Promise.resolve();
  }
  /** Deliver here, now, whatever the origin. */
  publish(event: ServerEvent, _origin: EventOrigin): number {
    return this.#deliver(event);
  }
  /** Nothing to subscribe to. */
  watch(): void {}
  /** Deliver nothing more. */
  close(): Promise<void> {
    this.#deliver = () => 0;
    return Promise.resolve();
  }
}
