// A source wrapped by the cluster logs through the server's logger: the server hands the cluster
// its logger at start, and the publisher hands it on to the inner source when it starts it.
import assert from "node:assert/strict";
import { type DataSource, type LogRecord, MockSource, WebSocketServer } from "../../mod.ts";
import { redisCluster } from "../../src/redis/mod.ts";
import { RedisServer } from "../_fixtures/_redis.ts";
import { until } from "../_fixtures/helpers.ts";

Deno.test("cluster: the inner source gets the server's logger (level and sink)", async () => {
  await using redis = await RedisServer.start();
  const mock = new MockSource();
  const inner: DataSource = {
    getServerData: () => mock.getServerData(),
    getUserData: (id) => mock.getUserData(id),
    start: (_sink, context) => {
      context?.log.warn("inner source up");
      context?.log.debug("below the server's level");
    },
  };
  const cluster = redisCluster({
    url: redis.url,
    namespace: "ctx",
    instanceId: "a",
    leaseMs: 600,
    logLevel: "silent",
    source: inner,
  });
  const records: LogRecord[] = [];
  await using server = new WebSocketServer({
    source: cluster.source,
    broker: cluster.broker,
    logLevel: "warn",
    logSink: (r) => records.push(r),
  });
  await server.start({ listen: false });
  await until(() => records.some((r) => r.message === "inner source up"), 5000, "the inner start");
  const mine = records.filter((r) =>
    r.message.includes("source up") || r.message.includes("below")
  );
  assert.deepEqual(mine.map((r) => `${r.level} ${r.message}`), ["warn inner source up"]);
});

Deno.test("cluster: its own lines go through the server's logger when it has no logSink", async () => {
  await using redis = await RedisServer.start();
  const cluster = redisCluster({
    url: redis.url,
    namespace: "ctx2",
    instanceId: "b",
    leaseMs: 600,
    source: new MockSource(),
  });
  const records: LogRecord[] = [];
  const printed: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void printed.push(a.join(" "));
  console.error = (...a: unknown[]) => void printed.push(a.join(" "));
  try {
    await using server = new WebSocketServer({
      source: cluster.source,
      broker: cluster.broker,
      logLevel: "info",
      logSink: (r) => records.push(r),
    });
    await server.start({ listen: false });
    await until(
      () => records.some((r) => r.message === "cluster: instance b is the publisher (epoch 1)"),
      5000,
      "the election line in the server's sink",
    );
  } finally {
    console.log = log;
    console.error = error;
  }
  // Lines from after start() (election, stepping down) went to the server's sink, not the console.
  assert.deepEqual(printed.filter((l) => l.includes("publish")), []);
  assert.ok(records.some((r) => r.message.startsWith("cluster: instance b stops publishing")));
});
