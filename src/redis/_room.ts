/**
 * One instance's local copy of a server's user map, as the cluster keeps it:
 * the envelope events travel in, how an event patches the map (the same rule
 * the Redis script applies to the snapshot), and the presence events that
 * turn an old copy into a new one after a resync.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import { z } from "zod";
import { type PresenceEvent, type ServerEvent, serverEventSchema } from "../events.ts";
import type { UserEntry } from "../protocol.ts";

/** An event as published on a server's channel. */
export interface Envelope {
  /** Sequence number of the server's stream. */
  s: number;
  /** Fencing epoch: of the leader for source events, the counter's value for library ones. */
  e: number;
  /** `src`: from the leader's data source; `lib`: a library broadcast; `snap`: the snapshot was replaced. */
  k: "src" | "lib" | "snap";
  /** Redis's clock (ms) when it was published. */
  t?: number;
  /** The event (absent for `snap`). */
  ev?: ServerEvent;
}

const envelopeSchema = z.object({
  s: z.number().int().positive(),
  e: z.number().int().nonnegative(),
  k: z.enum(["src", "lib", "snap"]),
  t: z.number().optional(),
  ev: serverEventSchema.optional(),
}).refine((v) => v.k === "snap" || v.ev !== undefined, { message: "ev is required" });

/** Parse one channel message; `undefined` (and a reason) when it is not a valid envelope. */
export function parseEnvelope(raw: string): { ok: true; value: Envelope } | {
  ok: false;
  reason: string;
} {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  const r = envelopeSchema.safeParse(json);
  if (!r.success) {
    return {
      ok: false,
      reason: r.error.issues[0]?.path.join(".") + ": " + r.error.issues[0]?.message,
    };
  }
  return { ok: true, value: r.data as Envelope };
}

/** The fields of a presence event that land in the user entry. */
export function presencePatch(e: PresenceEvent): UserEntry & { uid: string } {
  const patch: Record<string, string> = { uid: e.uid, status: e.status };
  if (e.username !== undefined) patch.username = e.username;
  if (e.roleColor !== undefined) patch.roleColor = e.roleColor;
  return patch as unknown as UserEntry & { uid: string };
}

/**
 * Apply a presence event to a user map: a removal deletes, a known user is
 * patched, an unknown one is added only when the event names it.
 *
 * @example
 * ```ts
 * import { applyPresence } from "./_room.ts";
 * import type { UserEntry } from "../protocol.ts";
 * const users = new Map<string, UserEntry>([["1", { uid: "1", username: "ada", status: "online" }]]);
 * applyPresence(users, { server: "9", uid: "1", status: "idle" });
 * if (users.get("1")?.status !== "idle") throw new Error("not patched");
 * ```
 */
export function applyPresence(users: Map<string, UserEntry>, e: PresenceEvent): void {
  if (e.delete) {
    users.delete(e.uid);
    return;
  }
  const cur = users.get(e.uid);
  const patch = presencePatch(e);
  if (cur) users.set(e.uid, { ...cur, ...patch });
  else if (e.username !== undefined) users.set(e.uid, patch);
}

/**
 * The presence events that turn `before` into `after` for viewers who saw
 * `before`: new or changed users with their full entry, removed users with
 * `delete: true`.
 */
export function diffUsers(
  server: string,
  before: Map<string, UserEntry>,
  after: Map<string, UserEntry>,
): PresenceEvent[] {
  const out: PresenceEvent[] = [];
  for (const [uid, u] of after) {
    const old = before.get(uid);
    if (
      old && old.status === u.status && old.username === u.username &&
      old.roleColor === u.roleColor
    ) continue;
    const e: PresenceEvent = { server, uid, status: u.status, username: u.username };
    if (u.roleColor !== undefined) e.roleColor = u.roleColor;
    out.push(e);
  }
  for (const [uid, u] of before) {
    if (!after.has(uid)) out.push({ server, uid, status: u.status, delete: true });
  }
  return out;
}
