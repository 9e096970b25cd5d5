/**
 * Mock mode as a data source: the four demo servers of the reference d-back
 * with their users, and the random activity (presence changes and chat) that
 * makes the demo world move. Activity belongs to a server, not to a
 * connection: one ticker per watched server, stopped when its last viewer
 * leaves.
 *
 * @module
 */
import type { DataSource, EventSink } from "../source.ts";
import type { DiscordUser, ServerMap, Status, UserEntry, UserMap } from "../protocol.ts";

/**
 * Options for {@link MockSource}.
 *
 * @example
 * ```ts
 * import { type MockOptions, MockSource } from "@dzone/dback";
 * const options: MockOptions = { presenceIntervalMs: 100, messageIntervalMs: 100, random: () => 0 };
 * const mock = new MockSource(options);
 * const said: string[] = [];
 * mock.start({ emit: (e) => e.type === "message" && said.push(e.event.message) });
 * mock.tickMessage("232769614004748288");
 * mock.stop();
 * if (said[0] !== "hello") throw new Error(said[0]);
 * ```
 */
export interface MockOptions {
  /** Milliseconds between presence changes per watched server. Default 4000. */
  presenceIntervalMs?: number;
  /** Milliseconds between chat messages per watched server. Default 5000. */
  messageIntervalMs?: number;
  /** Random source in [0, 1); injectable for tests. Default `Math.random`. */
  random?: () => number;
}

const CHANNEL = "527964146659229701";
const MESSAGES = [
  "hello",
  "how are you?",
  "this is a test message",
  "D-Zone rocks!",
  "what's up?",
];
const STATUSES: Status[] = ["online", "idle", "dnd", "offline"];

const SERVERS: ServerMap = {
  "232769614004748288": { id: "dworld", name: "D-World", default: true, passworded: false },
  "482241773318701056": { id: "docs", name: "Docs (WIP)", default: false, passworded: false },
  "123456789012345678": {
    id: "oauth",
    name: "OAuth2 Protected Server",
    default: false,
    passworded: true,
  },
  "987654321098765432": { id: "repos", name: "My Repos", default: false, passworded: false },
};

// [uid suffix, username, status, roleColor] exactly as the reference's mock data.
type Row = [string, string, Status, string];
const USERS: Record<string, { prefix: string; rows: Row[] }> = {
  "232769614004748288": {
    prefix: "1234567890123450",
    rows: [
      ["01", "vegeta897", "online", "#ff6b6b"],
      ["02", "Cog-Creators", "idle", "#4ecdc4"],
      ["03", "d-zone-org", "dnd", "#45b7d1"],
      ["04", "NNTin", "online", "#96ceb4"],
    ],
  },
  "482241773318701056": {
    prefix: "2234567890123450",
    rows: [["01", "nntin.xyz/me", "online", "#feca57"]],
  },
  "123456789012345678": {
    prefix: "3234567890123450",
    rows: [["01", "NNTin", "online", "#ff9ff3"]],
  },
  "987654321098765432": {
    prefix: "4234567890123450",
    rows: [
      ["01", "me", "online", "#54a0ff"],
      ["02", "nntin.github.io", "idle", "#5f27cd"],
      ["03", "d-zone", "online", "#00d2d3"],
      ["04", "d-back", "dnd", "#ff6348"],
      ["05", "d-cogs", "online", "#ff4757"],
      ["06", "Cubify-Reddit", "offline", "#3742fa"],
      ["07", "Dota-2-Emoticons", "idle", "#2ed573"],
      ["08", "Dota-2-Reddit-Flair-Mosaic", "online", "#ffa502"],
      ["09", "Red-kun", "dnd", "#ff3838"],
      ["10", "Reply-Dota-2-Reddit", "online", "#ff9f43"],
      ["11", "Reply-LoL-Reddit", "idle", "#0abde3"],
      ["12", "crosku", "online", "#006ba6"],
      ["13", "dev-tracker-reddit", "offline", "#8e44ad"],
      ["14", "discord-logo", "online", "#7289da"],
      ["15", "discord-twitter-bot", "idle", "#1da1f2"],
      ["16", "discord-web-bridge", "dnd", "#2c2f33"],
      ["17", "pasteindex", "online", "#f39c12"],
      ["18", "pasteview", "idle", "#e74c3c"],
      ["19", "shell-kun", "online", "#1abc9c"],
      ["20", "tracker-reddit-discord", "offline", "#9b59b6"],
      ["21", "twitter-backend", "online", "#1da1f2"],
    ],
  },
};

