/**
 * The per-server event streams on the wire: sending one event through the
 * publish script (numbered, applied to the snapshot, fenced for source
 * events, appended to the server's Redis stream and published on its
 * channel), routing what arrives on the subscriber to the local copies and
 * the control handler, and reading back from a stream what a copy missed.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import type { ServerEvent } from "../events.ts";
import type { Logger } from "../log.ts";
import type { Connections } from "./_redis.ts";
import { presencePatch } from "./_room.ts";
import { errorText as message } from "../_errors.ts";

/**
 * Message ids remembered per server to drop replays. A replay after a
 * takeover reaches back to the sequence the dead publisher last saved, about
 * a second of chat; this is far more than a second of any guild's chat.
 */
const MESSAGE_IDS_KEPT = 1000;

/** Counters the stream moves (shared with the status). */
export interface StreamCounters {
  /** Events published by this instance, by kind. */
  published: { source: number; library: number };
  /** Events dropped, by reason. */
  dropped: {
    staleEpoch: number;
    fenced: number;
    library: number;
    offline: number;
    duplicate: number;
  };
}

/** What the stream needs from the cluster around it. */
export interface StreamContext {
  /** For failures. */
  log: Logger;
  /** The Redis connections (absent before open and after close). */
  conn(): Connections | undefined;
  /** Whether both connections are up. */
  up(): boolean;
  /** A namespaced key or channel name. */
  key(...parts: string[]): string;
  /** Redis refused a source event: another instance holds the lease. */
  fencedByRedis(): void;
  /** An event for a server's copy arrived. */
  onEvent(serverId: string, raw: string): void;
  /** A control message arrived. */
  onControl(raw: string): void;
  /** Counters to move. */
  counters: StreamCounters;
  /** Entries kept in each server's stream. */
  streamLength: number;
}

/** Sends and routes per-server events. */
export class EventStream {
  #ctx: StreamContext;

  constructor(ctx: StreamContext) {
    this.#ctx = ctx;
  }

  /** Send `event`; `token` is the lease token for a source event, `""` for a library broadcast. */
  send(event: ServerEvent, token: string): void {
    const c = this.#ctx.conn();
    if (!c) return;
    const { counters } = this.#ctx;
    const k = this.#ctx.key;
    const server = event.event.server;
    let op = "none", uid = "", patch = "", id = "";
    if (event.type === "message" && event.event.id !== undefined) {
      // The id stays in Redis (to drop a replay), not in what viewers get.
      const { id: messageId, ...chat } = event.event;
      id = messageId;
      event = { type: "message", event: chat };
    }
    if (event.type === "presence") {
      uid = event.event.uid;
      op = event.event.delete ? "delete" : "presence";
      patch = JSON.stringify(presencePatch(event.event));
    }
    if (token) counters.published.source++;
    else counters.published.library++;
    if (event.type === "server-gone") op = "gone";
    c.scripts.publishEvent(
      k("leader"),
      k("epoch"),
      k("seq", server),
      k("users", server),
      k("snap", server),
      k("xs", server),
      k("lib", server),
      k("ids", server),
      token,
      k("ev", server),
      op,
      uid,
      patch,
      JSON.stringify(event),
      token ? "src" : "lib",
      this.#ctx.streamLength,
      id,
      MESSAGE_IDS_KEPT,
    ).then((seq) => {
      if (seq === -1) {
        counters.dropped.fenced++;
        this.#ctx.fencedByRedis();
      } else if (seq === -2) {
        counters.dropped.duplicate++;
        if (token) counters.published.source--;
        else counters.published.library--;
      }
    }, (err) => {
      // Not retried: the script may have run before the reply was lost, and
      // a retry would then deliver twice.
      if (!token) counters.dropped.library++;
      else counters.dropped.offline++;
      // Once per event would flood the log during an outage, which is logged once anyway.
      if (this.#ctx.up()) {
        this.#ctx.log.warn(`cluster: publish to ${server} failed: ${message(err)}`);
      } else this.#ctx.log.debug(`cluster: publish to ${server} failed: ${message(err)}`);
    });
  }

  /** A message on the subscriber connection. */
  route(channel: string, raw: string): void {
    if (channel === this.#ctx.key("ctl")) return this.#ctx.onControl(raw);
    const prefix = this.#ctx.key("ev", "");
    if (!channel.startsWith(prefix)) return;
    this.#ctx.onEvent(channel.slice(prefix.length), raw);
  }
}

/** What `readAfter` found. */
export type Missed =
  /** Every envelope after the sequence asked for, in order (maybe none). */
  | { ok: true; envelopes: string[] }
  /** The stream no longer reaches back that far: `from` is its oldest sequence (0: empty). */
  | { ok: false; from: number };

/**
 * Read a server's stream after sequence `after`, up to `limit` entries at a
 * time. Errors reject (the caller retries after a reconnect).
 */
export async function readAfter(
  c: Connections,
  streamKey: string,
  after: number,
  limit = 1000,
): Promise<Missed> {
  const envelopes: string[] = [];
  let from = `(${after}-0`;
  let first = true;
  for (;;) {
    const batch = await c.cmd.xrange(streamKey, from, "+", "COUNT", limit) as [
      string,
      string[],
    ][];
    if (first) {
      first = false;
      const head = batch[0] ? seqOf(batch[0][0]) : 0;
      if (head !== after + 1) {
        // Nothing newer (caught up), or the stream was trimmed past what we have.
        if (head === 0) return { ok: true, envelopes };
        return { ok: false, from: head };
      }
    }
    for (const [, fields] of batch) {
      const i = fields.indexOf("m");
      if (i >= 0 && i + 1 < fields.length) envelopes.push(fields[i + 1]);
    }
    if (batch.length < limit) return { ok: true, envelopes };
    from = `(${batch[batch.length - 1][0]}`;
  }
}

function seqOf(id: string): number {
  return Number(id.split("-")[0]) || 0;
}
