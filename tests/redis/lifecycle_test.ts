// The publisher's ownership of its source, in-process against a real
// redis-server: a source left silent while it watches servers is restarted
// by the watchdog; a burst of lease changes ends with the source running and
// watching what viewers watch; events made during a short cut of the
// publisher's link are sent late, not lost.
import { redisCluster } from "../../src/redis/mod.ts";
import { MockSource } from "../../src/sources/mock.ts";
import type { DataSource, EventSink } from "../../src/source.ts";
import { FaultProxy } from "../_fixtures/fault_proxy.ts";
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

/** Says "n1", "n2", … every 20 ms in one server while it watches it. */
class Counter implements DataSource {
  n = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sink: EventSink | undefined;
  getServerData() {
    return new MockSource().getServerData();
  }
  getUserData(id: string) {
    return new MockSource().getUserData(id);
  }
  start(sink: EventSink) {
    this.#sink = sink;
  }
  watch(id: string, active: boolean) {
    clearInterval(this.#timer);
    if (!active) return;
    this.#timer = setInterval(() => {
      this.#sink?.emit({
        type: "message",
        event: { server: id, uid: "123456789012345001", message: `n${++this.n}`, channel: "1" },
      });
    }, 20);
  }
  stop() {
    clearInterval(this.#timer);
    this.#sink = undefined;
  }
}

Deno.test("the publisher's link cut for a moment: its events made meanwhile are sent on reconnect, none lost, in order", async () => {
  await using redis = await RedisServer.start();
  await using proxy = FaultProxy.start(redis.port);
  const source = new Counter();
  const pub = redisCluster({
    url: proxy.url,
    namespace: "l3",
    leaseMs: 2000,
    logLevel: "silent",
    source,
  });
  const edge = redisCluster({
    url: redis.url,
    namespace: "l3",
    leaseMs: 2000,
    logLevel: "silent",
    candidate: false,
    source: new MockSource(),
  });
  const said: string[] = [];
  const sinkOf = (c: typeof pub): EventSink => ({
    emit: (e) => void c.broker.publish(e, "source"),
  });
  try {
    await pub.broker.open(() => 1);
    await edge.broker.open((e) => {
      if (e.type === "message") said.push(e.event.message);
      return 1;
    });
    await pub.source.start?.(sinkOf(pub));
    await edge.source.start?.(sinkOf(edge));
    await until(() => pub.status().role === "leader", 3000, "a publisher");
    await edge.source.getUserData(DWORLD);
    edge.broker.watch(DWORLD, true);
    await until(() => said.length >= 5, 5000, "chat at the edge");
    proxy.cut();
    await until(() => !pub.status().redisUp, 2000, "the publisher to see redis down");
    const during = source.n;
    await new Promise((r) => setTimeout(r, 300));
    proxy.heal();
    const after = source.n;
    if (after - during < 5) throw new Error(`only ${after - during} events made during the cut`);
    await until(() => said.includes(`n${after}`), 5000, "the events made during the cut");
    const first = Number(said[0].slice(1));
    const want = Array.from({ length: after - first + 1 }, (_, i) => `n${first + i}`).join(",");
    if (said.slice(0, after - first + 1).join(",") !== want) {
      throw new Error(`chat at the edge: ${said.join(",")}`);
    }
    if (pub.status().role !== "leader") throw new Error("the lease moved during a short cut");
  } finally {
    await pub.close();
    await edge.close();
  }
});
