// One dback instance for bench/cluster.ts: the real WebSocketServer with the
// mock world, alone or in a Redis cluster. Connection caps are raised (every
// benchmark client comes from 127.0.0.1); the server logs warnings only, the
// cluster logs its role changes (the bench waits for "is the publisher").
//
//   deno run -A bench/cluster_instance.ts [--redis redis://… --namespace b] [--status]
//
// The mock world is quiet (no activity); the load is driven through the
// control path `GET /publish/<count>/<per-second>`, which makes `count`
// library broadcasts (`broadcastMessage`) at that rate, catching up when the
// process was starved, so every configuration delivers the same frames.
// Prints `READY <port>` when listening; stops on SIGTERM.
import { parseArgs } from "node:util";
import { type Broker, type DataSource, MockSource, WebSocketServer } from "../mod.ts";

const { values } = parseArgs({
  options: {
    redis: { type: "string" },
    namespace: { type: "string", default: "bench" },
    status: { type: "boolean", default: false },
  },
});
const quiet = 86_400_000;
const mock = new MockSource({ presenceIntervalMs: quiet, messageIntervalMs: quiet });
let source: DataSource = mock;
let broker: Broker | undefined;
if (values.redis) {
  const { redisCluster } = await import("../src/redis/mod.ts");
  const cluster = redisCluster({
    url: values.redis,
    namespace: values.namespace,
    source: mock,
    leaseMs: 2000,
    // Its own sink: with the server's (warn level) the role changes the bench waits for are not shown.
    logSink: (r) => console.log(`${r.level} ${r.message}`),
  });
  source = cluster.source;
  broker = cluster.broker;
  // --status: the cluster's counters on stderr every second, for diagnosis.
  if (values.status) setInterval(() => console.error(JSON.stringify(cluster.status())), 1000);
}
const server = new WebSocketServer({
  port: 0,
  hostname: "127.0.0.1",
  logLevel: "warn",
  source,
  broker,
  maxConnections: 100_000,
  maxConnectionsPerIp: 100_000,
  ipFramesPerSecond: 1_000_000,
  ipBytesPerSecond: 1_000_000_000,
  callbacks: {
    staticRequest: (path) => {
      const m = path.match(/^\/publish\/(\d+)\/(\d+)$/);
      if (!m) return null;
      publish(Number(m[1]), Number(m[2]));
      return ["text/plain", "ok\n"];
    },
  },
});

function publish(count: number, perSecond: number): void {
  const t0 = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.min(count, Math.floor(((performance.now() - t0) / 1000) * perSecond) + 1);
    for (; sent < due; sent++) {
      server.broadcastMessage({
        server: "232769614004748288",
        uid: "123456789012345001",
        message: `bench-${sent}`,
        channel: "527964146659229701",
      });
    }
    if (sent >= count) clearInterval(timer);
  }, 5);
}
await server.start();
console.log(`READY ${server.port}`);
const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", resolve);
await promise;
await server.stop();
Deno.exit(0);
