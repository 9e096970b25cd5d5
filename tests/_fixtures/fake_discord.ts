// One fake Discord for every Discord test (gateway client, gateway source,
// OAuth): the Gateway (v10, JSON) and the REST routes dback uses
// (`/gateway/bot`, `/users/@me`, `/users/@me/guilds`, and any other route via
// `onRest`/`restOverride`), on 127.0.0.1:0 via Deno.serve. It behaves like
// Discord by default and can be told to misbehave: no HELLO, IDENTIFY/RESUME
// unanswered or invalidated, missed heartbeat ACKs, REST 429/5xx/hangs, a
// session_start_limit, a required shard count. Every frame and request is
// recorded with its time. Real Discord is never contacted.
//
// Below the fake: guild fixtures, a bare GatewayClient factory, and a
// DiscordGatewaySource factory with a recording sink and a real server.

import { DiscordGatewaySource, type DiscordSourceOptions } from "../../src/discord/mod.ts";
import { GatewayClient } from "../../src/discord/_gateway.ts";
import type { GatewayClientOptions, GatewayTiming } from "../../src/discord/_gateway_types.ts";
import { Logger, type LogRecord } from "../../src/log.ts";
import type { ChatEvent, PresenceEvent, ServerEvent } from "../../src/events.ts";
import type { DataSource, EventSink } from "../../src/source.ts";
import { startServer } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
export type Payload = { op: number; d?: any; s?: number | null; t?: string | null };

/** One received gateway frame, with the connection it came on and when (Date.now()). */
export interface Received {
  conn: number;
  payload: Payload;
  at: number;
}

/** One REST request as the fake saw it. */
export interface RestHit {
  path: string;
  query: string;
  authorization: string | null;
  at: number;
}

/** A session the fake handed out. */
export interface FakeSession {
  id: string;
  seq: number;
  shard: [number, number] | undefined;
  /** Every dispatch of the session, for the replay a RESUME gets. */
  history: Payload[];
}

/** What the fake does with an IDENTIFY (after the token check). */
export type IdentifyReply =
  | "ready" // READY, then GUILD_CREATE for the guilds of the shard
  | "silent" // nothing (heartbeats are still ACKed)
  | "invalid" // op 9 d=false
  | number; // close with this code

/** What the fake does with a RESUME of a known session. */
export type ResumeReply =
  | "resumed" // RESUMED
  | "silent"
  | "invalid" // op 9 d=false
  | "invalid-resumable"; // op 9 d=true

/** A REST override: return a Response to answer instead of the fake, or undefined to go on. */
export type RestOverride = (
  req: Request,
  url: URL,
) => Response | undefined | Promise<Response | undefined>;

