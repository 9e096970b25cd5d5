/**
 * The event table: every server-to-client event, once. Per type: the payload
 * (a TypeScript interface here), its zod schema (checked wherever an event
 * enters: a library broadcast, a data source, another cluster instance), the
 * frame its viewers get, and its label on `dback_broadcasts_total`.
 *
 * A new server-to-client message is a new row here, its export in `mod.ts`,
 * its frame in `docs/PROTOCOL.md`, and its tests; the sink, the broker, the
 * cluster and the metrics take it from this table.
 *
 * @module
 */
import { z } from "zod";
import { errorFrame } from "./_frames.ts";
import { colorSchema, ERRORS, snowflakeish, type Status, statusSchema } from "./protocol.ts";

/**
 * A chat message to show in a bubble.
 *
 * @example
 * ```ts
 * import { type ChatEvent, MockSource } from "@dzone/dback";
 * const said: ChatEvent[] = [];
 * const mock = new MockSource({ random: () => 0 });
 * mock.start({ emit: (e) => e.type === "message" && said.push(e.event) });
 * mock.tickMessage("232769614004748288");
 * mock.stop();
 * if (said[0].message !== "hello" || said[0].channel !== "527964146659229701") {
 *   throw new Error(JSON.stringify(said));
 * }
 * ```
 */
export interface ChatEvent {
  /** Discord id of the server. */
  server: string;
  /** The speaking user's id. */
  uid: string;
  /** The text. */
  message: string;
  /** Discord channel id. */
  channel: string;
  /**
   * The source's own id of this message (Discord's message id), if it has
   * one. Never sent to viewers: a cluster publisher drops a message whose id
   * it has already published, so a replay after a failover is not shown twice.
   */
  id?: string;
}

/**
 * A presence change, a new user (with `username`) or a removal (`delete: true`).
 *
 * @example
 * ```ts
 * import { type PresenceEvent, WebSocketServer } from "@dzone/dback";
 * const server = new WebSocketServer({ logLevel: "silent" });
 * const gone: PresenceEvent = { server: "1", uid: "42", status: "offline", delete: true };
 * if (server.broadcastPresence(gone) !== 0) throw new Error("nobody is joined yet");
 * let refused = "";
 * try {
 *   server.broadcastPresence({ ...gone, roleColor: "red" });
 * } catch (err) {
 *   refused = String(err);
 * }
 * if (!refused.includes("roleColor")) throw new Error("a colour must be #rrggbb");
 * ```
 */
export interface PresenceEvent {
  /** Discord id of the server. */
  server: string;
  /** The user's id. */
  uid: string;
  /** New status. */
  status: Status;
  /** Display name; needed when the user is new to the client. */
  username?: string;
  /** `#rrggbb`. */
  roleColor?: string;
  /** `true` removes the user's actor. */
  delete?: boolean;
}

/**
 * A change of the OAuth2 application id for a server.
 *
 * @example
 * ```ts
 * import { type ClientIdEvent, WebSocketServer } from "@dzone/dback";
 * const server = new WebSocketServer({ logLevel: "silent" });
 * const e: ClientIdEvent = { server: "1", clientId: "" };
 * let refused = "";
 * try {
 *   server.broadcastClientIdUpdate(e);
 * } catch (err) {
 *   refused = String(err);
 * }
 * if (!refused.includes("clientId")) throw new Error("an empty client id must be refused");
 * ```
 */
export interface ClientIdEvent {
  /** Discord id of the server. */
  server: string;
  /** The OAuth2 client id. */
  clientId: string;
}

/**
 * A server is gone for good (e.g. the bot was removed from the guild): its
 * viewers get the protocol's "Sorry, couldn't connect to that Discord
 * server." error and leave the room.
 *
 * @example
 * ```ts
 * import { type ServerGoneEvent, WebSocketServer } from "@dzone/dback";
 * const server = new WebSocketServer({ logLevel: "silent" });
 * const gone: ServerGoneEvent = { server: "232769614004748288" };
 * if (server.broadcast({ type: "server-gone", event: gone }) !== 0) throw new Error("nobody joined");
 * ```
 */
export interface ServerGoneEvent {
  /** Discord id of the server. */
  server: string;
}

/**
 * Every event type and its payload: the keys of the event table.
 *
 * @example
 * ```ts
 * import type { EventPayloads } from "@dzone/dback";
 * import { EVENTS } from "./events.ts";
 * const types: Array<keyof EventPayloads> = ["presence", "message", "update-clientid", "server-gone"];
 * if (Object.keys(EVENTS).sort().join() !== [...types].sort().join()) throw new Error("table drifted");
 * ```
 */
export interface EventPayloads {
  /** A presence change. */
  presence: PresenceEvent;
  /** A chat message. */
  message: ChatEvent;
  /** A new OAuth2 client id. */
  "update-clientid": ClientIdEvent;
  /** A server that is gone for good. */
  "server-gone": ServerGoneEvent;
}

/**
 * One event, as sources emit it, the server broadcasts it and brokers carry
 * it between instances.
 *
 * @example
 * ```ts
 * import { type ServerEvent, WebSocketServer } from "@dzone/dback";
 * const server = new WebSocketServer({ logLevel: "silent" });
 * const e: ServerEvent = { type: "presence", event: { server: "1", uid: "42", status: "idle" } };
 * if (server.broadcast(e) !== 0) throw new Error("nobody is joined yet");
 * ```
 */
export type ServerEvent = {
  [K in keyof EventPayloads]: { type: K; event: EventPayloads[K] };
}[keyof EventPayloads];

