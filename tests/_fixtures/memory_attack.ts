// The memory-bound attack, usable against a server on any runtime (e.g. a GuildProcess): an
// attacker from one address that opens WebSockets, joins the big guild, never reads, re-sends
// `connect` every half second and opens replacements whenever the server admits them (old
// sockets stay open, unread), while the server's RSS is sampled.
import { BIG_GUILD_SHORT } from "./big_guild.ts";

/**
 * The server under attack: its port and its resident memory, and where the runtime can tell, its
 * exact peak (a sample every round could miss a peak between two rounds).
 */
export interface Target {
  readonly port: number;
  rss(): number;
  /** Peak RSS since the last `resetPeakRss` (e.g. a GuildProcess's VmHWM). */
  peakRss?(): number;
  resetPeakRss?(): void;
}

const UPGRADE = (port: number) =>
  new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );

/**
 * Upgrade, reading the response head (the server sends nothing after it before a `connect`); the
 * socket when admitted (101), else `null`. One timer per upgrade, not per read: many attacks at
 * once must not slow each other's rounds.
 */
async function upgrade(port: number): Promise<Deno.TcpConn | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), 10_000));
  try {
    await conn.write(UPGRADE(port));
    let head = "";
    const buf = new Uint8Array(4096);
    while (!head.includes("\r\n\r\n")) {
      const n = await Promise.race([conn.read(buf), timeout]);
      if (n === null) break;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    if (head.split(" ")[1] === "101") return conn;
  } catch {
    /* refused or reset */
  } finally {
    clearTimeout(timer);
  }
  conn.close();
  return null;
}

/** One masked client text frame. */
function frame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const out = new Uint8Array(6 + payload.length);
  out.set([0x81, 0x80 | payload.length]); // payload < 126 bytes; mask of zeros
  out.set(payload, 6);
  return out;
}

/** What the attack saw. */
export interface AttackResult {
  /** Server RSS before the attack (see `before` in the options). */
  before: number;
  /**
   * Highest RSS growth over `before` during the attack and the hold after it: sampled, and the
   * exact peak where the target has one.
   */
  peakGrowth: number;
  /** Highest RSS seen. */
  peak: number;
  /** Highest RSS sampled (every 100 ms and after each round). */
  sampledPeak: number;
  /** The target's exact peak (`peakRss`) at the end, or 0 where it has none. */
  exactPeak: number;
  /** Sockets the server admitted in all (replacements included). */
  admitted: number;
  /** Upgrades refused. */
  refused: number;
  /** Ms from the attack's start until its first sockets had all sent `connect`. */
  firstRoundMs: number;
}

/**
 * Attack `server` for `attackMs` from 127.0.0.1 with up to `clients` non-reading sockets at a
 * time, then hold every socket open for `holdMs` more while sampling. `sockets` caps how many
 * the attacker keeps in all (so a server that never refuses cannot exhaust the test's files).
 */
export async function slowReaders(server: Target, opts: {
  /** Baseline RSS; default: now. */
  before?: number;
  clients?: number;
  attackMs: number;
  holdMs?: number;
  everyMs?: number;
  sockets?: number;
  /** Called after each round with the growth so far. */
  onRound?: (growth: number) => void;
}): Promise<AttackResult> {
  const clients = opts.clients ?? 32;
  const every = opts.everyMs ?? 500;
  const maxSockets = opts.sockets ?? clients * 12;
  const connect = frame(JSON.stringify({ type: "connect", data: { server: BIG_GUILD_SHORT } }));
  const socks = new Set<Deno.TcpConn>();
  const result: AttackResult = {
    before: 0,
    peakGrowth: 0,
    peak: 0,
    sampledPeak: 0,
    exactPeak: 0,
    admitted: 0,
    refused: 0,
    firstRoundMs: 0,
  };
  const sample = () => {
    const rss = server.rss();
    if (rss > result.peak) result.peak = rss;
    const g = rss - result.before;
    if (g > result.peakGrowth) result.peakGrowth = g;
    return g;
  };
  const send = async (s: Deno.TcpConn) => {
    try {
      await s.write(connect);
    } catch {
      // torn down by the server: it stays in the set, closed below
    }
  };
  // Sampled on a timer of its own too, so a round slowed by a loaded machine skips no sample.
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    result.before = opts.before ?? server.rss();
    server.resetPeakRss?.();
    sampler = setInterval(sample, 100);
    const attackStart = Date.now();
    const attackEnd = attackStart + opts.attackMs;
    while (Date.now() < attackEnd) {
      const round = Date.now();
      // Replacements: as many as the server admits this round (up to `clients`).
      for (let i = 0; i < clients && socks.size < maxSockets; i++) {
        const s = await upgrade(server.port);
        if (!s) {
          result.refused++;
          break;
        }
        socks.add(s);
        result.admitted++;
      }
      await Promise.all([...socks].map(send));
      result.firstRoundMs ||= Date.now() - attackStart;
      opts.onRound?.(sample());
      await new Promise((r) => setTimeout(r, Math.max(0, every - (Date.now() - round))));
    }
    const holdEnd = Date.now() + (opts.holdMs ?? 0);
    while (Date.now() < holdEnd) {
      opts.onRound?.(sample());
      await new Promise((r) => setTimeout(r, every));
    }
    sample();
    result.sampledPeak = result.peak;
    const exact = result.exactPeak = server.peakRss?.() ?? 0;
    if (exact > result.peak) result.peak = exact;
    if (exact - result.before > result.peakGrowth) result.peakGrowth = exact - result.before;
    return result;
  } finally {
    clearInterval(sampler);
    for (const s of socks) {
      try {
        s.close();
      } catch { /* closed */ }
    }
  }
}

/**
 * Join once with a client that reads everything, so the guild's join frame is built; the
 * server's RSS 2 s later (what it holds without the attack).
 */
export async function warmUp(server: Target): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("warm-up join timed out")), 60_000);
    ws.onopen = () =>
      ws.send(JSON.stringify({ type: "connect", data: { server: BIG_GUILD_SHORT } }));
    ws.onmessage = (e) => {
      if (typeof e.data === "string" && e.data.startsWith('{"type":"server-join"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error("warm-up client failed"));
    };
  });
  const closed = new Promise((r) => ws.onclose = r);
  ws.close();
  await closed;
  await new Promise((r) => setTimeout(r, 2000));
  return server.rss();
}