/** A gateway connection as the fake sees it. */
export class FakeConn {
  readonly id: number;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly ws: WebSocket;
  readonly received: Payload[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  /** Whether heartbeats get an ACK. */
  ack = true;
  /** The session IDENTIFY or RESUME bound to this connection. */
  session: FakeSession | undefined;
  /** `shard` of the IDENTIFY on this connection, once one came. */
  shard: [number, number] | undefined;
  /** The close code the client sent, once closed. */
  closeCode: number | undefined;
  #fake: FakeDiscord;

  constructor(fake: FakeDiscord, id: number, url: URL, ws: WebSocket) {
    this.#fake = fake;
    this.id = id;
    this.path = url.pathname;
    this.query = url.searchParams;
    this.ws = ws;
    this.opened = new Promise((r) => ws.addEventListener("open", () => r(), { once: true }));
    this.closed = new Promise((r) =>
      ws.addEventListener("close", (e) => {
        this.closeCode = e.code;
        r();
      }, { once: true })
    );
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(p: Payload): void {
    if (this.open) this.ws.send(JSON.stringify(p));
  }

  sendRaw(text: string): void {
    if (this.open) this.ws.send(text);
  }

  /** Send a dispatch with the next sequence number of this connection's session. */
  dispatch(t: string, d: unknown): void {
    const s = this.session ? ++this.session.seq : ++this.#fake.seq;
    this.#fake.seq = s;
    const frame = { op: 0, t, s, d };
    this.session?.history.push(frame);
    this.send(frame);
  }

  close(code = 1000, reason = ""): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
  }
}

export interface FakeOptions {
  /** The bot token the fake accepts. Default "test-token". */
  token?: string;
  /** HELLO heartbeat_interval. Default 1000. */
  heartbeatIntervalMs?: number;
  /** GUILD_CREATE payloads sent after READY (split by shard when IDENTIFY carries one). */
  guilds?: unknown[];
  /** Extra guild ids listed (unavailable) in READY. */
  readyGuildIds?: string[];
  /** Close code sent right after IDENTIFY instead of READY. */
  identifyCloseCode?: number;
  /** `shards` of /gateway/bot; with more than 1, an IDENTIFY without `shard` is closed with 4011. */
  shards?: number;
  /** `session_start_limit` of /gateway/bot. */
  sessionStartLimit?: {
    total: number;
    remaining: number;
    reset_after: number;
    max_concurrency: number;
  };
}

/** OAuth2 users the fake knows: bearer token → user and guild list. */
export interface OAuthUser {
  user: { id: string; username: string };
  guilds: { id: string; name: string }[];
}

export class FakeDiscord {
  readonly token: string;
  heartbeatIntervalMs: number;
  guilds: unknown[];
  readyGuildIds: string[];
  identifyCloseCode?: number;
  shards: number;
  sessionStartLimit: NonNullable<FakeOptions["sessionStartLimit"]>;
  /** Whether new connections get HELLO. */
  hello = true;
  /** What an IDENTIFY with the right token gets. */
  identifyReply: IdentifyReply = "ready";
  /** What a RESUME of a known session gets. */
  resumeReply: ResumeReply = "resumed";
  /** Decides whether a new connection ACKs heartbeats. */
  ackFor: (conn: FakeConn) => boolean = () => true;
  /** Close code for the IDENTIFY on one connection (e.g. only the second shard fails). */
  identifyCloseFor?: (conn: FakeConn) => number | undefined;
  /** When set, IDENTIFY must carry `shard: [id, shards]` (the count /gateway/bot answers); otherwise 4011. */
  requireShards = false;
  /** Answers op 8; default: nothing. */
  onRequestMembers?: (conn: FakeConn, d: Payload["d"]) => void;
  /** Answers REST requests before the fake does (429s, 5xx, hangs, bad bodies). */
  restOverride: RestOverride | undefined;
  /**
   * Like `restOverride`, with the request body read (e.g. POST
   * /channels/:id/messages); asked first. Return undefined to go on.
   */
  onRest?: (req: Request, url: URL, body: string) => Response | undefined;
  /** OAuth2 bearer tokens the fake knows; `Bearer user-<id>` is always accepted as user <id>. */
  readonly oauth = new Map<string, OAuthUser>();
  readonly conns: FakeConn[] = [];
  readonly log: Received[] = [];
  readonly rest: RestHit[] = [];
  readonly sessionsById = new Map<string, FakeSession>();
  seq = 0;
  sessions = 0;
  sessionId: string | null = null;
  /** REST requests being answered right now, and the most at once. */
  restInFlight = 0;
  restMaxInFlight = 0;
  #server!: Deno.HttpServer<Deno.NetAddr>;
  #established = 0;
  #hanging: Array<() => void> = [];

  private constructor(o: FakeOptions) {
    this.token = o.token ?? "test-token";
    this.heartbeatIntervalMs = o.heartbeatIntervalMs ?? 1000;
    this.guilds = o.guilds ?? [];
    this.readyGuildIds = o.readyGuildIds ?? [];
    this.identifyCloseCode = o.identifyCloseCode;
    this.shards = o.shards ?? 1;
    this.sessionStartLimit = o.sessionStartLimit ??
      { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 };
  }

  static async start(o: FakeOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(o);
    const { promise, resolve } = Promise.withResolvers<void>();
    fake.#server = Deno.serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen: () => resolve(),
    }, (req) => fake.#handle(req));
    await promise;
    return fake;
  }

