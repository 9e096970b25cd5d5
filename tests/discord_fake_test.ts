// A fake Discord (gateway + REST) on 127.0.0.1:0 for the gateway source tests.
// Named *_test.ts so it lives with the tests; it also checks itself below.
import assert from "node:assert/strict";
import { DiscordGatewaySource, type DiscordSourceOptions } from "../src/discord/mod.ts";
import type { LogRecord } from "../src/log.ts";
import type { ChatEvent, PresenceEvent } from "../src/protocol.ts";
import type { DataSource, EventSink } from "../src/source.ts";
import { startServer } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
export type Payload = { op: number; d?: any; s?: number | null; t?: string | null };

/** One received frame, with the connection it came on. */
export interface Received {
  conn: number;
  payload: Payload;
}

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
  /** `shard` of the IDENTIFY on this connection. */
  shard: [number, number] | undefined;
  #fake: FakeDiscord;

  constructor(fake: FakeDiscord, id: number, url: URL, ws: WebSocket) {
    this.#fake = fake;
    this.id = id;
    this.path = url.pathname;
    this.query = url.searchParams;
    this.ws = ws;
    this.opened = new Promise((r) => ws.addEventListener("open", () => r(), { once: true }));
    this.closed = new Promise((r) => ws.addEventListener("close", () => r(), { once: true }));
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

  dispatch(t: string, d: unknown): void {
    this.send({ op: 0, t, s: ++this.#fake.seq, d });
  }

  close(code = 1000, reason = ""): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
  }
}

export interface FakeOptions {
  /** The token the fake accepts. */
  token?: string;
  /** HELLO heartbeat_interval. */
  heartbeatIntervalMs?: number;
  /** GUILD_CREATE payloads sent after READY. */
  guilds?: unknown[];
  /** Extra guild ids listed (unavailable) in READY. */
  readyGuildIds?: string[];
  /** Close code sent right after IDENTIFY instead of READY. */
  identifyCloseCode?: number;
}

export class FakeDiscord {
  readonly token: string;
  heartbeatIntervalMs: number;
  guilds: unknown[];
  readyGuildIds: string[];
  identifyCloseCode?: number;
  /** Whether new connections get HELLO. */
  hello = true;
  /** Close code for IDENTIFY on one connection (e.g. only the second shard fails). */
  identifyCloseFor?: (conn: FakeConn) => number | undefined;
  /** Whether IDENTIFY is answered (READY); `false` leaves the client waiting. */
  answerIdentify = true;
  /** Decides whether a new connection ACKs heartbeats. */
  ackFor: (conn: FakeConn) => boolean = () => true;
  /** Answers op 8; default: nothing. */
  onRequestMembers?: (conn: FakeConn, d: Payload["d"]) => void;
  /** Answers REST calls the fake does not know (e.g. POST /channels/:id/messages). */
  onRest?: (req: Request, url: URL, body: string) => Response | undefined;
  /** `shards` and `max_concurrency` answered by /gateway/bot. */
  shards = 1;
  maxConcurrency = 1;
  /** When set, IDENTIFY must carry `shard: [id, shards]`; otherwise close 4011. */
  requireShards = false;
  /** Guild ids per IDENTIFY; default: `guilds` (filtered by shard when sharded). */
  readonly conns: FakeConn[] = [];
  readonly log: Received[] = [];
  readonly rest: Array<{ path: string; authorization: string | null }> = [];
  seq = 0;
  sessions = 0;
  sessionId: string | null = null;
  #server!: Deno.HttpServer<Deno.NetAddr>;

  private constructor(o: FakeOptions) {
    this.token = o.token ?? "test-token";
    this.heartbeatIntervalMs = o.heartbeatIntervalMs ?? 1000;
    this.guilds = o.guilds ?? [];
    this.readyGuildIds = o.readyGuildIds ?? [];
    this.identifyCloseCode = o.identifyCloseCode;
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

  /** Frames received with `op`. */
  ops(op: number): Received[] {
    return this.log.filter((r) => r.payload.op === op);
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

  /** Wait until a READY or RESUMED was sent on the current connection. */
  async waitSession(n: number, ms = 5000): Promise<void> {
    await this.until(() => this.#established >= n, ms, `session #${n}`);
  }
  #established = 0;

  guildCreate(conn: FakeConn): void {
    for (const g of this.guilds) {
      const id = (g as { id: string }).id;
      const s = conn.shard;
      if (s && Number((BigInt(id) >> 22n) % BigInt(s[1])) !== s[0]) continue;
      conn.dispatch("GUILD_CREATE", g);
    }
  }

  #handle(req: Request): Response | Promise<Response> {
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
    this.rest.push({ path: url.pathname, authorization: req.headers.get("authorization") });
    if (this.onRest) {
      return req.text().then((body) => this.onRest?.(req, url, body) ?? this.#rest(req, url));
    }
    return this.#rest(req, url);
  }

  #rest(req: Request, url: URL): Response {
    if (url.pathname === "/api/v10/gateway/bot") {
      if (req.headers.get("authorization") !== `Bot ${this.token}`) {
        return Response.json({ message: "401: Unauthorized", code: 0 }, { status: 401 });
      }
      return Response.json({
        url: `ws://127.0.0.1:${this.port}/gateway`,
        shards: this.shards,
        session_start_limit: {
          total: 1000,
          remaining: 999,
          reset_after: 0,
          max_concurrency: this.maxConcurrency,
        },
      });
    }
    if (url.pathname === "/api/v10/users/@me") {
      const auth = req.headers.get("authorization") ?? "";
      const m = /^Bearer user-(\d+)$/.exec(auth);
      if (!m) return Response.json({ message: "401: Unauthorized" }, { status: 401 });
      return Response.json({ id: m[1], username: `user${m[1]}` });
    }
    return Response.json({ message: "404: Not Found" }, { status: 404 });
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
    this.log.push({ conn: conn.id, payload: p });
    switch (p.op) {
      case 1:
        if (conn.ack) conn.send({ op: 11 });
        return;
      case 2: {
        if (p.d?.token !== this.token) {
          conn.close(4004, "Authentication failed.");
          return;
        }
        if (!this.answerIdentify) return;
        const code = this.identifyCloseFor?.(conn) ?? this.identifyCloseCode;
        if (code !== undefined) {
          conn.close(code, "Disallowed intent(s).");
          return;
        }
        if (this.identifyCloseCode !== undefined) {
          conn.close(this.identifyCloseCode, "Disallowed intent(s).");
          return;
        }
        const shard = p.d?.shard as [number, number] | undefined;
        if (this.requireShards && (!Array.isArray(shard) || shard[1] !== this.shards)) {
          conn.close(4011, "Sharding required.");
          return;
        }
        conn.shard = shard;
        this.sessionId = `session-${++this.sessions}`;
        this.seq = 0;
        const ids = [...this.guilds.map((g) => (g as { id: string }).id), ...this.readyGuildIds]
          .filter((id) => !shard || Number((BigInt(id) >> 22n) % BigInt(shard[1])) === shard[0]);
        conn.dispatch("READY", {
          v: 10,
          user: { id: "999000000000000001", username: "dzone-bot", bot: true },
          session_id: this.sessionId,
          resume_gateway_url: `ws://127.0.0.1:${this.port}/resume`,
          guilds: ids.map((id) => ({ id, unavailable: true })),
        });
        this.#established++;
        this.guildCreate(conn);
        return;
      }
      case 6: {
        if (p.d?.session_id !== this.sessionId || p.d?.token !== this.token) {
          conn.send({ op: 9, d: false });
          return;
        }
        conn.dispatch("RESUMED", {});
        this.#established++;
        return;
      }
      case 8:
        this.onRequestMembers?.(conn, p.d);
        return;
    }
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.close(1001, "fake going away");
    await Promise.all(this.conns.map((c) => c.closed));
    await this.#server.shutdown();
  }
}

// Only when this file is the test module, not when another test imports the fake.
if (Deno.mainModule === import.meta.url) {
  Deno.test("fake discord: answers /gateway/bot and checks the token", async () => {
    const fake = await FakeDiscord.start();
    const ok = await fetch(`${fake.apiBase}/gateway/bot`, {
      headers: { authorization: "Bot test-token" },
    });
    assert.equal((await ok.json()).url, fake.gatewayUrl);
    const bad = await fetch(`${fake.apiBase}/gateway/bot`, { headers: { authorization: "Bot x" } });
    assert.equal(bad.status, 401);
    await bad.body?.cancel();
    await fake.stop();
  });
}

// ---- shared fixtures and a source factory ----

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

/** A source pointed at the fake, logging into `logs`, with short timings. */
export function makeSource(fake: FakeDiscord, extra: Partial<DiscordSourceOptions> = {}) {
  const logs: LogRecord[] = [];
  const source = new DiscordGatewaySource({
    token: fake.token,
    gatewayUrl: fake.gatewayUrl,
    logLevel: "debug",
    logSink: (r) => logs.push(r),
    guildTimeoutMs: 3000,
    timing: {
      identifyIntervalMs: 0,
      reconnectBaseMs: 20,
      reconnectMaxMs: 200,
      invalidSessionDelayMs: 20,
      closeTimeoutMs: 2000,
    },
    ...extra,
  });
  return { source, logs };
}

/** An EventSink that records everything, for tests of the source on its own. */
export class RecordingSink implements EventSink {
  readonly presences: PresenceEvent[] = [];
  readonly messages: ChatEvent[] = [];
  readonly gone: string[] = [];
  presence(e: PresenceEvent): void {
    this.presences.push(e);
  }
  message(e: ChatEvent): void {
    this.messages.push(e);
  }
  clientId(): void {}
  serverGone(id: string): void {
    this.gone.push(id);
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
        presence: (e) => sink.presence(e),
        message: (e) => sink.message(e),
        clientId: (e) => sink.clientId(e),
        serverGone: (id) => {
          gone.push(id);
          sink.serverGone?.(id);
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
