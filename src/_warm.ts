/**
 * Warming the join path (internal): before a server takes its first viewer,
 * a private copy of it lets clients join and leave, so that the engine has
 * compiled that code before a join storm after a restart has to run it.
 *
 * The copy is built by the server's own `compose()` from a copy of the
 * server's own settings: the same keys in the same order, the same values
 * but for what would reach out (the user's hooks keep their names and answer
 * from a private world; no source, broker, metrics port or log lines of the
 * server's). Engines compile for the shapes and types they have seen: a
 * copy that differs (other limits, no memory factor, a plain object for a
 * source) leaves code compiled for it, which the first real viewers throw
 * away and compile again (bench/README.md, "The warm-up as a copy of the
 * server", counts it from the engines' own traces).
 *
 * Stand-in sockets join it in memory first (cheap; all there is where the
 * process may not use loopback without asking: Deno's permissions). Then
 * real clients: a bare client over `node:net` (`_loopback_client.ts`) joins
 * over a private listener of the same transport on a loopback port, each
 * from a loopback address of its own (one client per address, as in a storm
 * from many places), as many as the transport says are worth it; the code
 * is left compiled for real sockets.
 *
 * @module
 */
import type { Socket } from "node:net";
import { ClientAddresses } from "./_client_address.ts";
import { compose, type Parts } from "./_compose.ts";
import type { Connection } from "./_connection.ts";
import { portHandlers } from "./_lifecycle.ts";
import { joinOnce, type Net } from "./_loopback_client.ts";
import { Metrics } from "./_metrics.ts";
import { Logger } from "./log.ts";
import { DEFAULT_STATIC_DIR, parseOptions, type Settings } from "./options.ts";
import type { Callbacks } from "./callbacks.ts";
import type { DataSource } from "./source.ts";
import { loopbackAllowed } from "./transport/mod.ts";
import type { Listener, WsPeer } from "./transport/types.ts";

const ID = "100000000000000042";
// Stand-ins join the default server of whichever world answers (the mock's, or the one below).
const CONNECT = '{"type":"connect","data":{}}';
// Clients at once: enough to overlap as in a storm, few enough for any fd limit.
const LANES = 16;
// The loopback part gives up after this long (a stuck runtime must not stall the start).
const LOOPBACK_DEADLINE_MS = 3_000;
// Stand-in joins where there is no loopback part.
const IN_MEMORY = 500;

/** A socket that takes every frame at once. */
class NullPeer implements WsPeer {
  isOpen = true;
  readonly bufferedAmount = 0;
  send(_frame: string): void {}
  close(): void {
    this.isOpen = false;
  }
  terminate(): boolean {
    this.isOpen = false;
    return true;
  }
}

/** How many clients joined the private copy, in memory and over loopback sockets. */
export interface Warmed {
  /** Joins with stand-in sockets. */
  inMemory: number;
  /** Joins over real sockets on a loopback port (0: skipped, or not permitted). */
  loopback: number;
}

/** How much warming to do (the defaults are what a server does at start). */
export interface WarmOptions {
  /** The server's settings, copied (default: the defaults). */
  settings?: Settings;
  /** Joins over real loopback sockets (default: the transport's `loopbackWarmUp`; 0 skips them). */
  loopback?: number;
  /** Joins with stand-in sockets (default 500). */
  inMemory?: number;
  /** `node:net` for the loopback clients (tests replace it). */
  net?: Net;
}

let warmed = false;

/**
 * Let clients join and leave a private copy of the server, once per
 * process; resolves with how many joined each way (all 0: done already).
 * What it costs a server's start and saves its first viewers is measured in
 * bench/README.md ("What a join costs the server").
 * Never throws for want of loopback: that part is then skipped or cut short.
 *
 * @example
 * ```ts
 * import { warmJoinPath } from "./_warm.ts";
 * const first = await warmJoinPath({ inMemory: 20, loopback: 5 });
 * if (first.inMemory !== 20) throw new Error("every stand-in client joins");
 * if (first.loopback !== 5) throw new Error("every loopback client joins (run with -A)");
 * const again = await warmJoinPath();
 * if (again.inMemory !== 0 || again.loopback !== 0) throw new Error("once per process");
 * ```
 */
export async function warmJoinPath(o: WarmOptions = {}): Promise<Warmed> {
  if (warmed) return { inMemory: 0, loopback: 0 };
  warmed = true;
  const metrics = new Metrics();
  const s = privateCopy(o.settings ?? parseOptions({}));
  // An origin the copy lets in, when it checks them (the settings list them).
  const origin = s.allowedOrigins?.[0];
  const parts = compose(
    s,
    new Logger("silent"),
    metrics,
    { state: () => "running", url: () => undefined },
    DEFAULT_STATIC_DIR,
  );
  const inMemory = await standIns(parts, o.inMemory ?? IN_MEMORY, origin, metrics);
  const asked = o.loopback ?? parts.transport.loopbackWarmUp ?? 0;
  const loopback = asked > 0 && loopbackAllowed()
    ? await overLoopback(
      parts,
      s.headerTimeoutMs,
      asked,
      origin,
      metrics,
      o.net ?? await import("node:net"),
    )
    : 0;
  // A room still held (a client cut off at the deadline) must not keep the mock world's timers.
  await parts.source.stop?.();
  return { inMemory, loopback };
}

