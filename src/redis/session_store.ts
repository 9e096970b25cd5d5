/**
 * Where the Discord gateway session lives in a cluster: the publisher saves
 * its session id, sequence and resume URL in Redis, so the next publisher
 * RESUMEs the session instead of identifying again (while Discord allows).
 *
 * @module
 */
import { z } from "zod";

/** What a gateway RESUME needs. */
export interface DiscordSession {
  /** The `session_id` of READY. */
  sessionId: string;
  /** The last dispatch sequence number received. */
  seq: number;
  /** READY's `resume_gateway_url`. */
  resumeUrl: string;
  /** How many shards the process that saved it ran (one with another count identifies). */
  shards?: number;
}

/** Keeps one gateway session per shard. */
export interface SessionStore {
  /** The saved session of `shard`, if any. */
  load(shard: number): Promise<DiscordSession | undefined>;
  /** Save (or, with `undefined`, forget) the session of `shard`. */
  save(shard: number, session: DiscordSession | undefined): Promise<void>;
}

/** The part of the cluster a session store needs. */
export interface FencedKv {
  /** Read a namespaced key. */
  get(key: string): Promise<string | null>;
  /** Write (or, with `""`, delete) a namespaced key only while holding the lease. */
  fencedSet(key: string, value: string, ttlMs: number): Promise<boolean>;
}

const sessionSchema = z.object({
  sessionId: z.string().min(1),
  seq: z.number().int().nonnegative(),
  resumeUrl: z.string().url(),
  shards: z.number().int().positive().optional(),
});

/** Discord lets a session be resumed for a few minutes only; older ones are not worth trying. */
const SESSION_TTL_MS = 10 * 60_000;

/**
 * A {@link SessionStore} over a cluster's Redis. Writes are fenced by the
 * lease: an instance that is no longer the publisher cannot overwrite the
 * new publisher's session. Failures are swallowed (load gives `undefined`):
 * the gateway then identifies afresh.
 *
 * @example
 * ```ts
 * import { redisSessionStore } from "@dzone/dback/redis";
 * const kv = new Map<string, string>();
 * const store = redisSessionStore({
 *   get: (k) => Promise.resolve(kv.get(k) ?? null),
 *   fencedSet: (k, v) => Promise.resolve((v ? kv.set(k, v) : kv.delete(k), true)),
 * });
 * await store.save(0, { sessionId: "s", seq: 42, resumeUrl: "wss://gateway.example" });
 * if ((await store.load(0))?.seq !== 42) throw new Error("not saved");
 * ```
 */
export function redisSessionStore(kv: FencedKv): SessionStore {
  const key = (shard: number) => `discord:session:${shard}`;
  return {
    async load(shard) {
      try {
        const raw = await kv.get(key(shard));
        if (raw === null) return undefined;
        const r = sessionSchema.safeParse(JSON.parse(raw));
        return r.success ? r.data : undefined;
      } catch {
        return undefined;
      }
    },
    async save(shard, session) {
      try {
        const value = session === undefined ? "" : JSON.stringify(sessionSchema.parse(session));
        await kv.fencedSet(key(shard), value, SESSION_TTL_MS);
      } catch {
        // Not saved: the next publisher identifies instead of resuming.
      }
    },
  };
}