  get port(): number {
    return this.#server.addr.port;
  }
  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }
  get apiBase(): string {
    return `http://127.0.0.1:${this.port}/api/v10`;
  }
  get current(): FakeConn {
    const c = this.conns.at(-1);
    if (!c) throw new Error("no gateway connection yet");
    return c;
  }
  /** Whether IDENTIFY is answered; `false` is `identifyReply = "silent"`. */
  get answerIdentify(): boolean {
    return this.identifyReply !== "silent";
  }
  set answerIdentify(on: boolean) {
    this.identifyReply = on ? "ready" : "silent";
  }
  /** `session_start_limit.max_concurrency` answered by /gateway/bot. */
  get maxConcurrency(): number {
    return this.sessionStartLimit.max_concurrency;
  }
  set maxConcurrency(n: number) {
    this.sessionStartLimit = { ...this.sessionStartLimit, max_concurrency: n };
  }
  /** READY + RESUMED sent so far. */
  get established(): number {
    return this.#established;
  }

  /** Frames received with `op` (on connection `conn` when given). */
  ops(op: number, conn?: number): Received[] {
    return this.log.filter((r) => r.payload.op === op && (conn === undefined || r.conn === conn));
  }

  /** REST paths hit so far (without the /api/v10 prefix), in order. */
  paths(): string[] {
    return this.rest.map((h) => h.path.replace(/^\/api\/v10/, ""));
  }

  /**
   * A dispatch on session `id` whether or not a connection is attached (like
   * Discord while a bot is away): recorded, sent when a connection is open,
   * and replayed to a RESUME from an earlier sequence.
   */
  emit(id: string, t: string, d: unknown): void {
    const session = this.sessionsById.get(id);
    if (!session) throw new Error(`no session ${id}`);
    const frame = { op: 0, t, s: ++session.seq, d };
    this.seq = frame.s;
    session.history.push(frame);
    for (const c of this.conns) if (c.session === session && c.open) c.send(frame);
  }

  /** Wait until `pred` holds (polling); returns when it does. */
  async until(pred: () => boolean, ms = 5000, what = "condition"): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`fake discord: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Wait for the `n`-th received frame (1-based) with `op`; returns it. */
  async waitOp(op: number, n = 1, ms = 5000): Promise<Received> {
    await this.until(() => this.ops(op).length >= n, ms, `op ${op} #${n}`);
    return this.ops(op)[n - 1];
  }

  /** Wait until `n` READY or RESUMED were sent in all. */
  async waitSession(n: number, ms = 5000): Promise<void> {
    await this.until(() => this.#established >= n, ms, `session #${n}`);
  }

  /** A REST answer that never comes; released when the fake stops. */
  hang(): Promise<Response> {
    return new Promise((resolve) => {
      this.#hanging.push(() => resolve(new Response("late", { status: 504 })));
    });
  }

  /** The guilds of one shard (Discord's rule: (guild_id >> 22) % count). */
  guildsOf(shard: [number, number] | undefined): unknown[] {
    if (!shard) return this.guilds;
    return this.guilds.filter((g) => onShard((g as { id: string }).id, shard));
  }

  guildCreate(conn: FakeConn): void {
    for (const g of this.guildsOf(conn.session?.shard)) conn.dispatch("GUILD_CREATE", g);
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      const conn = new FakeConn(this, this.conns.length + 1, url, socket);
      this.conns.push(conn);
      conn.ack = this.ackFor(conn);
      socket.onopen = () => {
        if (this.hello) conn.send({ op: 10, d: { heartbeat_interval: this.heartbeatIntervalMs } });
      };
      socket.onmessage = (e) => this.#onFrame(conn, e.data);
      return response;
    }
    this.rest.push({
      path: url.pathname,
      query: url.search,
      authorization: req.headers.get("authorization"),
      at: Date.now(),
    });
    this.restInFlight++;
    this.restMaxInFlight = Math.max(this.restMaxInFlight, this.restInFlight);
    try {
      if (this.onRest) {
        const answer = this.onRest(req, url, await req.text());
        if (answer) return answer;
      }
      const custom = await this.restOverride?.(req, url);
      if (custom) return custom;
      return this.#rest(req, url);
    } finally {
      this.restInFlight--;
    }
  }

  #rest(req: Request, url: URL): Response {
    const auth = req.headers.get("authorization") ?? "";
    const unauthorized = () =>
      Response.json({ message: "401: Unauthorized", code: 0 }, { status: 401 });
    if (url.pathname === "/api/v10/gateway/bot") {
      if (auth !== `Bot ${this.token}`) return unauthorized();
      return Response.json({
        url: `ws://127.0.0.1:${this.port}/gateway`,
        shards: this.shards,
        session_start_limit: this.sessionStartLimit,
      });
    }
    const guildRoute = /^\/api\/v10\/guilds\/(\d+)\/(roles|channels|threads\/active)$/.exec(
      url.pathname,
    );
    if (guildRoute) {
      if (auth !== `Bot ${this.token}`) return unauthorized();
      const g = this.guilds.find((x) => (x as { id: string }).id === guildRoute[1]) as
        | { roles?: unknown[]; channels?: unknown[] }
        | undefined;
      if (!g) return Response.json({ message: "Unknown Guild", code: 10004 }, { status: 404 });
      if (guildRoute[2] === "roles") return Response.json(g.roles ?? []);
      if (guildRoute[2] === "channels") return Response.json(g.channels ?? []);
      return Response.json({ threads: [], members: [] });
    }
    const bearer = /^Bearer (.+)$/.exec(auth)?.[1] ?? "";
    const known = this.oauth.get(bearer);
    const legacy = /^user-(\d+)$/.exec(bearer);
    const who: OAuthUser | undefined = known ??
      (legacy ? { user: { id: legacy[1], username: `user${legacy[1]}` }, guilds: [] } : undefined);
    if (url.pathname === "/api/v10/users/@me") {
      if (!who) return unauthorized();
      return Response.json({ ...who.user, discriminator: "0" });
    }
    if (url.pathname === "/api/v10/users/@me/guilds") {
      if (!who) return unauthorized();
      const limit = Number(url.searchParams.get("limit") ?? 200);
      const after = url.searchParams.get("after");
      const all = who.guilds.toSorted((a, b) => BigInt(a.id) < BigInt(b.id) ? -1 : 1);
      const rest = after ? all.filter((g) => BigInt(g.id) > BigInt(after)) : all;
      return Response.json(rest.slice(0, limit));
    }
    return Response.json({ message: "404: Not Found", code: 0 }, { status: 404 });
  }

  #onFrame(conn: FakeConn, data: unknown): void {
    let p: Payload;
    try {
      p = JSON.parse(String(data));
    } catch {
      conn.close(4002, "Error while decoding payload.");
      return;
    }
    conn.received.push(p);
    this.log.push({ conn: conn.id, payload: p, at: Date.now() });
    switch (p.op) {
      case 1:
        if (conn.ack) conn.send({ op: 11 });
        return;
      case 2:
        return this.#identify(conn, p);
      case 6:
        return this.#resume(conn, p);
      case 8:
        this.onRequestMembers?.(conn, p.d);
        return;
    }
  }

  #identify(conn: FakeConn, p: Payload): void {
    if (p.d?.token !== this.token) {
      conn.close(4004, "Authentication failed.");
      return;
    }
    const code = this.identifyCloseFor?.(conn) ?? this.identifyCloseCode;
    if (code !== undefined) {
      conn.close(code, "Disallowed intent(s).");
      return;
    }
    const shard = Array.isArray(p.d?.shard) ? p.d.shard as [number, number] : undefined;
    const wrongCount = this.requireShards ? shard?.[1] !== this.shards : this.shards > 1 && !shard;
    if (wrongCount) {
      conn.close(4011, "Sharding required.");
      return;
    }
    if (shard && !(shard[0] >= 0 && shard[0] < shard[1])) {
      conn.close(4010, "Invalid shard.");
      return;
    }
    conn.shard = shard;
    const reply = this.identifyReply;
    if (reply === "silent") return;
    if (reply === "invalid") {
      conn.send({ op: 9, d: false });
      return;
    }
    if (typeof reply === "number") {
      conn.close(reply, "told to");
      return;
    }
    const session: FakeSession = {
      id: `session-${++this.sessions}`,
      seq: 0,
      shard,
      history: [],
    };
    this.sessionsById.set(session.id, session);
    this.sessionId = session.id;
    conn.session = session;
    const ids = [
      ...this.guildsOf(shard).map((g) => (g as { id: string }).id),
      ...this.readyGuildIds.filter((id) => !shard || onShard(id, shard)),
    ];
    conn.dispatch("READY", {
      v: 10,
      user: { id: "999000000000000001", username: "dzone-bot", bot: true },
      session_id: session.id,
      resume_gateway_url: `ws://127.0.0.1:${this.port}/resume`,
      guilds: ids.map((id) => ({ id, unavailable: true })),
      shard,
    });
    this.#established++;
    this.guildCreate(conn);
  }

  #resume(conn: FakeConn, p: Payload): void {
    const session = this.sessionsById.get(p.d?.session_id);
    if (!session || p.d?.token !== this.token) {
      conn.send({ op: 9, d: false });
      return;
    }
    const reply = this.resumeReply;
    if (reply === "silent") return;
    if (reply === "invalid" || reply === "invalid-resumable") {
      conn.send({ op: 9, d: reply === "invalid-resumable" });
      return;
    }
    conn.session = session;
    // Discord replays what the session missed, then says RESUMED.
    const from = Number(p.d?.seq ?? 0);
    for (const f of session.history) if ((f.s ?? 0) > from) conn.send(f);
    conn.dispatch("RESUMED", {});
    this.#established++;
  }

  async stop(): Promise<void> {
    for (const release of this.#hanging) release();
    this.#hanging = [];
    for (const c of this.conns) c.close(1001, "fake going away");
    await Promise.all(this.conns.map((c) => c.closed));
    await this.#server.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Whether a guild lives on `shard` (Discord's rule: (guild_id >> 22) % count). */
function onShard(guildId: string, shard: [number, number]): boolean {
  return Number((BigInt(guildId) >> 22n) % BigInt(shard[1])) === shard[0];
}

/**
 * The most frames received (or sent) in any window of `windowMs`, by their time `at`, on one
 * connection or all.
 */
export function maxInWindow(frames: ReadonlyArray<{ at: number }>, windowMs: number): number {
  const times = frames.map((f) => f.at).sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

// ---- a bare GatewayClient pointed at the fake ----

/** Short timings for tests (each test overrides what it exercises). */
export const FAST_TIMING: GatewayTiming = {
  identifyIntervalMs: 0,
  reconnectBaseMs: 20,
  reconnectMaxMs: 200,
  invalidSessionDelayMs: 20,
  closeTimeoutMs: 2000,
};

/** A GatewayClient on the fake, recording dispatches, sessions, logs and a fatal error. */
export function gatewayClient(
  fake: FakeDiscord,
  extra: Partial<GatewayClientOptions> = {},
) {
  const logs: LogRecord[] = [];
  const dispatches: { t: string; d: unknown }[] = [];
  const sessions: ("ready" | "resumed")[] = [];
  const fatal: Error[] = [];
  const client = new GatewayClient({
    token: fake.token,
    intents: 1,
    gatewayUrl: fake.gatewayUrl,
    apiBase: fake.apiBase,
    fetch: (input, init) => fetch(input, init),
    log: new Logger("debug", (r) => logs.push(r)),
    onDispatch: (t, d) => dispatches.push({ t, d }),
    onFatal: (e) => fatal.push(e),
    onSession: (k) => sessions.push(k),
    ...extra,
    timing: { ...FAST_TIMING, ...extra.timing },
  });
  return {
    client,
    logs,
    dispatches,
    sessions,
    fatal,
    /** Log lines matching `re`. */
    lines: (re: RegExp) => logs.filter((l) => re.test(l.message)),
    async [Symbol.asyncDispose]() {
      await client.close();
    },
  };
}

// ---- guild fixtures (plain Discord payloads) ----

export const GUILD = "100000000000000001";
export const GUILD2 = "100000000000000002";
export const CHANNEL = "500000000000000001";
export const OTHER_CHANNEL = "500000000000000002";
export const ROLE_RED = "200000000000000001";
export const ROLE_BLUE = "200000000000000002";
export const ROLE_PLAIN_TOP = "200000000000000003";
export const ADA = "300000000000000001";
export const BOB = "300000000000000002";
export const CY = "300000000000000003";
export const BOTTY = "300000000000000004";
export const DEE = "300000000000000005";

export function user(id: string, username: string, extra: Record<string, unknown> = {}) {
  return { id, username, discriminator: "0", avatar: null, global_name: null, ...extra };
}

export function member(
  u: ReturnType<typeof user>,
  roles: string[] = [],
  nick: string | null = null,
) {
  return { user: u, nick, roles, joined_at: "2024-01-01T00:00:00.000Z", deaf: false, mute: false };
}

export function role(id: string, color: number, position: number, name = `role${id.slice(-2)}`) {
  return { id, name, color, position, hoist: false, managed: false, mentionable: false };
}

/** A small guild: names, statuses and colours cover the interesting cases. */
export function smallGuild(id = GUILD, name = "Test Guild") {
  return {
    id,
    name,
    unavailable: false,
    large: false,
    member_count: 4,
    roles: [
      role(id, 0, 0, "@everyone"),
      role(ROLE_RED, 0xff0000, 3, "red"),
      role(ROLE_BLUE, 0x0000ff, 1, "blue"),
      role(ROLE_PLAIN_TOP, 0, 10, "no colour, top"),
    ],
    members: [
      member(
        user(ADA, "ada", { global_name: "Ada L" }),
        [ROLE_BLUE, ROLE_RED, ROLE_PLAIN_TOP],
        "Countess",
      ),
      member(user(BOB, "bob", { global_name: "Bobby" }), [ROLE_BLUE]),
      member(user(CY, "cy"), []),
      member(user(BOTTY, "botty", { bot: true }), [ROLE_PLAIN_TOP]),
    ],
    presences: [
      { user: { id: ADA }, status: "online", activities: [], client_status: { desktop: "online" } },
      { user: { id: BOB }, status: "idle", activities: [], client_status: { web: "idle" } },
      { user: { id: BOTTY }, status: "dnd", activities: [], client_status: { web: "dnd" } },
    ],
    channels: [{ id: CHANNEL, type: 0, name: "general" }],
  };
}

// ---- a DiscordGatewaySource pointed at the fake ----

/** A source pointed at the fake, logging into `logs`, with short timings. */
export function makeSource(fake: FakeDiscord, extra: Partial<DiscordSourceOptions> = {}) {
  const logs: LogRecord[] = [];
  const source = new DiscordGatewaySource({
    token: fake.token,
    gatewayUrl: fake.gatewayUrl,
    logLevel: "debug",
    logSink: (r) => logs.push(r),
    guildTimeoutMs: 3000,
    timing: FAST_TIMING,
    ...extra,
  });
  return { source, logs };
}

/** An EventSink that records everything, for tests of the source on its own. */
export class RecordingSink implements EventSink {
  readonly presences: PresenceEvent[] = [];
  readonly messages: ChatEvent[] = [];
  readonly gone: string[] = [];
  emit(e: ServerEvent): void {
    if (e.type === "presence") this.presences.push(e.event);
    else if (e.type === "message") this.messages.push(e.event);
    else if (e.type === "server-gone") this.gone.push(e.event.server);
  }
}

/**
 * A real server fed by `source` (`new WebSocketServer({ source })`): the
 * server starts the source and stops it. With `recordGone`, the source is
 * wrapped so the test also sees which servers it declared gone (the server
 * still gets every call).
 */
export async function serveSource(source: DiscordGatewaySource, { recordGone = false } = {}) {
  const gone: string[] = [];
  const spy: DataSource = {
    getServerData: () => source.getServerData(),
    getUserData: (id) => source.getUserData(id),
    getClientId: (id) => source.getClientId(id),
    validateDiscordUser: (t, u, id) => source.validateDiscordUser(t, u, id),
    start: (sink) =>
      source.start({
        emit: (e) => {
          if (e.type === "server-gone") gone.push(e.event.server);
          sink.emit(e);
        },
      }),
    stop: () => source.stop(),
  };
  const { server, url, logs } = await startServer({ source: recordGone ? spy : source });
  return {
    server,
    url,
    logs,
    /** Servers the source declared gone (with `recordGone`). */
    gone,
    async [Symbol.asyncDispose]() {
      await server.stop();
    },
  };
}
