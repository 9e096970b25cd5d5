/**
 * Mock mode: the four demo servers of the reference d-back, their users, and
 * the random activity (presence changes and chat) that makes the demo world
 * move. Activity belongs to a server, not to a connection: one ticker per
 * server that has viewers, stopped when the last one leaves.
 *
 * @module
 */
import type { ChatEvent, PresenceEvent, ServerMap, Status, UserMap } from "./protocol.ts";
import type { DiscordUser } from "./protocol.ts";

/** Where mock activity goes: the server's broadcast methods. */
export interface MockSink {
  /** Send a presence change. */
  presence(event: PresenceEvent): void;
  /** Send a chat message. */
  message(event: ChatEvent): void;
}

/** Options for {@link MockDataProvider}. */
export interface MockOptions {
  /** Milliseconds between presence changes per active server. Default 4000. */
  presenceIntervalMs?: number;
  /** Milliseconds between chat messages per active server. Default 5000. */
  messageIntervalMs?: number;
  /** Random source in [0, 1); injectable for tests. Default `Math.random`. */
  random?: () => number;
}

/** The channel mock messages are said in. */
export const MOCK_CHANNEL = "527964146659229701";

/** The texts mock users say. */
export const MOCK_MESSAGES: readonly string[] = [
  "hello",
  "how are you?",
  "this is a test message",
  "D-Zone rocks!",
  "what's up?",
];

const REPO_NAMES = [
  "me",
  "nntin.github.io",
  "d-zone",
  "d-back",
  "d-cogs",
  "Cubify-Reddit",
  "Dota-2-Emoticons",
  "Dota-2-Reddit-Flair-Mosaic",
  "Red-kun",
  "Reply-Dota-2-Reddit",
  "Reply-LoL-Reddit",
  "crosku",
  "dev-tracker-reddit",
  "discord-logo",
  "discord-twitter-bot",
  "discord-web-bridge",
  "pasteindex",
  "pasteview",
  "shell-kun",
  "tracker-reddit-discord",
  "twitter-backend",
];

const STATUSES: Status[] = ["online", "idle", "dnd", "offline"];

function mockServers(): ServerMap {
  return {
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
}

function user(uid: string, username: string, status: Status, roleColor: string) {
  return { uid, username, status, roleColor };
}

function mockUsers(): Map<string, UserMap> {
  const repos: UserMap = {};
  // The reference colours its repo users from a small palette, round robin.
  const palette = ["#ff6b6b", "#4ecdc4", "#45b7d1", "#96ceb4", "#feca57", "#ff9ff3", "#54a0ff"];
  REPO_NAMES.forEach((name, i) => {
    const uid = `4234567890123450${String(i + 1).padStart(2, "0")}`;
    repos[uid] = user(uid, name, "online", palette[i % palette.length]);
  });
  return new Map<string, UserMap>([
    ["232769614004748288", {
      "123456789012345001": user("123456789012345001", "vegeta897", "online", "#ff6b6b"),
      "123456789012345002": user("123456789012345002", "Cog-Creators", "idle", "#4ecdc4"),
      "123456789012345003": user("123456789012345003", "d-zone-org", "dnd", "#45b7d1"),
      "123456789012345004": user("123456789012345004", "NNTin", "online", "#96ceb4"),
    }],
    ["482241773318701056", {
      "223456789012345001": user("223456789012345001", "nntin.xyz/me", "online", "#feca57"),
    }],
    ["123456789012345678", {
      "323456789012345001": user("323456789012345001", "NNTin", "online", "#ff9ff3"),
    }],
    ["987654321098765432", repos],
  ]);
}

/**
 * The demo world of PROTOCOL.md's mock mode. The server uses it for any data
 * callback that is not registered.
 *
 * @example
 * ```ts
 * import { MockDataProvider } from "@dzone/dback";
 * const mock = new MockDataProvider({ presenceIntervalMs: 100, messageIntervalMs: 100 });
 * Object.keys(mock.getUserData("232769614004748288")).length; // 4
 * ```
 */
export class MockDataProvider {
  #servers = mockServers();
  #users = mockUsers();
  #tickers = new Map<string, ReturnType<typeof setInterval>[]>();
  #sink: MockSink | undefined;
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
    return structuredClone(this.#servers);
  }

  /** Whether `serverId` is one of the demo servers. */
  has(serverId: string): boolean {
    return this.#users.has(serverId);
  }

  /** The current users of a demo server (statuses change with activity); `{}` for others. */
  getUserData(serverId: string): UserMap {
    return structuredClone(this.#users.get(serverId) ?? {});
  }

  /** The demo protected server accepts any well-formed token and user. */
  validateDiscordUser(token: string, user: DiscordUser, _serverId: string): boolean {
    return token.length > 0 && typeof user.id === "string" && typeof user.username === "string";
  }

  /** Connect activity to a sink; until then, no ticker runs. */
  attach(sink: MockSink): void {
    this.#sink = sink;
  }

  /** Start or stop the activity of one demo server. Idempotent. */
  setActive(serverId: string, active: boolean): void {
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
  activeServers(): string[] {
    return [...this.#tickers.keys()];
  }

  /** Stop all activity. */
  stopAll(): void {
    for (const id of [...this.#tickers.keys()]) this.setActive(id, false);
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#random() * list.length) % list.length];
  }

  /** One random presence change on `serverId` (what the ticker does). */
  tickPresence(serverId: string): void {
    const users = this.#users.get(serverId);
    if (!users || !this.#sink) return;
    const u = users[this.#pick(Object.keys(users))];
    u.status = this.#pick(STATUSES);
    this.#sink.presence({
      server: serverId,
      uid: u.uid!,
      status: u.status,
      username: u.username,
      roleColor: u.roleColor,
    });
  }

  /** One random chat message on `serverId` (what the ticker does). */
  tickMessage(serverId: string): void {
    const users = this.#users.get(serverId);
    if (!users || !this.#sink) return;
    const uid = this.#pick(Object.keys(users));
    this.#sink.message({
      server: serverId,
      uid,
      message: this.#pick(MOCK_MESSAGES),
      channel: MOCK_CHANNEL,
    });
  }
}
