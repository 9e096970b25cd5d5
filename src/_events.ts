/**
 * Events in and out of one server (internal): the sink a data source emits
 * into, library broadcasts, and delivery of what the broker hands back to
 * this instance's viewers. Every event is checked against the event table
 * where it enters and counted under its type's metric label.
 *
 * @module
 */
import type { z } from "zod";
import { errorText } from "./_errors.ts";
import { parseOrThrow } from "./_zod.ts";
import type { Broker, EventOrigin } from "./broker.ts";
import type { Connection } from "./_connection.ts";
import type { Directory } from "./_directory.ts";
import { EVENTS, type ServerEvent, specOf } from "./events.ts";
import type { Hub } from "./_hub.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import type { EventSink } from "./source.ts";

/** What event routing needs from the rest of the server. */
export interface EventDeps {
  /** Carries events to every instance (this one included). */
  broker: Broker;
  /** Who is joined where. */
  hub: Hub<Connection>;
  /** Cached user maps, patched by presence events. */
  directory: Directory;
  /** Take a connection out of its room (and remember which it was, for the log). */
  leave(conn: Connection): void;
  /** The server's logger. */
  log: Logger;
  /** The server's counters. */
  metrics: Metrics;
}

/**
 * Checks, publishes and delivers events.
 *
 * @example
 * ```ts
 * import { EventRouter } from "./_events.ts";
 * import { LocalBroker } from "./broker.ts";
 * import { Hub } from "./_hub.ts";
 * import type { Connection } from "./_connection.ts";
 * import type { Directory } from "./_directory.ts";
 * import { Logger } from "./log.ts";
 * import { Metrics } from "./_metrics.ts";
 * const broker = new LocalBroker();
 * const metrics = new Metrics();
 * const applied: string[] = [];
 * const router = new EventRouter({
 *   broker,
 *   hub: new Hub<Connection>(),
 *   directory: {
 *     apply: (e: { uid: string }, frame: string) => (applied.push(e.uid), frame),
 *   } as unknown as Directory,
 *   leave: () => {},
 *   log: new Logger("silent"),
 *   metrics,
 * });
 * await broker.open((e) => router.deliver(e));
 * router.sink().emit({ type: "presence", event: { server: "1", uid: "7", status: "idle" } });
 * router.sink().emit({ type: "presence", event: { server: "1", uid: "8", status: "asleep" } } as never);
 * if (applied.join() !== "7" || metrics.broadcasts.presence !== 1) throw new Error("only the valid one");
 * ```
 */
export class EventRouter {
  #d: EventDeps;

  /** Route events with `deps`. */
  constructor(deps: EventDeps) {
    this.#d = deps;
  }

  /**
   * Check `event` against the event table and publish it. Throws a
   * `TypeError` starting with `label` on an event the table refuses.
   * Returns the connections reached now.
   */
  publish(event: unknown, origin: EventOrigin, label: string): number {
    const checked = check(event, label);
    this.#d.metrics.broadcasts[specOf(checked).metric]++;
    return this.#d.broker.publish(checked, origin);
  }

  /** The sink a data source emits into: a bad event is logged and dropped, never thrown back. */
  sink(): EventSink {
    return {
      emit: (event) => {
        try {
          this.publish(event, "source", "event");
        } catch (err) {
          const type = (event as { type?: unknown } | null)?.type;
          this.#d.log.error(
            `data source sent a bad ${typeof type === "string" ? type : "event"}: ${
              errorText(err)
            }`,
          );
        }
      },
    };
  }

  /**
   * Deliver an event that reached this instance to its viewers; returns how
   * many it reached. A new event type needs nothing here unless it changes
   * the cached user map or the room itself.
   */
  deliver(e: ServerEvent): number {
    const { hub, directory, metrics } = this.#d;
    const spec = specOf(e);
    const server = e.event.server;
    let frame = spec.frame(e.event);
    // The next joiner must see this change: in its user map, or replayed after it. The map
    // says what the viewers get (offline members may be hidden, see `hideOfflineAbove`).
    if (e.type === "presence") {
      const sent = directory.apply(e.event, frame);
      if (sent === undefined) {
        metrics.framesWithheld.presence++;
        return 0;
      }
      frame = sent;
    } else if (e.type === "message") {
      if (directory.hides(server, e.event.uid)) { // its speaker is not drawn
        metrics.framesWithheld.message++;
        return 0;
      }
    } else if (e.type === "update-clientid") directory.forgetClientId(e.event.server);
    if (spec.closesRoom) {
      const members = hub.members(server);
      directory.invalidate(server);
      // The server may have left the list too: the next viewer must not be offered it.
      directory.forgetServers();
      for (const conn of members) {
        this.#d.leave(conn);
        conn.send(frame);
      }
      if (members.length) {
        this.#d.log.info(`server ${server} is gone: told ${members.length} viewer(s)`);
      }
      return members.length;
    }
    const reached = hub.publish(server, frame);
    // Native fan-out bypasses the connections, which count the frames they send.
    if (hub.native) metrics.framesOut += reached;
    return reached;
  }
}

function check(event: unknown, label: string): ServerEvent {
  const type = (event as { type?: unknown } | null)?.type;
  if (typeof type !== "string" || !Object.hasOwn(EVENTS, type)) {
    throw new TypeError(
      `${label}: type must be one of ${Object.keys(EVENTS).join(", ")} (got ${
        JSON.stringify(type) ?? "nothing"
      })`,
    );
  }
  const spec = EVENTS[type as ServerEvent["type"]] as { schema: z.ZodType<unknown> };
  const payload = parseOrThrow(spec.schema, (event as { event?: unknown }).event, label);
  return { type, event: payload } as ServerEvent;
}
