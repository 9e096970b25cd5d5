/**
 * The info command: when a member sends it (e.g. `!d-zone`), the bot answers
 * in the same channel with the viewer URL of that guild. One reply per
 * channel per cooldown, so a channel spamming the command costs at most one
 * REST call per cooldown.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { FetchLike } from "./rest.ts";
import { errorText } from "../_errors.ts";

/** Options of {@link InfoReplier}. */
export interface InfoReplierOptions {
  /** REST API base, e.g. `https://discord.com/api/v10`. */
  apiBase: string;
  /** Bot token. */
  token: string;
  /** `fetch` for the POST. */
  fetch: FetchLike;
  /** Least time between two replies in one channel, ms. */
  cooldownMs: number;
  /** Logger. */
  log: Logger;
  /** Clock (tests). Default `Date.now`. */
  now?: () => number;
  /** Deadline of one POST, ms. Default 10000. */
  timeoutMs?: number;
}

/** Most channels remembered for the cooldown; the oldest are forgotten first. */
const MAX_CHANNELS = 10_000;

const TAG = "discord";

/**
 * The viewer URL of a server: `url` with `?s=<slug>`.
 *
 * @example
 * ```ts
 * import { viewerUrl } from "./info.ts";
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
  #aborts = new Set<AbortController>();

  /** Create a replier. */
  constructor(options: InfoReplierOptions) {
    this.#o = options;
  }

  /** Reply in `channelId` with `content` unless the channel's cooldown runs. Returns whether a POST was made. */
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

  /** Abort running POSTs and wait for them. */
  async stop(): Promise<void> {
    for (const a of this.#aborts) a.abort(new Error("stopping"));
    await Promise.all([...this.#inflight]);
  }

  async #post(channelId: string, content: string): Promise<void> {
    const url = `${this.#o.apiBase.replace(/\/+$/, "")}/channels/${channelId}/messages`;
    const ctl = new AbortController();
    this.#aborts.add(ctl);
    const timer = setTimeout(
      () => ctl.abort(new Error("no answer in time")),
      this.#o.timeoutMs ?? 10_000,
    );
    try {
      const res = await this.#o.fetch(url, {
        method: "POST",
        headers: {
          authorization: `Bot ${this.#o.token}`,
          "content-type": "application/json",
          "user-agent": "DiscordBot (https://github.com/d-zone-org, 0.1) dback",
        },
        body: JSON.stringify({ content, allowed_mentions: { parse: [] } }),
        signal: ctl.signal,
      });
      await res.body?.cancel();
      if (!res.ok) {
        this.#o.log.warn(
          `info reply in channel ${channelId} failed: POST answered HTTP ${res.status}` +
            (res.status === 403 ? " (the bot may not send messages there)" : ""),
          TAG,
        );
      } else this.#o.log.info(`info reply sent in channel ${channelId}`, TAG);
    } catch (err) {
      this.#o.log.warn(
        `info reply in channel ${channelId} failed: ${errorText(err)}`,
        TAG,
      );
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(ctl);
    }
  }
}