/** One row of the event table. */
export interface EventSpec<E> {
  /** Checks the payload wherever an event enters the server. */
  readonly schema: z.ZodType<E>;
  /** The frame every viewer of `event.server` gets. */
  frame(event: E): string;
  /** The `type` label of `dback_broadcasts_total`. */
  readonly metric: string;
  /** Viewers leave the room after this frame (they are told the server is gone). */
  readonly closesRoom?: boolean;
}

/** Schema for {@link ChatEvent}. */
export const messageEventSchema: z.ZodType<ChatEvent> = z.object({
  server: snowflakeish,
  uid: snowflakeish,
  message: z.string(),
  channel: z.string(),
  id: z.string().min(1).optional(),
});

/** Schema for {@link PresenceEvent}. */
export const presenceEventSchema: z.ZodType<PresenceEvent> = z.object({
  server: snowflakeish,
  uid: snowflakeish,
  status: statusSchema,
  username: z.string().optional(),
  roleColor: colorSchema.optional(),
  delete: z.boolean().optional(),
});

/** Schema for {@link ClientIdEvent}. */
export const clientIdEventSchema: z.ZodType<ClientIdEvent> = z.object({
  server: snowflakeish,
  clientId: z.string().min(1),
});

/** Schema for {@link ServerGoneEvent}. */
export const serverGoneEventSchema: z.ZodType<ServerGoneEvent> = z.object({
  server: snowflakeish,
});

/**
 * The event table. TypeScript holds it to {@link EventPayloads}: a type
 * without a row (or a row without a type) does not compile.
 *
 * @example
 * ```ts
 * import { EVENTS } from "./events.ts";
 * const frame = EVENTS.message.frame({ server: "1", uid: "42", message: "hi", channel: "9" });
 * const parsed = JSON.parse(frame);
 * if (parsed.type !== "message" || parsed.server !== "1" || parsed.data.message !== "hi") {
 *   throw new Error(frame);
 * }
 * if (EVENTS.presence.schema.safeParse({ server: "1", uid: "2", status: "away" }).success) {
 *   throw new Error("an unknown status must fail");
 * }
 * ```
 */
export const EVENTS: { readonly [K in keyof EventPayloads]: EventSpec<EventPayloads[K]> } = {
  presence: {
    schema: presenceEventSchema,
    // Optional fields appear only when given: the client treats a present key as a change.
    frame: (e) => {
      const data: Record<string, unknown> = { uid: e.uid, status: e.status };
      if (e.username !== undefined) data.username = e.username;
      if (e.roleColor !== undefined) data.roleColor = e.roleColor;
      if (e.delete) data.delete = true;
      return JSON.stringify({ type: "presence", server: e.server, data });
    },
    metric: "presence",
  },
  message: {
    schema: messageEventSchema,
    frame: (e) =>
      JSON.stringify({
        type: "message",
        server: e.server,
        data: { uid: e.uid, message: e.message, channel: e.channel },
      }),
    metric: "message",
  },
  "update-clientid": {
    schema: clientIdEventSchema,
    frame: (e) =>
      JSON.stringify({ type: "update-clientid", server: e.server, data: { clientId: e.clientId } }),
    metric: "update-clientid",
  },
  "server-gone": {
    schema: serverGoneEventSchema,
    // Told as if they had asked for a server that does not exist: the client knows that text.
    frame: () => errorFrame(ERRORS.noSuchServer),
    metric: "server-gone",
    closesRoom: true,
  },
};

/** The event types, in table order. */
export const EVENT_TYPES: ReadonlyArray<keyof EventPayloads> = Object.keys(EVENTS) as Array<
  keyof EventPayloads
>;

/**
 * The row of an event's type, typed for the union.
 *
 * @example
 * ```ts
 * import { specOf } from "./events.ts";
 * const spec = specOf({ type: "server-gone", event: { server: "1" } });
 * if (spec.metric !== "server-gone" || spec.closesRoom !== true) throw new Error(spec.metric);
 * ```
 */
export function specOf(e: ServerEvent): EventSpec<ServerEvent["event"]> {
  return EVENTS[e.type] as EventSpec<ServerEvent["event"]>;
}

/**
 * The frame an event's viewers get.
 *
 * @example
 * ```ts
 * import { frameOf } from "./events.ts";
 * const frame = frameOf({ type: "update-clientid", event: { server: "1", clientId: "77" } });
 * if (frame !== '{"type":"update-clientid","server":"1","data":{"clientId":"77"}}') {
 *   throw new Error(frame);
 * }
 * ```
 */
export function frameOf(e: ServerEvent): string {
  return specOf(e).frame(e.event);
}

/**
 * Schema of a whole event (`{ type, event }`), built from the table: what a
 * cluster instance checks on every event another instance published.
 *
 * @example
 * ```ts
 * import { serverEventSchema } from "./events.ts";
 * const ok = serverEventSchema.safeParse({ type: "server-gone", event: { server: "1" } });
 * const bad = serverEventSchema.safeParse({ type: "kick", event: { server: "1" } });
 * if (!ok.success || bad.success) throw new Error("the table decides");
 * ```
 */
export const serverEventSchema: z.ZodType<ServerEvent> = z.discriminatedUnion(
  "type",
  EVENT_TYPES.map((type) =>
    z.object({ type: z.literal(type), event: EVENTS[type].schema as z.ZodType<unknown> })
  ) as unknown as [z.ZodObject<{ type: z.ZodLiteral<string> }>],
) as unknown as z.ZodType<ServerEvent>;
