/**
 * The broker seam: how one broadcast reaches every viewer of a server. The
 * local broker hands the event straight back to this process; a cluster
 * broker (see the `./redis` entry point) carries it through Redis to every
 * instance, and each instance's server delivers it to its own viewers.
 *
 * @module
 */
import type { ChatEvent, ClientIdEvent, PresenceEvent } from "./protocol.ts";

/**
 * One broadcast, as it travels between instances.
 *
 * @example
 * ```ts
 * import type { ServerEvent } from "@dzone/dback";
 * const e: ServerEvent = { type: "presence", event: { server: "1", uid: "42", status: "idle" } };
 * if (e.type !== "presence") throw new Error("unexpected");
 * ```
 */
export type ServerEvent =
  | { type: "presence"; event: PresenceEvent }
  | { type: "message"; event: ChatEvent }
  | { type: "update-clientid"; event: ClientIdEvent }
  | { type: "server-gone"; event: { server: string } };

/**
 * Delivers an event to this instance's viewers (patching its cached user
 * map first) and returns how many connections it reached.
 *
 * @example
 * ```ts
 * import type { Deliver } from "@dzone/dback";
 * const nobody: Deliver = () => 0;
 * if (nobody({ type: "update-clientid", event: { server: "1", clientId: "2" } }) !== 0) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export type Deliver = (event: ServerEvent) => number;

/**
 * Carries broadcasts to every instance. The server calls `open` in
 * `start()`, `publish` for every broadcast, `watch` when a server gains its
 * first or loses its last local viewer, and `close` in `stop()`.
 *
 * @example
 * ```ts
 * import type { Broker, Deliver, ServerEvent } from "@dzone/dback";
 * let deliver: Deliver = () => 0;
 * const local: Broker = {
 *   open: (d) => { deliver = d; return Promise.resolve(); },
 *   publish: (e: ServerEvent) => deliver(e),
 *   watch: () => {},
 *   close: () => Promise.resolve(),
 * };
 * await local.open(() => 3);
 * if (local.publish({ type: "message", event: { server: "1", uid: "2", message: "hi", channel: "3" } }) !== 3) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export interface Broker {
  /** Start; `deliver` is called for every event that reaches this instance, from any instance. */
  open(deliver: Deliver): Promise<void>;
  /** Send a validated event to all instances. Returns the connections reached now (this instance's, for a cluster). */
  publish(event: ServerEvent): number;
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
  /** Deliver here, now. */
  publish(event: ServerEvent): number {
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
