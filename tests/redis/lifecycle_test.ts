// The publisher's ownership of its source, in-process against a real
// redis-server: a source left silent while it watches servers is restarted
// by the watchdog; a burst of lease changes ends with the source running and
// watching what viewers watch.
import { redisCluster } from "../../src/redis/mod.ts";
import { MockSource } from "../../src/sources/mock.ts";
import type { DataSource, EventSink } from "../../src/source.ts";
import { RedisServer } from "../_fixtures/_redis.ts";
import { DWORLD, until } from "../_fixtures/helpers.ts";

/** A mock whose activity can be made to stop without anyone telling the cluster, with its calls logged. */
class Wedgeable implements DataSource {
  readonly calls: string[] = [];
  #mock = new MockSource({ presenceIntervalMs: 40, messageIntervalMs: 40 });
  wedged = false;
  startMs: number;
  constructor(startMs = 30) {
    this.startMs = startMs;
  }
  getServerData() {
    return this.#mock.getServerData();
  }
  getUserData(id: string) {
    return this.#mock.getUserData(id);
  }
  async start(sink: EventSink) {
    this.calls.push("start");
    await new Promise((r) => setTimeout(r, this.startMs)); // a start takes a while, like a gateway's
    this.wedged = false;
    const live = (e: unknown, send: () => void) => void (this.wedged || (e && send()));
    this.#mock.start({ emit: (e) => live(e, () => sink.emit(e)) });
  }
  watch(id: string, active: boolean) {
    this.calls.push(`${active ? "watch" : "unwatch"} ${id}`);
    this.#mock.watch(id, active);
  }
  async stop() {
    this.calls.push("stop");
    await new Promise((r) => setTimeout(r, 30));
    this.#mock.stop();
  }
}

async function member(url: string, ns: string, source: DataSource, watchdogMs = 0) {
  const cluster = redisCluster({
    url,
    namespace: ns,
    leaseMs: 600,
    logLevel: "silent",
    watchdogMs,
    source,
  });
  const seen: unknown[] = [];
  // What the server's sink does with a source's event.
  const sink: EventSink = { emit: (e) => void cluster.broker.publish(e, "source") };
  await cluster.broker.open((e) => (seen.push(e), 1));
  await cluster.source.start?.(sink);
  await cluster.source.getUserData(DWORLD);
  cluster.broker.watch(DWORLD, true);
  return { cluster, seen };
}

Deno.test("the watchdog restarts a source that went silent while watching servers", async () => {
  await using redis = await RedisServer.start();
  const source = new Wedgeable();
  const { cluster, seen } = await member(redis.url, "l1", source, 800);
  try {
    await until(() => seen.length >= 10, 5000, "activity");
    source.wedged = true; // the source stops sending; the cluster is not told
    await until(() => cluster.status().watchdogRestarts === 1, 5000, "a watchdog restart");
    const mark = seen.length;
    await until(() => seen.length >= mark + 10, 5000, "activity after the restart");
    const tail = source.calls.slice(-3).join(", ");
    if (tail !== `stop, start, watch ${DWORLD}`) throw new Error(`calls end with ${tail}`);
  } finally {
    await cluster.close();
  }
});

Deno.test("a burst of lease changes ends with the publisher's source started and watching", async () => {
  await using redis = await RedisServer.start();
  const { Redis } = await import("ioredis");
  const raw = new Redis(redis.url);
  // Starting takes longer than a heartbeat period (200 ms), as a gateway's does.
  const sources = [new Wedgeable(300), new Wedgeable(300)];
  const members = [
    await member(redis.url, "l2", sources[0]),
    await member(redis.url, "l2", sources[1]),
  ];
  try {
    await until(() => members.every((m) => m.seen.length >= 5), 5000, "activity");
    // Take the lease away again and again, while sources are still starting.
    for (let n = 0; n < 8; n++) {
      await raw.del("l2:leader");
      await new Promise((r) => setTimeout(r, 150 + (n % 3) * 100));
    }
    await until(
      () => members.filter((m) => m.cluster.status().role === "leader").length === 1,
      5000,
      "one leader",
    );
    const marks = members.map((m) => m.seen.length);
    await until(
      () => members.every((m, n) => m.seen.length >= marks[n] + 10),
      5000,
      "activity everywhere after the burst",
    );
    // What each source was last told agrees with its instance's role.
    members.forEach((m, n) => {
      const calls = sources[n].calls;
      const last = calls.lastIndexOf("start") > calls.lastIndexOf("stop");
      const leader = m.cluster.status().role === "leader";
      if (last !== leader) {
        throw new Error(`instance ${n}: leader ${leader}, calls ${calls.join(", ")}`);
      }
    });
  } finally {
    raw.disconnect();
    for (const m of members) await m.cluster.close();
  }
});
