/**
 * Warming the join path (internal): before a server takes its first viewer,
 * a private join core (`_join_core.ts`, the same wiring as the server's,
 * over a tiny in-memory world, silent) lets clients join and leave, so that
 * the engine has compiled that code before a join storm after a restart has
 * to run it. First in memory, with sockets that go nowhere (cheap, and on
 * JavaScriptCore most of the gain); then over real sockets: a private
 * listener of the same transport on a loopback port, and the runtime's own
 * WebSocket client, so that the upgrade, the runtime's socket objects and
 * their events are compiled too (on V8, stand-in sockets leave the join path
 * compiled for the wrong shapes: it compiles again on the first real
 * viewers), as many as the transport says are worth it (none on Bun).
 * Nothing of the server's own state, hooks, source or metrics is touched;
 * the loopback part is skipped where the process may not use loopback
 * without asking (Deno's permissions).
 *
 * @module
 */
import { ClientAddresses } from "./_client_address.ts";
import type { Connection } from "./_connection.ts";
import { type JoinCore, joinCore } from "./_join_core.ts";
import { Metrics } from "./_metrics.ts";
import { errorPage } from "./_static.ts";
import { upgrader } from "./_upgrade.ts";
import { Logger } from "./log.ts";
import { parseOptions, type Settings } from "./options.ts";
import type { DataSource } from "./source.ts";
import { loopbackAllowed, pickTransport, type TransportName } from "./transport/mod.ts";
import type { Listener, Transport, WsPeer } from "./transport/types.ts";

const ID = "100000000000000042";
const CONNECT = '{"type":"connect","data":{"server":"warm"}}';
// Real clients at once: enough to overlap as in a storm, few enough for any fd limit.
const LANES = 16;
// The loopback part gives up after this long (a stuck runtime must not stall the start).
const LOOPBACK_DEADLINE_MS = 3_000;

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
  /** The server's transport (default: the runtime's own). */
  transport?: TransportName;
  /** Joins with stand-in sockets (default 500). */
  inMemory?: number;
  /** Joins over real loopback sockets (default: the transport's `loopbackWarmUp`; 0 skips them). */
  loopback?: number;
}

let warmed = false;

/**
 * Let clients join and leave a private copy of the join path, once per
 * process; resolves with how many joined each way (all 0: done already). At
 * the defaults it costs a server's start some tens of milliseconds of CPU on
 * Deno and Bun (which does no loopback part) and a few hundred on Node
 * (bench/README.md, "What a join costs the server"); a join storm right
 * after a restart then runs compiled code.
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
  const inMemory = o.inMemory ?? 500;
  const s = parseOptions({
    logLevel: "silent",
    maxConnectionsPerIp: Math.max(inMemory, LANES) + 1,
    ipFramesPerSecond: 1_000_000,
    ipBytesPerSecond: 1_000_000_000,
    ipJoinsPerSecond: 1_000_000,
    callbackTimeoutMs: 10_000,
    userDataCacheMs: 60_000,
  });
  const log = new Logger("silent");
  const metrics = new Metrics();
  const users: Record<string, { username: string; status: "online" }> = {};
  for (let i = 0; i < 20; i++) {
    users[`2000000000000000${10 + i}`] = { username: `u${i}`, status: "online" };
  }
  const source: DataSource = {
    getServerData: () => ({ [ID]: { id: "warm", name: "Warm", default: true } }),
    getUserData: () => users,
  };
  const core = joinCore(s, source, log, metrics);
  const first = await standIns(core, inMemory, metrics);
  const second = await overLoopback(o.transport, o.loopback, s, core, metrics);
  return { inMemory: first, loopback: second };
}

async function standIns(core: JoinCore, joins: number, metrics: Metrics): Promise<number> {
  const { admission } = core;
  const clients = new ClientAddresses([], 64);
  const headers = new Headers({ host: "localhost", upgrade: "websocket" });
  const conns: Connection[] = [];
  // Yields are microtasks, not timers: a timer turn costs a whole event-loop pass (most of the
  // warm-up's time was spent waiting in them), while cached joins finish in their own call.
  const turn = () => new Promise<void>((r) => queueMicrotask(r));
  for (let i = 0; i < joins; i++) {
    const client = clients.resolve("127.0.0.1", headers);
    if (admission.check(client, null, () => [])) break;
    const conn = admission.admit(client);
    conn.open(new NullPeer());
    conn.message(CONNECT);
    conns.push(conn);
    // Joins overlap as in a storm, a few at a time.
    if (i % 16 === 15) await turn();
  }
  for (let i = 0; i < 100 && metrics.joins < conns.length; i++) {
    await new Promise((r) => setTimeout(r, 0));
  }
  const joined = metrics.joins;
  for (const conn of conns) conn.close(1000);
  admission.sweep();
  return joined;
}

/**
 * `asked` clients (default: as many as the transport wants) of the runtime's
 * WebSocket join over a private loopback listener of the named transport.
 */
async function overLoopback(
  name: TransportName | undefined,
  asked: number | undefined,
  s: Settings,
  core: JoinCore,
  metrics: Metrics,
): Promise<number> {
  const limits = {
    idleTimeoutSeconds: 0,
    maxPayloadBytes: s.maxFrameBytes,
    maxBufferedBytes: s.maxBufferedBytes,
  };
  let transport: Transport;
  try {
    // Not the server's transport object: one may keep per-server state (Bun's, its server).
    transport = pickTransport(name, limits);
  } catch {
    return 0; // the server's own start says why
  }
  const joins = asked ?? transport.loopbackWarmUp ?? 0;
  if (joins <= 0 || !loopbackAllowed() || typeof WebSocket !== "function") return 0;
  const log = new Logger("silent");
  let listener: Listener;
  try {
    listener = await transport.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: upgrader({
        running: () => true,
        transport,
        clients: new ClientAddresses([], 64),
        ownOrigins: () => [],
        admission: core.admission,
        limits,
        log,
        metrics,
      }),
      onError: () => errorPage(500, "Internal Server Error"),
      log: () => {},
    });
  } catch {
    return 0; // no loopback here: the in-memory part stands
  }
  const before = metrics.joins;
  const open = new Set<WebSocket>();
  const url = `ws://127.0.0.1:${listener.port}/`;
  let next = 0;
  let stop = false;
  const one = () =>
    new Promise<void>((resolve) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch {
        stop = true; // this runtime's client cannot reach it: no more tries
        return resolve();
      }
      open.add(ws);
      ws.onmessage = (e) => {
        if (typeof e.data !== "string") return;
        if (e.data.startsWith('{"type":"server-list"')) return ws.send(CONNECT);
        ws.close(1000);
        resolve(); // the close handshake goes on meanwhile: it is not the path being warmed
      };
      ws.onclose = () => {
        open.delete(ws);
        resolve();
      };
    });
  const lane = async () => {
    while (!stop && next < joins) {
      next++;
      await one();
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((r) => timer = setTimeout(r, LOOPBACK_DEADLINE_MS));
  await Promise.race([Promise.all(Array.from({ length: Math.min(LANES, joins) }, lane)), late]);
  stop = true;
  clearTimeout(timer);
  for (const ws of open) ws.close(1000);
  // Closes finish after the joins; what is left then is forgotten with the listener.
  for (let i = 0; i < 200 && (open.size > 0 || core.admission.size > 0); i++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  core.admission.sweep();
  let grace: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    listener.shutdown().catch(() => {}),
    new Promise((r) => grace = setTimeout(r, 500)),
  ]);
  clearTimeout(grace);
  return metrics.joins - before;
}
