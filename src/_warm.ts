/**
 * Warming the join path (internal): before a server takes its first viewer,
 * a private join core (`_join_core.ts`, the same wiring as the server's,
 * over a tiny in-memory world, silent, with sockets that go nowhere) lets a
 * few hundred clients join and leave, so that the engine has compiled that
 * code before a join storm after a restart has to run it. Nothing of the server's own state, hooks, source or metrics is
 * touched.
 *
 * @module
 */
import { ClientAddresses } from "./_client_address.ts";
import type { Connection } from "./_connection.ts";
import { joinCore } from "./_join_core.ts";
import { Metrics } from "./_metrics.ts";
import { Logger } from "./log.ts";
import { parseOptions } from "./options.ts";
import type { DataSource } from "./source.ts";
import type { WsPeer } from "./transport/types.ts";

const ID = "100000000000000042";

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

let warmed = false;

/**
 * Let `joins` clients join and leave a private copy of the join path, once
 * per process; resolves with how many joined (0: done already). It costs a
 * server's start some tens of milliseconds and saves its first thousand
 * joins about a third of their CPU on Bun (bench/README.md, "CPU per join on
 * Bun, by thread").
 *
 * @example
 * ```ts
 * import { warmJoinPath } from "./_warm.ts";
 * if (await warmJoinPath(20) !== 20) throw new Error("every client joins");
 * if (await warmJoinPath(20) !== 0) throw new Error("once per process");
 * ```
 */
export async function warmJoinPath(joins = 500): Promise<number> {
  if (warmed) return 0;
  warmed = true;
  const s = parseOptions({
    logLevel: "silent",
    maxConnectionsPerIp: joins + 1,
    ipFramesPerSecond: 1_000_000,
    ipBytesPerSecond: 1_000_000_000,
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
  const { admission } = joinCore(s, source, log, metrics);
  const clients = new ClientAddresses([], 64);
  const headers = new Headers({ host: "localhost", upgrade: "websocket" });
  const conns: Connection[] = [];
  for (let i = 0; i < joins; i++) {
    const client = clients.resolve("127.0.0.1", headers);
    if (admission.check(client, null, () => [])) break;
    const conn = admission.admit(client);
    conn.open(new NullPeer());
    conn.message('{"type":"connect","data":{"server":"warm"}}');
    conns.push(conn);
    // Joins overlap as in a storm, a few at a time.
    if (i % 16 === 15) await new Promise((r) => setTimeout(r, 0));
  }
  for (let i = 0; i < 100 && metrics.joins < conns.length; i++) {
    await new Promise((r) => setTimeout(r, 0));
  }
  const joined = metrics.joins;
  for (const conn of conns) conn.close(1000);
  admission.sweep();
  return joined;
}
