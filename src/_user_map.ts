/**
 * One server's user map as the joins see it (internal): one serialised
 * fragment per user, patched by presence events, and the join snapshot
 * served to joiners.
 *
 * Serialising a big map is the dear part of a join (100,000 users: a 13 MB
 * string), and presence changes it many times a second, so a joiner does not
 * get a fresh serialisation: it gets the last snapshot (a few seconds old
 * at most) and then, in order, every presence frame this server's viewers were
 * sent since that snapshot — exactly what a viewer who joined at the
 * snapshot has seen, so its view is the same. A joiner who finds the
 * snapshot older than `windowMs` (or 250 times what the last serialisation
 * took, when that is longer: a big map's serialising and the garbage it
 * leaves take at most 0.4 % of the time) is still served from it, and a new one is
 * made right after (in a later task, off that join's path); one whose replay
 * has grown past a sixteenth of its size is made at once. So a busy map is
 * serialised at most about once per window however many join, and a small
 * map (where a replay would soon outweigh it) on each change, as before.
 *
 * With the `hideOfflineAbove` policy, a map loaded with more users than that
 * hides its offline members: its snapshots leave them out, and each presence
 * is turned into the frame that keeps a viewer's picture equal to the
 * visible users (a member who comes online is sent with its name and
 * colour, one who goes offline as a removal, a hidden one who stays hidden
 * not at all). A map at or below it still sends a member who comes from
 * offline with its name: a viewer who joined while a bigger copy hid
 * offline members can draw it.
 *
 * @module
 */
import { utf8Length } from "./_limits.ts";
import { EVENTS, type PresenceEvent } from "./events.ts";
import type { UserMap } from "./protocol.ts";

/** What a joiner is sent: the user map at the snapshot, then the presence frames since. */
export interface JoinSnapshot {
  /** The serialised user map (`{"uid":{...},...}`) at the snapshot. */
  readonly json: string;
  /** Its UTF-8 size. */
  readonly bytes: number;
  /** This server's presence frames since the snapshot, oldest first (grows until replaced). */
  readonly replay: readonly string[];
}

interface Snapshot extends JoinSnapshot {
  readonly at: number;
  readonly replay: string[];
  replayBytes: number;
}

/** When a snapshot is rebuilt, and what it shows; see the module comment. */
export interface SnapshotPolicy {
  /** The longest a snapshot is reused, in ms (0: rebuilt on every change). */
  windowMs: number;
  /** The clock (ms), replaceable in tests. */
  now: () => number;
  /** Hide offline members of maps loaded with more users than this (0 or absent: never). */
  hideOfflineAbove?: number;
}

interface User {
  key: string;
  username: string;
  roleColor: string;
  status: string;
  fragment: string;
  bytes: number;
}

/**
 * A user map kept as wire fragments, with its join snapshot.
 *
 * @example
 * ```ts
 * import { UserMapCache } from "./_user_map.ts";
 * let now = 0;
 * const users = Object.fromEntries(
 *   Array.from({ length: 100 }, (_, i) => [`${i}`, { username: `user ${i}`, status: "online" as const }]),
 * );
 * const map = new UserMapCache(users, { windowMs: 1000, now: () => now });
 * const first = map.snapshot();
 * map.apply({ server: "s", uid: "1", status: "idle" }, "frame-1");
 * now = 10; // within the window: the snapshot is reused and the change is replayed
 * const again = map.snapshot();
 * if (again !== first || again.replay.join() !== "frame-1") throw new Error("not reused");
 * now = 1000; // past the window: this joiner is still served from it, the next gets a new one
 * if (map.snapshot() !== first) throw new Error("a join waited for a rebuild");
 * await new Promise((r) => setTimeout(r, 0));
 * const fresh = map.snapshot();
 * if (fresh.replay.length !== 0 || JSON.parse(fresh.json)["1"].status !== "idle") throw new Error();
 * ```
 */
export class UserMapCache {
  #users = new Map<string, User>();
  #bytes = 0; // UTF-8 size of all fragments
  #snapshot: Snapshot | undefined;
  #policy: SnapshotPolicy;
  #rebuilding = false;
  #buildMs = 0;
  /** How many snapshots were serialised (each a string join of the whole map). */
  builds = 0;
  /** When the source is to be asked again (ms since the epoch). */
  expires = Number.POSITIVE_INFINITY;
  /**
   * Replaced by a newer copy or dropped (see {@link retire}): it may miss
   * events or changes, so joins must not use it.
   */
  retired = false;
  /**
   * The `hideOfflineAbove` policy's verdict for this copy (set before it
   * serves): `true` hides offline members, `false` shows them but names a
   * member back from offline, `undefined` (the policy is off) sends every
   * frame as given.
   */
  hideOffline: boolean | undefined = undefined;

  /** Keep `map` (as validated from the source), snapshotting it by `policy`. */
  constructor(map: UserMap, policy: SnapshotPolicy) {
    this.#policy = policy;
    this.add(map);
  }

  /**
   * Retire this copy: no join uses it and its snapshot is let go. A dropped
   * copy may still say what its room's viewers are sent ({@link apply}) until
   * a fresh load replaces it: it keeps following events, with no replay.
   */
  retire(): void {
    this.retired = true;
    this.#snapshot = undefined;
  }