const HOOKS: Required<Callbacks> = {
  getServerData: () => ({ [ID]: { id: "warm", name: "Warm", default: true } }),
  getUserData: () => USERS,
  getClientId: () => undefined,
  validateDiscordUser: () => false,
  staticRequest: () => null,
};
const USERS: Record<string, { username: string; status: "online" }> = {};
for (let i = 0; i < 20; i++) {
  USERS[`2000000000000000${10 + i}`] = { username: `u${i}`, status: "online" };
}
const WORLD: DataSource = { getServerData: HOOKS.getServerData, getUserData: HOOKS.getUserData };

/**
 * The server's settings with the same keys in the same order (so the same
 * shape to the engine), and nothing that reaches out: no log lines, broker
 * or metrics port; a private world for a source; the user's hooks replaced
 * by private ones of the same names.
 *
 * @example
 * ```ts
 * import { privateCopy } from "./_warm.ts";
 * import { parseOptions } from "./options.ts";
 * const getServerData = () => ({});
 * const s = parseOptions({ callbacks: { getServerData }, maxConnectionsPerIp: 3 });
 * const copy = privateCopy(s);
 * if (Object.keys(copy).join() !== Object.keys(s).join()) throw new Error("same keys, same order");
 * if (copy.maxConnectionsPerIp !== 3 || copy.logLevel !== "silent") throw new Error("values");
 * const hooks = copy.callbacks!;
 * if (Object.keys(hooks).join() !== "getServerData" || hooks.getServerData === getServerData) {
 *   throw new Error("the user's hook is never called");
 * }
 * ```
 */
export function privateCopy(s: Settings): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(s)) {
    out[key] = key === "logLevel"
      ? "silent"
      : key === "logSink" || key === "broker" || key === "metrics"
      ? undefined
      : key === "source"
      ? WORLD
      : key === "callbacks"
      ? hooksLike(value as Callbacks)
      : value;
  }
  return out as Settings;
}

/** Private hooks under the names the user registered, in the same order. */
function hooksLike(user: Callbacks): Callbacks {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(user)) out[name] = HOOKS[name as keyof Callbacks];
  return out as Callbacks;
}

/** `joins` clients of `node:net` join over a private loopback listener of the copy's transport. */
async function overLoopback(
  parts: Parts,
  headerTimeoutMs: number,
  joins: number,
  origin: string | undefined,
  metrics: Metrics,
  net: Net,
): Promise<number> {
  let listener: Listener;
  try {
    listener = await parts.transport.serve({
      port: 0,
      hostname: "127.0.0.1",
      headerTimeoutMs,
      ...portHandlers(parts.fetch, new Logger("silent")),
    });
  } catch {
    return 0; // no loopback here: the in-memory part stands in
  }
  const before = metrics.joins;
  const open = new Set<Socket>();
  let next = 0;
  let stop = false;
  let own = true; // a loopback address per client, until one cannot be used here
  const lane = async () => {
    while (!stop && next < joins) {
      const i = next++;
      const from = own ? `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) || 1}` : undefined;
      const how = await joinOnce(net, {
        port: listener.port,
        from,
        origin,
        open,
      });
      if (how === "failed" && from !== undefined) own = false;
      else if (how === "failed") stop = true; // no connection at all: no more tries
    }
  };
  await within(
    Promise.all(Array.from({ length: Math.min(LANES, joins) }, lane)),
    LOOPBACK_DEADLINE_MS,
  );
  stop = true;
  for (const socket of open) socket.destroy();
  // Closes finish after the joins; what is left then is forgotten with the listener.
  for (let i = 0; i < 200 && parts.admission.size > 0; i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  parts.admission.sweep();
  await within(listener.shutdown().catch(() => {}), 500);
  return metrics.joins - before;
}

/** Wait for `done`, but no longer than `ms`. */
async function within(done: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

/** `joins` stand-in clients, each from an address of its own, join in memory. */
async function standIns(
  parts: Parts,
  joins: number,
  origin: string | undefined,
  metrics: Metrics,
): Promise<number> {
  const { admission } = parts;
  const before = metrics.joins;
  const clients = new ClientAddresses([], 64);
  const headers = new Headers({ host: "localhost", upgrade: "websocket" });
  const conns: Connection[] = [];
  // Yields are microtasks, not timers: a timer turn costs a whole event-loop pass, while
  // cached joins finish in their own call.
  const turn = () => new Promise<void>((r) => queueMicrotask(r));
  for (let i = 0; i < joins; i++) {
    const client = clients.resolve(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, headers);
    if (admission.check(client, origin ?? null, () => [])) break;
    const conn = admission.admit(client);
    conn.open(new NullPeer());
    conn.message(CONNECT);
    conns.push(conn);
    // Joins overlap as in a storm, a few at a time.
    if (i % 16 === 15) await turn();
  }
  for (let i = 0; i < 100 && metrics.joins - before < conns.length; i++) {
    await new Promise((r) => setTimeout(r, 0));
  }
  const joined = metrics.joins - before;
  for (const conn of conns) conn.close(1000);
  admission.sweep();
  return joined;
}
