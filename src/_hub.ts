/**
 * Who is joined to which Discord server, and fan-out of one serialised frame
 * to all of them. A connection is in at most one room at a time.
 *
 * @module
 */
import { utf8Length } from "./_limits.ts";
import type { NativeRooms, WsPeer } from "./transport/types.ts";

/** Something that can receive frames: a connection, as the hub sees it. */
export interface Subscriber {
  /** Hand over one serialised frame of `bytes` UTF-8 bytes; `false` when it was not delivered. Must not throw or await. */
  deliver(frame: string, bytes: number): boolean;
  /** Its socket, once open: what native rooms subscribe. */
  readonly peer?: WsPeer;
}

/** Called when a room gains its first member or loses its last. */
export type RoomListener = (serverId: string, active: boolean) => void;

/** Rooms of subscribers keyed by Discord server id. */
export class Hub<S extends Subscriber = Subscriber> {
  #rooms = new Map<string, Set<S>>();
  #where = new Map<S, string>();
  #listener: RoomListener;
  #native: NativeRooms | undefined;

  /**
   * `listener` hears when a room becomes active or empty (sources and
   * brokers use it); `native`, when given, does the fan-out: the hub still
   * keeps the members (for sizes and `members()`), but a broadcast is one
   * `publish` call instead of a loop.
   */
  constructor(listener: RoomListener = () => {}, native?: NativeRooms) {
    this.#listener = listener;
    this.#native = native;
  }

  /** Move `sub` into the room of `serverId`, leaving any room it was in. */
  join(sub: S, serverId: string): void {
    const current = this.#where.get(sub);
    if (current === serverId) return;
    if (current !== undefined) this.leave(sub);
    let room = this.#rooms.get(serverId);
    if (!room) {
      room = new Set();
      this.#rooms.set(serverId, room);
    }
    room.add(sub);
    this.#where.set(sub, serverId);
    if (this.#native && sub.peer) this.#native.subscribe(sub.peer, serverId);
    if (room.size === 1) this.#listener(serverId, true);
  }

  /** Take `sub` out of its room, if any. */
  leave(sub: S): void {
    const serverId = this.#where.get(sub);
    if (serverId === undefined) return;
    this.#where.delete(sub);
    const room = this.#rooms.get(serverId);
    if (!room) return;
    room.delete(sub);
    if (this.#native && sub.peer) this.#native.unsubscribe(sub.peer, serverId);
    if (room.size === 0) {
      this.#rooms.delete(serverId);
      this.#listener(serverId, false);
    }
  }

  /** The room `sub` is in. */
  roomOf(sub: S): string | undefined {
    return this.#where.get(sub);
  }

  /** The members of a room (a copy), e.g. to tell them the server is gone. */
  members(serverId: string): S[] {
    return [...this.#rooms.get(serverId) ?? []];
  }

  /**
   * Deliver `frame` to every member of the room. Delivery never awaits, so a
   * slow member cannot hold back the next. Returns how many it reached.
   */
  publish(serverId: string, frame: string): number {
    const room = this.#rooms.get(serverId);
    if (!room) return 0;
    if (this.#native) {
      this.#native.publish(serverId, frame);
      return room.size;
    }
    const bytes = utf8Length(frame);
    let reached = 0;
    // A member dropped during delivery leaves the Set; Set iteration tolerates that.
    for (const sub of room) if (sub.deliver(frame, bytes)) reached++;
    return reached;
  }

  /** Whether broadcasts go through the runtime's own fan-out (then no connection counts them). */
  get native(): boolean {
    return this.#native !== undefined;
  }

  /** Call `fn` for every member of every room. */
  each(fn: (sub: S) => void): void {
    for (const sub of [...this.#where.keys()]) fn(sub);
  }

  /** Members per room, for metrics. */
  sizes(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, room] of this.#rooms) out.set(id, room.size);
    return out;
  }
}
