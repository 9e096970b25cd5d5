// One dback instance for bench/cluster.ts: the real WebSocketServer with the
// mock world, alone or in a Redis cluster. Connection caps are raised (every
// benchmark client comes from 127.0.0.1); the server logs warnings only, the
// cluster logs its role changes (the bench waits for "is the publisher").
//
//   deno run -A bench/cluster_instance.ts --interval 25 [--redis redis://… --namespace b]
//
// Prints `READY <port>` when listening; stops on SIGTERM.
import { parseArgs } from "node:util";
import { type Broker, type DataSource, MockSource, WebSocketServer } from "../mod.ts";

const { values } = parseArgs({
  options: {
    interval: { type: "string", default: "25" },
    redis: { type: "string" },
    namespace: { type: "string", default: "bench" },
  },
});
const ms = Number(values.interval);
const mock = new MockSource({ presenceIntervalMs: ms, messageIntervalMs: ms });
let source: DataSource = mock;
let broker: Broker | undefined;
if (values.redis) {
  const { redisCluster } = await import("../src/cluster/mod.ts");
  const cluster = redisCluster({
    url: values.redis,
    namespace: values.namespace,
    source: mock,
    leaseMs: 2000,
  });
  source = cluster.source;
  broker = cluster.broker;
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
});
await server.start();
console.log(`READY ${server.port}`);
const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", resolve);
await promise;
await server.stop();
Deno.exit(0);
