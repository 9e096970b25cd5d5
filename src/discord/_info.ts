/**
 * The info command: when a member sends it (e.g. `!d-zone`), the bot answers
 * in the same channel with the viewer URL of that guild. One reply per
 * channel per cooldown, so a channel spamming the command costs at most one
 * REST call per cooldown; the POSTs go through the bot's {@link RestLimiter}
 * (route buckets, global 429s, retries).
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { RestLimiter } from "./_rest_limiter.ts";

/** Options of {@link InfoReplier}. */
export interface InfoReplierOptions {
  /** The bot's REST calls. */
  rest: RestLimiter;
  /** Least time between two replies in one channel, ms. */
  cooldownMs: number;
  /** Logger. */
  log: Logger;
  /** Clock (tests). Default `Date.now`. */
  now?: () => number;
}

/** Most channels remembered for the cooldown; the oldest are forgotten first. */
const MAX_CHANNELS = 10_000;

const TAG = "discord";

/**
 * The viewer URL of a server: `url` with `?s=<slug>`.
 *
 * @example
 * ```ts
 * import { viewerUrl } from "./_info.ts";
 * const u = viewerUrl("https://dzone.example/view/?theme=dark", "dworld");
 * if (u !== "https://dzone.example/view/?theme=dark&s=dworld") throw new Error(u);
 * ```
 */
export function viewerUrl(url: string, slug: string): string {
  const u = new URL(url);
  u.searchParams.set("s", slug);
  return u.toString();
}

/** Posts info replies, rate-limited per channel. */
export class InfoReplier {
  #o: InfoReplierOptions;
  #last = new Map<string, number>();
  #inflight = new Set<Promise<void>>();

  /** Create a replier. */
  constructor(options: InfoReplierOptions) {
    this.#o = options;
  }

  /** Reply in `channelId` with `content` unless the channel's cooldown runs. Returns whether a reply was queued. */
  reply(channelId: string, content: string): boolean {
    const now = (this.#o.now ?? Date.now)();
    const last = this.#last.get(channelId);
    if (last !== undefined && now - last < this.#o.cooldownMs) {
      this.#o.log.debug(`info command in ${channelId} ignored (cooldown)`, TAG);
      return false;
    }
    this.#last.delete(channelId);
    this.#last.set(channelId, now);
    while (this.#last.size > MAX_CHANNELS) this.#last.delete(this.#last.keys().next().value!);
    const p = this.#post(channelId, content).finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
    return true;
  }

  /** Wait for the replies still running (stop the limiter first to cut them short). */
  async stop(): Promise<void> {
    await Promise.all([...this.#inflight]);
  }

  async #post(channelId: string, content: string): Promise<void> {
    const r = await this.#o.rest.request("POST", `/channels/${channelId}/messages`, {
      content,
      allowed_mentions: { parse: [] },
    });
    if (r.ok) {
      this.#o.log.info(`info reply sent in channel ${channelId}`, TAG);
      return;
    }
    this.#o.log.warn(
      `info reply in channel ${channelId} failed: ${r.reason}` +
        (r.status === 403 ? " (the bot may not send messages there)" : ""),
      TAG,
    );
  }
}
