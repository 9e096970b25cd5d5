/**
 * The conversation of PROTOCOL.md: the server list on open, and `connect`
 * → find the server → authorise → `server-join` → into the hub's room.
 *
 * @module
 */
import { authorise } from "./_auth.ts";
import { utf8Length } from "./_limits.ts";
import type { Connection, ConnectionHandler } from "./_connection.ts";
import type { Directory } from "./_directory.ts";
import type { JoinSnapshot, UserMapCache } from "./_user_map.ts";
import type { Hub } from "./_hub.ts";
import type { JoinQueue } from "./_join_queue.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import type { ConnectRequest } from "./_client_frames.ts";
import { serverJoinFrame } from "./_frames.ts";
import { ERRORS, findServer, type ServerInfo } from "./protocol.ts";

const noop = () => {};

/** A server's user map and client id, as a join uses them. */
type JoinMap = { users: UserMapCache; clientId: string | undefined };

/** Handles the frames of every connection. */
export class ProtocolHandler implements ConnectionHandler {
  #directory: Directory;
  #hub: Hub<Connection>;
  #log: Logger;
  #metrics: Metrics;
  #queue: JoinQueue;
  #frames = new Map<string, {
    snapshot: JoinSnapshot;
    requested: string;
    name: string;
    clientId: string | undefined;
    frame: string;
    bytes: number;
  }>();

  /**
   * Answer every connection's frames from `directory`, joining them into
   * `hub`'s rooms; every `server-join` waits for its turn in `queue` (the
   * global outbound budget).
   */
  constructor(
    directory: Directory,
    hub: Hub<Connection>,
    log: Logger,
    metrics: Metrics,
    queue: JoinQueue,
  ) {
    this.#queue = queue;
    this.#directory = directory;
    this.#hub = hub;
    this.#log = log;
    this.#metrics = metrics;
  }

  /**
   * Send the server list: in the open event itself when it is cached (as a
   * bare server answers; no promise, no later turn), else once the source
   * has answered.
   */
  open(conn: Connection): Promise<void> | undefined {
    const fresh = this.#directory.freshServers();
    if (!fresh) return this.#openLater(conn);
    conn.send(fresh.frame);
  }

  async #openLater(conn: Connection): Promise<void> {
    const servers = await this.#directory.servers(conn.id);
    if (!servers.ok) {
      conn.sendError(ERRORS.serverListUnavailable);
      return;
    }
    conn.send(servers.value.frame);
  }

  /**
   * Join the requested server, or answer with the protocol's error. A join
   * whose server list, user map and client id are cached, and for which the
   * outbound budget has room, is answered in this very call (no promise, no
   * later turn), as a bare server answers; anything else continues once
   * what it waits for has answered, in the same order.
   */
  connect(conn: Connection, request: ConnectRequest): Promise<void> | undefined {
    const fresh = this.#directory.freshServers();
    const server = fresh && findServer(fresh.servers, request.server);
    if (!server || server.passworded) return this.#connectLater(conn, request);
    return this.#join(conn, request, server);
  }

  async #connectLater(conn: Connection, request: ConnectRequest): Promise<void> {
    // A fresh cached list is taken as is: no promise to wait for.
    const fresh = this.#directory.freshServers();
    let servers = fresh
      ? { ok: true as const, value: fresh }
      : await this.#directory.servers(conn.id);
    if (!servers.ok) return conn.sendError(ERRORS.serverUnavailable);
    let server = findServer(servers.value.servers, request.server);
    if (!server) {
      servers = await this.#directory.refreshServers(servers.value, conn.id);
      if (!servers.ok) return conn.sendError(ERRORS.serverUnavailable);
      server = findServer(servers.value.servers, request.server);
    }
    if (!server) {
      this.#log.info(
        `join refused: no server ${JSON.stringify(request.server.slice(0, 64))}`,
        conn.id,
      );
      return conn.sendError(ERRORS.noSuchServer);
    }
    if (server.passworded) {
      const discordId = server.discordId;
      const outcome = await authorise(
        request,
        server.password,
        (token, user) => {
          // Each check may cost a request to Discord: one IP gets a small budget of them.
          if (!conn.mayCheckLogin()) {
            this.#log.warn("login check refused: per-IP budget spent", conn.id);
            return Promise.resolve(false);
          }
          return this.#directory.validate(token, user, discordId, conn.id);
        },
      );
      if (!outcome.ok) {
        this.#log.info(
          `join refused: ${server.id} needs authentication (${outcome.error})`,
          conn.id,
        );
        return conn.sendError(outcome.error);
      }
      this.#log.info(`authenticated for ${server.id} via ${outcome.via}`, conn.id);
    }
    await this.#join(conn, request, server);
  }

  /** From the join budget on: synchronous while the user map and client id are cached. */
  #join(conn: Connection, request: ConnectRequest, server: ServerInfo): Promise<void> | undefined {
    if (!conn.takeJoin()) {
      conn.sendError(ERRORS.rateLimited);
      return;
    }
    // Asked in the order `#mapOf` asks them (the client id first).
    const clientId = this.#directory.knownClientId(server.discordId);
    const users = clientId === false
      ? undefined
      : this.#directory.cachedUserMap(server.discordId, conn.id);
    if (!users) return this.#joinLater(conn, request, server);
    return this.#enter(conn, request, server, users, clientId as string | undefined);
  }

  async #joinLater(conn: Connection, request: ConnectRequest, server: ServerInfo): Promise<void> {
    const first = await this.#mapOf(conn, server.discordId);
    if (!first) return conn.sendError(ERRORS.serverUnavailable);
    await this.#enter(conn, request, server, first.users, first.clientId);
  }

  /** Into the join queue: synchronous when the outbound budget has room and nobody waits. */
  #enter(
    conn: Connection,
    request: ConnectRequest,
    server: ServerInfo,
    users: UserMapCache,
    clientId: string | undefined,
  ): Promise<void> | undefined {
    if (!conn.isOpen) return;
    const bytes = this.#joinFrame(
      server.discordId,
      users.snapshot(),
      request.server,
      server.name,
      clientId,
    ).bytes;
    // A retired map (it waited for its source) is asked for again while the turn is held.
    if (users.retired || !this.#queue.tryEnter(bytes)) {
      return this.#enterLater(conn, request, server, { users, clientId }, bytes);
    }
    try {
      if (conn.isOpen) this.#send(conn, request, server, users, clientId, false, 0);
    } finally {
      this.#queue.sent(conn, bytes);
    }
  }

  async #enterLater(
    conn: Connection,
    request: ConnectRequest,
    server: ServerInfo,
    first: JoinMap,
    bytes: number,
  ): Promise<void> {
    const turn = await this.#queue.enter(conn, bytes);
    if (!turn.go) {
      if (turn.why === "full") {
        this.#log.warn(`join refused: ${this.#queue.length} joins already wait`, conn.id);
        conn.sendError(ERRORS.busy);
        // After the error frame has left, so the client sees why.
        setTimeout(() => conn.drop(1013, "Try again later"), 10);
      }
      return;
    }
    try {
      // A map that waited (uncached maps get no events) or was replaced or dropped meanwhile
      // (it may have missed changes) is asked for again.
      let map = first;
      for (let tries = 0; map.users.retired || (turn.queued && tries === 0); tries++) {
        const again = tries < 3 ? await this.#mapOf(conn, server.discordId) : undefined;
        if (!again) return conn.sendError(ERRORS.serverUnavailable);
        map = again;
      }
      if (!conn.isOpen) return;
      this.#send(conn, request, server, map.users, map.clientId, turn.queued, turn.waitedMs);
    } finally {
      turn.done();
    }
  }

  #send(
    conn: Connection,
    request: ConnectRequest,
    server: ServerInfo,
    users: UserMapCache,
    clientId: string | undefined,
    queued: boolean,
    waitedMs: number,
  ): void {
    // Sent, replayed and subscribed in one tick: no presence falls between the snapshot and
    // the room, so the joiner sees what a viewer who joined at the snapshot saw.
    const snapshot = users.snapshot();
    const join = this.#joinFrame(server.discordId, snapshot, request.server, server.name, clientId);
    if (!conn.sendJoin(join.frame, join.bytes)) return;
    for (const frame of snapshot.replay) if (!conn.send(frame)) return;
    this.#hub.join(conn, server.discordId);
    conn.joined();
    this.#metrics.joins++;
    // Built only when written, as the `connected` line is.
    if (this.#log.enabled("info")) {
      this.#log.info(
        `joined ${server.id} (${server.discordId})${
          queued ? ` after ${Math.round(waitedMs)} ms in the join queue` : ""
        }`,
        conn.id,
      );
    }
  }

  async #mapOf(conn: Connection, discordId: string): Promise<JoinMap | undefined> {
    // Both asked at once, as before; awaited one after the other rather than through
    // `Promise.all` (its arrays and per-promise closures cost more than the two awaits). A
    // rejection of the second while the first is awaited is still handled (the catch below).
    const ids = this.#directory.clientId(discordId, conn.id);
    const maps = this.#directory.userMap(discordId, conn.id);
    maps.catch(noop);
    const clientId = await ids;
    const users = await maps;
    if (!users.ok || !clientId.ok) return undefined;
    return { users: users.value, clientId: clientId.value };
  }

  /**
   * The `server-join` frame of a snapshot, reused while nothing in it
   * changed: in a join storm every joiner of a server gets the same
   * (possibly megabyte-sized) string instead of a fresh copy each; its UTF-8
   * size is the snapshot's plus the few bytes around it, never a pass over
   * megabytes.
   */
  #joinFrame(
    discordId: string,
    snapshot: JoinSnapshot,
    requested: string,
    name: string,
    clientId: string | undefined,
  ): { frame: string; bytes: number } {
    const last = this.#frames.get(discordId);
    if (
      last && last.snapshot === snapshot && last.requested === requested &&
      last.name === name && last.clientId === clientId
    ) {
      return last;
    }
    const frame = serverJoinFrame(snapshot.json, requested, name, clientId);
    const bytes = snapshot.bytes + utf8Length(serverJoinFrame("", requested, name, clientId));
    const entry = { snapshot, requested, name, clientId, frame, bytes };
    this.#frames.set(discordId, entry);
    return entry;
  }
}
