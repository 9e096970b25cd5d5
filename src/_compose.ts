/**
 * The object graph of one server (internal): transport, data source (hooks
 * over the given source, or over the mock world / an inert base), broker,
 * the join core (directory, hub, join queue, protocol handler, admission:
 * `_join_core.ts`), event routing and the HTTP routes, wired once. The
 * server owns the lifecycle around them.
 *
 * @module
 */
import { type Broker, LocalBroker } from "./broker.ts";
import type { Callbacks } from "./callbacks.ts";
import { ClientAddresses } from "./_client_address.ts";
import type { Admission } from "./_admission.ts";
import type { Connection } from "./_connection.ts";
import type { Directory } from "./_directory.ts";
import { EventRouter } from "./_events.ts";
import { routes } from "./_http.ts";
import type { Hub } from "./_hub.ts";
import type { JoinQueue } from "./_join_queue.ts";
import { joinCore } from "./_join_core.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./_metrics.ts";
import type { Settings } from "./options.ts";
import type { DataSource } from "./source.ts";
import { MockSource } from "./sources/mock.ts";
import { defaultBase, withCallbacks } from "./sources/_callbacks.ts";
import { PAGE_FILES, staticSource } from "./_static.ts";
import { pickTransport } from "./transport/mod.ts";
import type { FetchHandler, Transport } from "./transport/types.ts";
import { upgrader } from "./_upgrade.ts";
import { VERSION } from "./version.ts";

/** What the graph needs to know about the server that owns it. */
export interface Owner {
  /** The server's lifecycle state (`running` accepts connections). */
  state(): string;
  /** `http(s)://host:port` of the viewer port while it is bound to one address. */
  url(): string | undefined;
}

/** The parts of one server. */
export interface Parts {
  /** The runtime's transport. */
  transport: Transport;
  /** The registered hooks (the `on…` methods add to it). */
  hooks: Callbacks;
  /** Hooks over the source: what the directory asks. */
  source: DataSource;
  /** How events reach every instance. */
  broker: Broker;
  /** Server list and cached user maps. */
  directory: Directory;
  /** Who is joined where. */
  hub: Hub<Connection>;
  /** Who may connect; the live connections. */
  admission: Admission;
  /** The global outbound budget and its join queue. */
  joinQueue: JoinQueue;
  /** Events in (sink, broadcasts) and out (delivery). */
  events: EventRouter;
  /** The request handler of the port (synchronous for upgrades and API answers). */
  fetch: FetchHandler;
  /** The `/metrics` text. */
  metricsText(): string;
}

/**
 * Build the parts of a server from its checked settings; `staticDir` is the default page.
 *
 * @example
 * ```ts
 * import { compose } from "./_compose.ts";
 * import { Logger } from "./log.ts";
 * import { Metrics } from "./_metrics.ts";
 * import { parseOptions } from "./options.ts";
 * let state = "stopped";
 * const parts = compose(
 *   parseOptions({ logLevel: "silent" }),
 *   new Logger("silent"),
 *   new Metrics(),
 *   { state: () => state, url: () => undefined },
 *   new URL("../public/", import.meta.url),
 * );
 * const health = () => parts.fetch(new Request("http://dzone.local/healthz"), undefined);
 * if ((await health()).status !== 503) throw new Error("not running yet");
 * state = "running";
 * if ((await health()).status !== 200) throw new Error("running");
 * if (parts.transport.runtime !== "deno") throw new Error(parts.transport.runtime);
 * ```
 */
export function compose(
  s: Settings,
  log: Logger,
  metrics: Metrics,
  owner: Owner,
  staticDir: URL,
): Parts {
  const limits = {
    idleTimeoutSeconds: s.idleTimeoutSeconds,
    maxPayloadBytes: s.maxFrameBytes,
    maxBufferedBytes: s.maxBufferedBytes,
  };
  // Bun closes a socket past its limit itself: a join on its way may take a socket past
  // maxBufferedBytes (the global budget bounds the sum), so there the sweep applies the rule.
  const transport = pickTransport(s.transport, {
    ...limits,
    maxBufferedBytes: Math.min(s.maxBufferedBytes + s.maxTotalBufferedBytes, 2 ** 31 - 1),
  });
  const hooks: Callbacks = { ...s.callbacks };
  // Callbacks that supply the data run over an inert base, never over the mock world.
  const source = withCallbacks(s.source ?? defaultBase(new MockSource(), hooks), hooks);
  const broker: Broker = s.broker ?? new LocalBroker();
  const { runner, directory, hub, joinQueue, admission } = joinCore(s, source, log, metrics, {
    onRoom: (serverId, active) => {
      source.watch?.(serverId, active);
      broker.watch(serverId, active);
    },
    rooms: transport.rooms,
    memory: transport.memory,
  });
  const events = new EventRouter({
    broker,
    hub,
    directory,
    leave: (conn) => admission.leave(conn),
    log,
    metrics,
  });
  const metricsText = () => {
    joinQueue.unsentBytes(); // a gauge: measured when read
    return metrics.render(admission.size, hub.sizes(), owner.state() !== "running") +
      (broker.metrics?.() ?? "");
  };
  let origins: { url: string | undefined; list: string[] } | undefined;
  const fetch = routes({
    healthy: () => owner.state() === "running",
    metrics: s.metrics === undefined ? metricsText : null,
    // Counts only: nothing here names a user or a server.
    status: () => ({
      version: VERSION,
      runtime: transport.runtime,
      state: owner.state(),
      viewers: admission.size,
      rooms: hub.sizes().size,
      trackedIps: admission.trackedIps,
      source: source.state?.() ?? { kind: "custom", state: "running" },
      cluster: broker.role?.() ?? "single",
    }),
    sourceState: () => source.state?.(),
    builtinPage: s.staticDir === undefined,
    publicOrigins: s.publicOrigins,
    debug: (message) => log.debug(message),
    hooks,
    runner,
    files: s.staticDir === false
      ? null
      : s.staticDir === undefined
      ? staticSource(staticDir, PAGE_FILES)
      : staticSource(s.staticDir),
    upgrade: upgrader({
      running: () => owner.state() === "running",
      transport,
      clients: new ClientAddresses(s.trustProxy, s.ipv6Prefix),
      // The page's own origins: configured, and the listener's (unless bound to every address).
      // Asked on every upgrade: rebuilt only when the listener's URL changes.
      ownOrigins: () => {
        const url = owner.url();
        if (!origins || origins.url !== url) {
          origins = {
            url,
            list: url ? [...s.publicOrigins, new URL(url).origin] : [...s.publicOrigins],
          };
        }
        return origins.list;
      },
      admission,
      limits,
      log,
      metrics,
    }),
  });
  return {
    transport,
    hooks,
    source,
    broker,
    directory,
    hub,
    admission,
    joinQueue,
    events,
    fetch,
    metricsText,
  };
}