function mockUsers(): Map<string, Map<string, Required<UserEntry>>> {
  const out = new Map<string, Map<string, Required<UserEntry>>>();
  for (const [serverId, { prefix, rows }] of Object.entries(USERS)) {
    const users = new Map<string, Required<UserEntry>>();
    for (const [suffix, username, status, roleColor] of rows) {
      const uid = prefix + suffix;
      users.set(uid, { uid, username, status, roleColor });
    }
    out.set(serverId, users);
  }
  return out;
}

/**
 * The demo world of PROTOCOL.md's mock mode; what a server uses when it is
 * given no other source. Its protected demo server ("oauth") admits any
 * well-formed token: the server only lets it do so while the mock also
 * provides both the server list and the user maps.
 *
 * @example
 * ```ts
 * import { MockSource } from "@dzone/dback";
 * const mock = new MockSource();
 * const repos = Object.values(mock.getUserData("987654321098765432"));
 * const dback = repos.find((u) => u.username === "d-back");
 * if (dback?.status !== "dnd" || dback.roleColor !== "#ff6348") throw new Error("unexpected");
 * ```
 */
export class MockSource implements DataSource {
  #users = mockUsers();
  #tickers = new Map<string, ReturnType<typeof setInterval>[]>();
  #sink: EventSink | undefined;
  #presenceMs: number;
  #messageMs: number;
  #random: () => number;

  /** Create the mock world; intervals default to the reference's 4 s and 5 s. */
  constructor(options: MockOptions = {}) {
    this.#presenceMs = options.presenceIntervalMs ?? 4000;
    this.#messageMs = options.messageIntervalMs ?? 5000;
    this.#random = options.random ?? Math.random;
  }

  /** The four demo servers. */
  getServerData(): ServerMap {
    return structuredClone(SERVERS);
  }

  /** The current users of a demo server (statuses change with activity); `{}` for others. */
  getUserData(serverId: string): UserMap {
    const out: UserMap = {};
    for (const [uid, u] of this.#users.get(serverId) ?? []) out[uid] = { ...u };
    return out;
  }

  /** The demo protected server accepts any well-formed token and user. */
  validateDiscordUser(token: string, user: DiscordUser, serverId: string): boolean {
    return this.#users.has(serverId) && token.length > 0 && typeof user.id === "string" &&
      typeof user.username === "string";
  }

  /** Send activity to `sink` from now on (only for watched servers). */
  start(sink: EventSink): void {
    this.#sink = sink;
  }

  /** Start or stop the activity of one demo server. Idempotent. */
  watch(serverId: string, active: boolean): void {
    if (!active) {
      for (const t of this.#tickers.get(serverId) ?? []) clearInterval(t);
      this.#tickers.delete(serverId);
      return;
    }
    if (this.#tickers.has(serverId) || !this.#users.has(serverId)) return;
    this.#tickers.set(serverId, [
      setInterval(() => this.tickPresence(serverId), this.#presenceMs),
      setInterval(() => this.tickMessage(serverId), this.#messageMs),
    ]);
  }

  /** Servers whose activity runs now. */
  get watched(): string[] {
    return [...this.#tickers.keys()];
  }

  /** The mock is always ready. */
  state(): { kind: string; state: string } {
    return { kind: "mock", state: "ready" };
  }

  /** Stop all activity and detach from the sink. */
  stop(): void {
    for (const id of [...this.#tickers.keys()]) this.watch(id, false);
    this.#sink = undefined;
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#random() * list.length) % list.length];
  }

  /** One random presence change on `serverId` (what the ticker does). */
  tickPresence(serverId: string): void {
    const users = this.#users.get(serverId);
    if (!users || !this.#sink) return;
    const u = users.get(this.#pick([...users.keys()]))!;
    u.status = this.#pick(STATUSES);
    this.#sink.emit({
      type: "presence",
      event: {
        server: serverId,
        uid: u.uid,
        status: u.status,
        username: u.username,
        roleColor: u.roleColor,
      },
    });
  }

  /** One random chat message on `serverId` from a member who is not offline (what the ticker does). */
  tickMessage(serverId: string): void {
    const users = this.#users.get(serverId);
    if (!users || !this.#sink) return;
    const present = [...users.values()].filter((u) => u.status !== "offline");
    if (present.length === 0) return;
    this.#sink.emit({
      type: "message",
      event: {
        server: serverId,
        uid: this.#pick(present).uid,
        message: this.#pick(MESSAGES),
        channel: CHANNEL,
      },
    });
  }
}