  /** Add users as validated from the source (a big map arrives in parts, see `Directory`). */
  add(map: UserMap): void {
    for (const [key, u] of Object.entries(map)) {
      const uid = u.uid ?? key;
      this.#set(uid, key, uid, u.username, u.status, u.roleColor ?? "#ffffff");
    }
  }

  #set(
    uid: string,
    key: string,
    wireUid: string,
    username: string,
    status: string,
    roleColor: string,
  ) {
    const fragment = `${JSON.stringify(key)}:${
      JSON.stringify({ uid: wireUid, username, status, roleColor })
    }`;
    // Sized per fragment, so the joined map's size is known without a pass over megabytes.
    const bytes = utf8Length(fragment);
    this.#bytes += bytes - (this.#users.get(uid)?.bytes ?? 0);
    this.#users.set(uid, { key, username, roleColor, status, fragment, bytes });
  }

  /** Whether viewers are shown `uid`; `undefined` when this map hides nobody. */
  shows(uid: string): boolean | undefined {
    if (!this.hideOffline) return undefined;
    const u = this.#users.get(uid);
    return u !== undefined && u.status !== "offline";
  }

  /** How many users the map holds (offline ones included). */
  get size(): number {
    return this.#users.size;
  }

  /**
   * Apply a presence event, whose wire frame as the source gave it is
   * `frame`; returns the frame this server's viewers are to be sent (the
   * same one unless the `hideOfflineAbove` policy is on), or `undefined` for
   * none. An unknown user without a name cannot be drawn, so the map skips
   * it, but the frame is replayed all the same (viewers got it).
   */
  apply(e: PresenceEvent, frame: string): string | undefined {
    if (this.hideOffline !== undefined) return this.#applyHiding(e, frame);
    this.#replay(frame);
    this.#change(e, this.#users.get(e.uid));
    return frame;
  }

  #applyHiding(e: PresenceEvent, frame: string): string | undefined {
    const before = this.#users.get(e.uid);
    this.#change(e, before);
    const after = e.delete ? undefined : this.#users.get(e.uid);
    let out: string | undefined = frame;
    // Whether viewers of a map that hides offline members were shown this user.
    const was = before !== undefined && before.status !== "offline";
    if (this.hideOffline) {
      const is = after !== undefined && after.status !== "offline";
      if (!was && !is) return undefined;
      if (was && !is && !e.delete) out = EVENTS.presence.frame({ ...e, delete: true });
      else if (!was && is) out = this.#announce(e, after);
    } else if (!was && after) out = this.#announce(e, after);
    this.#replay(out);
    return out;
  }

  /** The frame that introduces a user to viewers who may not have it: name and colour included. */
  #announce(e: PresenceEvent, u: User): string {
    return EVENTS.presence.frame({
      server: e.server,
      uid: e.uid,
      status: e.status,
      username: u.username,
      roleColor: u.roleColor,
    });
  }

  #replay(frame: string): void {
    const s = this.#snapshot;
    if (s && !this.retired) {
      s.replay.push(frame);
      s.replayBytes += frame.length;
    }
  }

  #change(e: PresenceEvent, known: User | undefined): void {
    if (e.delete) {
      if (known) {
        this.#users.delete(e.uid);
        this.#bytes -= known.bytes;
      }
      return;
    }
    const username = e.username ?? known?.username;
    if (username === undefined) return;
    this.#set(
      e.uid,
      known?.key ?? e.uid,
      e.uid,
      username,
      e.status,
      e.roleColor ?? known?.roleColor ?? "#ffffff",
    );
  }

  /** The snapshot a joiner gets now (see the module comment); take it in the tick the joiner subscribes. */
  snapshot(): JoinSnapshot {
    const s = this.#snapshot;
    if (s && (s.replay.length === 0 || s.replayBytes * 16 <= s.bytes)) {
      // Past its window it still serves (its replay makes it exact): the new one is made after
      // this joiner is served, not on its way.
      if (s.replay.length && this.#policy.now() - s.at >= this.#windowMs) {
        this.#rebuildSoon();
      }
      return s;
    }
    return this.#build();
  }

  #rebuildSoon(): void {
    if (this.#rebuilding) return;
    this.#rebuilding = true;
    setTimeout(() => {
      this.#rebuilding = false;
      if (!this.retired) this.#build();
    }, 0);
  }

  // A dear serialisation (and the garbage it leaves) is made less often: at most 0.4 % of the time.
  get #windowMs(): number {
    return Math.max(this.#policy.windowMs, this.#buildMs * 250);
  }

  #build(): Snapshot {
    const started = performance.now();
    let n = this.#users.size;
    let bytes = this.#bytes;
    let parts: string[];
    if (this.hideOffline) {
      parts = [];
      bytes = 0;
      for (const u of this.#users.values()) {
        if (u.status === "offline") continue;
        parts.push(u.fragment);
        bytes += u.bytes;
      }
      n = parts.length;
    } else {
      parts = new Array<string>(n);
      let i = 0;
      for (const u of this.#users.values()) parts[i++] = u.fragment;
    }
    this.builds++;
    this.#snapshot = {
      json: `{${parts.join(",")}}`,
      bytes: bytes + 2 + Math.max(0, n - 1),
      at: this.#policy.now(),
      replay: [],
      replayBytes: 0,
    };
    this.#buildMs = performance.now() - started;
    return this.#snapshot;
  }
}
