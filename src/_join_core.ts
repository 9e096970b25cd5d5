/**
 * The join core (internal): directory, hub, global join queue, protocol
 * handler and admission over one data source, wired once. `compose()` builds
 * a server around it (`warmJoinPath()` builds a private, silent copy of a
 * server that way to warm the same code at start).
 *
 * @module
 */
import { Admission } from "./_admission.ts";
import { CallbackRunner } from "./_callback_runner.ts";
import { keptFrameWarning } from "./_charge.ts";
import type { Connection } from "./_connection.ts";
import { Directory } from "./_directory.ts";
import { ProtocolHandler } from "./_handler.ts";
import { Hub, type RoomListener } from "./_hub.ts";
import { JoinQueue } from "./_join_queue.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import type { Settings } from "./options.ts";
import type { DataSource } from "./source.ts";
import type { Transport } from "./transport/types.ts";

/** What the core takes from its surroundings beyond settings, source, log and metrics. */
export interface JoinCoreOptions {
  /** Told when a room gains its first member or loses its last. */
  onRoom?: RoomListener;
  /** The transport's own rooms, where it has them. */
  rooms?: Transport["rooms"];
  /** What the runtime holds per socket (the transport's measured figures). */
  memory?: Transport["memory"];
}

/** The wired parts of a join core. */
export interface JoinCore {
  /** Runs the source's calls under their deadline. */
  runner: CallbackRunner;
  /** Server list and cached user maps. */
  directory: Directory;
  /** Who is joined where. */
  hub: Hub<Connection>;
  /** The global outbound budget and its join queue. */
  joinQueue: JoinQueue;
  /** What each connection's frames do. */
  handler: ProtocolHandler;
  /** Who may connect; the live connections. */
  admission: Admission;
}

/**
 * Wire the join core of one server from its checked settings.
 *
 * @example
 * ```ts
 * import { joinCore } from "./_join_core.ts";
 * import { ClientAddresses } from "./_client_address.ts";
 * import { Logger } from "./log.ts";
 * import { Metrics } from "./_metrics.ts";
 * import { parseOptions } from "./options.ts";
 * const metrics = new Metrics();
 * const core = joinCore(
 *   parseOptions({ logLevel: "silent" }),
 *   {
 *     getServerData: () => ({ "100000000000000001": { id: "a", name: "A", default: true } }),
 *     getUserData: () => ({}),
 *   },
 *   new Logger("silent"),
 *   metrics,
 * );
 * const client = new ClientAddresses([], 64).resolve("127.0.0.1", new Headers({ host: "x" }));
 * const conn = core.admission.admit(client);
 * const frames: string[] = [];
 * conn.open({
 *   isOpen: true,
 *   bufferedAmount: 0,
 *   send: (f: string) => void frames.push(f),
 *   close() {},
 *   terminate: () => true,
 * });
 * conn.message('{"type":"connect","data":{"server":"a"}}');
 * while (metrics.joins === 0) await new Promise((r) => setTimeout(r, 1));
 * if (core.hub.roomOf(conn) !== "100000000000000001") throw new Error("joined through the hub");
 * if (!frames.some((f) => f.includes('"server-join"'))) throw new Error("the join was sent");
 * conn.close(1000);
 * core.admission.sweep();
 * ```
 */
export function joinCore(
  s: Settings,
  source: DataSource,
  log: Logger,
  metrics: Metrics,
  options: JoinCoreOptions = {},
): JoinCore {
  const runner = new CallbackRunner(s.callbackTimeoutMs, log, metrics);
  const directory = new Directory(source, runner, s.userDataCacheMs, log, {
    hideOfflineAbove: s.hideOfflineAbove,
  });
  const onRoom = options.onRoom;
  const hub = new Hub<Connection>((serverId, active) => {
    directory.watch(serverId, active);
    onRoom?.(serverId, active);
  }, options.rooms);
  // Asked only once connections exist, so after `admission` below is set.
  const joinQueue: JoinQueue = new JoinQueue(s, (): number => admission.unsentSeen(), metrics, {
    measure: (): number => admission.unsentBytes(),
    onBigJoin: options.memory?.keepsLargestFrame
      ? (bytes) => log.warn(keptFrameWarning(bytes))
      : undefined,
  });
  const handler = new ProtocolHandler(directory, hub, log, metrics, joinQueue);
  const admission: Admission = new Admission(s, hub, handler, log, metrics, options.memory);
  return { runner, directory, hub, joinQueue, handler, admission };
}
