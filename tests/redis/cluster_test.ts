// The cluster module in-process against a real redis-server, through the
// Broker and DataSource seams exactly as the server drives them.
import type { ServerEvent } from "../../src/events.ts";
import { type RedisCluster, redisCluster } from "../../src/redis/mod.ts";
import { MockSource } from "../../src/sources/mock.ts";
import { applyPresence, diffUsers, parseEnvelope } from "../../src/redis/_room.ts";
import type { DataSource, EventSink } from "../../src/source.ts";
import type { ServerMap, UserEntry } from "../../src/protocol.ts";
import { RedisServer } from "../_fixtures/_redis.ts";
import { until } from "../_fixtures/helpers.ts";

const DWORLD = "232769614004748288";

/** What the server does with a source and a broker, minus the sockets. */
class Node {
  readonly delivered: ServerEvent[] = [];
  readonly cluster: RedisCluster;
  constructor(cluster: RedisCluster) {
    this.cluster = cluster;
  }
  // What the server's sink does: check nothing here, publish as the source.
  sink: EventSink = { emit: (e) => void this.cluster.broker.publish(e, "source") };
  async start() {
    await this.cluster.broker.open((e) => {
      this.delivered.push(e);
      return 1;
    });
    await this.cluster.source.start?.(this.sink);
  }
  async join(serverId: string) {
    const users = await this.cluster.source.getUserData(serverId);
    this.cluster.source.watch?.(serverId, true);
    this.cluster.broker.watch(serverId, true);
    return users;
  }
  async stop() {
    await this.cluster.source.stop?.();
    await this.cluster.broker.close();
  }
}

function node(url: string, ns: string, id: string, intervalMs = 60): Node {
  return new Node(redisCluster({
    url,
    namespace: ns,
    instanceId: id,
    leaseMs: 600,
    logLevel: "silent",
    source: new MockSource({ presenceIntervalMs: intervalMs, messageIntervalMs: intervalMs }),
  }));
}

Deno.test("two instances: one publisher, the same event sequence, library broadcasts once", async () => {
  await using redis = await RedisServer.start();
  const a = node(redis.url, "t1", "a");
  const b = node(redis.url, "t1", "b");
  try {
    await a.start();
    await b.start();
    await until(
      () => a.cluster.status().role === "leader" || b.cluster.status().role === "leader",
      3000,
      "a leader",
    );
    const ua = await a.join(DWORLD);
    const ub = await b.join(DWORLD);
    if (JSON.stringify(ua) !== JSON.stringify(ub)) throw new Error("different user maps at join");
    await until(() => a.delivered.length >= 10 && b.delivered.length >= 10, 5000, "events");
    const leaders = [a, b].filter((n) => n.cluster.status().role === "leader");
    if (leaders.length !== 1) throw new Error(`${leaders.length} leaders`);
    const follower = leaders[0] === a ? b : a;
    follower.cluster.broker.publish({
      type: "message",
      event: { server: DWORLD, uid: "123456789012345001", message: "from-library", channel: "1" },
    }, "library");
    const lib = (n: Node) =>
      n.delivered.filter((e) => e.type === "message" && e.event.message === "from-library").length;
    await until(() => lib(a) === 1 && lib(b) === 1, 3000, "library message on both");
    await new Promise((r) => setTimeout(r, 200));
    if (lib(a) !== 1 || lib(b) !== 1) {
      throw new Error(`library message counts ${lib(a)}, ${lib(b)}`);
    }
    // The later joiner saw a suffix of the earlier one's stream: compare the common tail.
    const sa = a.delivered.map((e) => JSON.stringify(e));
    const sb = b.delivered.map((e) => JSON.stringify(e));
    const n = Math.min(sa.length, sb.length) - 2;
    const ta = sa.slice(sa.length - n - 2, sa.length - 2).join("\n");
    const tb = sb.slice(sb.length - n - 2, sb.length - 2).join("\n");
    if (n < 8 || !sa.join("\n").includes(sb.slice(2, -2).join("\n"))) {
      throw new Error(`streams differ:\n${ta}\n---\n${tb}`);
    }
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("stopping the publisher hands the lease over at once", async () => {
  await using redis = await RedisServer.start();
  const a = node(redis.url, "t2", "a");
  const b = node(redis.url, "t2", "b");
  try {
    await a.start();
    await until(() => a.cluster.status().role === "leader", 3000, "a leads");
    await b.start();
    await b.join(DWORLD);
    await a.stop();
    await until(() => b.cluster.status().role === "leader", 2000, "b takes over");
    const epoch = b.cluster.status().epoch;
    if (epoch < 2) throw new Error(`epoch ${epoch} did not rise`);
    const before = b.delivered.length;
    await until(() => b.delivered.length > before + 3, 3000, "b's own events");
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("redis down: no throw, library broadcasts queue, copies resync when back", async () => {
  await using redis = await RedisServer.start();
  const a = node(redis.url, "t3", "a", 100_000);
  try {
    await a.start();
    await a.join(DWORLD);
    await until(() => a.cluster.status().role === "leader", 3000, "leader");
    await redis.stop();
    await until(() => !a.cluster.status().redisUp, 3000, "redis seen down");
    await until(() => a.cluster.status().role === "follower", 3000, "the publisher to step down");
    a.cluster.broker.publish({
      type: "presence",
      event: { server: DWORLD, uid: "123456789012345004", status: "dnd" },
    }, "library");
    await redis.restart();
    await until(() => a.cluster.status().redisUp, 8000, "redis seen up");
    await until(
      () => a.delivered.some((e) => e.type === "presence" && e.event.status === "dnd"),
      5000,
      "queued presence delivered",
    );
    await until(() => a.cluster.status().role === "leader", 5000, "leader again");
    const users = await a.cluster.source.getUserData(DWORLD);
    if (users["123456789012345004"]?.status !== "dnd") {
      throw new Error(`presence made during the outage is missing: ${JSON.stringify(users)}`);
    }
  } finally {
    await a.stop();
  }
});

Deno.test("envelopes are validated and user maps patch and diff as the script does", () => {
  if (parseEnvelope("nope").ok) throw new Error("accepted non-JSON");
  if (parseEnvelope(JSON.stringify({ s: 1, e: 1, k: "src" })).ok) {
    throw new Error("accepted no event");
  }
  const ok = parseEnvelope(JSON.stringify({
    s: 2,
    e: 1,
    k: "lib",
    ev: { type: "message", event: { server: "1", uid: "2", message: "m", channel: "3" } },
  }));
  if (!ok.ok) throw new Error(ok.reason);
  const users = new Map<string, UserEntry>([["1", { uid: "1", username: "a", status: "online" }]]);
  applyPresence(users, { server: "9", uid: "2", status: "idle" }); // unknown, unnamed: ignored
  if (users.has("2")) throw new Error("added a user without a name");
  applyPresence(users, { server: "9", uid: "2", status: "idle", username: "b" });
  applyPresence(users, { server: "9", uid: "1", status: "dnd", delete: true });
  const diff = diffUsers(
    "9",
    new Map([["1", { uid: "1", username: "a", status: "online" }]]),
    users,
  );
  const text = JSON.stringify(diff);
  if (diff.length !== 2 || !text.includes('"delete":true') || !text.includes('"username":"b"')) {
    throw new Error(`diff: ${text}`);
  }
});

Deno.test("a receiver drops source events of an epoch older than the newest it has seen", async () => {
  await using redis = await RedisServer.start();
  const a = node(redis.url, "t5", "a", 100_000);
  const { Redis } = await import("ioredis");
  const raw = new Redis(redis.url);
  try {
    await a.start();
    await until(() => a.cluster.status().role === "leader", 3000, "leader");
    await a.join(DWORLD);
    await until(() => a.cluster.status().epoch >= 1, 1000, "an epoch");
    const event = {
      type: "message",
      event: { server: DWORLD, uid: "123456789012345001", message: "zombie", channel: "1" },
    };
    // Straight onto the channel, as a fenced-off leader whose script check was bypassed.
    await raw.publish(
      `t5:ev:${DWORLD}`,
      JSON.stringify({ s: 1_000_000, e: 0, k: "src", ev: event }),
    );
    await until(() => a.cluster.status().dropped.staleEpoch === 1, 2000, "the drop counted");
    if (a.delivered.some((e) => e.type === "message" && e.event.message === "zombie")) {
      throw new Error("a stale-epoch event was delivered");
    }
    // And the last viewer leaving unsubscribes: nothing more is delivered.
    a.cluster.broker.watch(DWORLD, false);
    if (a.cluster.status().rooms !== 0) throw new Error("room kept after the last viewer left");
  } finally {
    raw.disconnect();
    await a.stop();
  }
});

Deno.test("library broadcasts queued while redis is down are bounded: the oldest are dropped", async () => {
  await using redis = await RedisServer.start();
  const a = new Node(redisCluster({
    url: redis.url,
    namespace: "t6",
    instanceId: "a",
    leaseMs: 600,
    logLevel: "silent",
    libraryQueue: 2,
    source: new MockSource({ presenceIntervalMs: 100_000, messageIntervalMs: 100_000 }),
  }));
  try {
    await a.start();
    await a.join(DWORLD);
    await redis.stop();
    await until(() => !a.cluster.status().redisUp, 3000, "redis seen down");
    for (const n of [1, 2, 3]) {
      a.cluster.broker.publish({
        type: "message",
        event: { server: DWORLD, uid: "123456789012345001", message: `queued-${n}`, channel: "1" },
      }, "library");
    }
    if (a.cluster.status().dropped.library !== 1) throw new Error("the oldest was not dropped");
    await redis.restart();
    const got = () =>
      a.delivered.filter((e) => e.type === "message").map((e) =>
        e.type === "message" ? e.event.message : ""
      );
    await until(() => got().length === 2, 8000, "the two kept broadcasts");
    await new Promise((r) => setTimeout(r, 300));
    if (got().join() !== "queued-2,queued-3") throw new Error(`delivered ${got()}`);
  } finally {
    await a.stop();
  }
});

Deno.test("a replaced snapshot reaches viewers as presence frames for what changed", async () => {
  await using redis = await RedisServer.start();
  const a = node(redis.url, "t7", "a", 100_000);
  const { Redis } = await import("ioredis");
  const raw = new Redis(redis.url);
  try {
    await a.start();
    await until(() => a.cluster.status().role === "leader", 3000, "leader");
    await a.join(DWORLD);
    const epoch = a.cluster.status().epoch;
    // Another writer replaced the map: one user changed, one removed, one added.
    await raw.hset(
      `t7:users:${DWORLD}`,
      "123456789012345001",
      JSON.stringify({
        uid: "123456789012345001",
        username: "vegeta897",
        status: "offline",
        roleColor: "#ff6b6b",
      }),
    );
    await raw.hdel(`t7:users:${DWORLD}`, "123456789012345002");
    await raw.hset(
      `t7:users:${DWORLD}`,
      "555",
      JSON.stringify({ uid: "555", username: "new", status: "idle" }),
    );
    const seq = await raw.incr(`t7:seq:${DWORLD}`);
    await raw.publish(`t7:ev:${DWORLD}`, JSON.stringify({ s: seq, e: epoch, k: "snap" }));
    const presence = () => a.delivered.filter((e) => e.type === "presence").map((e) => e.event);
    await until(() => presence().length === 3, 3000, "three presence frames");
    const text = JSON.stringify(presence());
    for (
      const want of [
        '"uid":"123456789012345001","status":"offline"',
        '"uid":"123456789012345002"',
        '"uid":"555"',
      ]
    ) {
      if (!text.includes(want)) throw new Error(`missing ${want} in ${text}`);
    }
    if (!text.includes('"delete":true')) throw new Error(`no removal in ${text}`);
  } finally {
    raw.disconnect();
    await a.stop();
  }
});

Deno.test("a server gone at the source reaches every instance, and its snapshot is deleted", async () => {
  await using redis = await RedisServer.start();
  let sink: EventSink | undefined;
  let gone = false;
  const source: DataSource = {
    getServerData: (): ServerMap =>
      gone ? {} : { [DWORLD]: { id: "dworld", name: "D-World", default: true } },
    getUserData: () => ({ "7": { uid: "7", username: "ada", status: "online" as const } }),
    start: (s: EventSink) => void (sink = s),
    stop: () => void (sink = undefined),
  };
  const make = (id: string) =>
    new Node(redisCluster({
      url: redis.url,
      namespace: "t8",
      instanceId: id,
      leaseMs: 600,
      logLevel: "silent",
      candidate: id === "a",
      source,
    }));
  const a = make("a"), b = make("b");
  const { Redis } = await import("ioredis");
  const raw = new Redis(redis.url);
  try {
    await a.start();
    await b.start();
    await until(() => a.cluster.status().role === "leader" && sink !== undefined, 3000, "a leads");
    await a.join(DWORLD);
    await b.join(DWORLD);
    gone = true;
    sink!.emit({ type: "server-gone", event: { server: DWORLD } });
    const saw = (n: Node) => n.delivered.some((e) => e.type === "server-gone");
    await until(() => saw(a) && saw(b), 3000, "server-gone on both");
    if (await raw.exists(`t8:users:${DWORLD}`, `t8:snap:${DWORLD}`)) {
      throw new Error("the snapshot of a gone server is still in redis");
    }
    const list = await b.cluster.source.getServerData();
    if (DWORLD in list) throw new Error("the gone server is still listed");
  } finally {
    raw.disconnect();
    await a.stop();
    await b.stop();
  }
});

Deno.test("a source given as a function is made afresh for each term as publisher", async () => {
  await using redis = await RedisServer.start();
  const made: MockSource[] = [];
  const starts: number[] = [];
  const factory = () => {
    const m = new MockSource({ presenceIntervalMs: 50, messageIntervalMs: 50 });
    const n = made.push(m) - 1;
    const start = m.start.bind(m);
    let started = false;
    // Like the Discord gateway source: one start per object.
    m.start = (sink) => {
      if (started) throw new Error("started twice");
      started = true;
      starts.push(n);
      start(sink);
    };
    return m;
  };
  const a = new Node(redisCluster({
    url: redis.url,
    namespace: "t9",
    instanceId: "a",
    leaseMs: 600,
    logLevel: "silent",
    source: factory,
  }));
  const { Redis } = await import("ioredis");
  const raw = new Redis(redis.url);
  try {
    await a.start();
    await a.join(DWORLD);
    await until(() => starts.length === 1, 3000, "the first term");
    await raw.del("t9:leader"); // the lease is lost (as if it had expired)
    await until(() => starts.length === 2, 3000, "a second term");
    if (starts.join() !== "0,1" || made.length !== 2) throw new Error(`starts ${starts}`);
    const before = a.delivered.length;
    await until(() => a.delivered.length > before + 3, 3000, "events from the new source");
  } finally {
    raw.disconnect();
    await a.stop();
  }
});

Deno.test("a chat message whose id was published already is dropped in Redis; the id never reaches a receiver", async () => {
  await using redis = await RedisServer.start();
  const a = node(redis.url, "tdup", "a", 86_400_000);
  try {
    await a.start();
    await a.join(DWORLD);
    const say = (message: string, id?: string) =>
      a.cluster.broker.publish({
        type: "message",
        event: { server: DWORLD, uid: "123456789012345001", message, channel: "1", id },
      }, "library");
    say("one", "m1");
    say("one again", "m1"); // a replay: same id
    say("two", "m2");
    say("no id"); // without an id nothing is checked
    say("no id");
    const said = () =>
      a.delivered.flatMap((e) => e.type === "message" ? [JSON.stringify(e.event)] : []);
    await until(() => said().length >= 4, 3000, "the messages");
    await new Promise((r) => setTimeout(r, 200));
    const want = ["one", "two", "no id", "no id"].map((message) =>
      JSON.stringify({ server: DWORLD, uid: "123456789012345001", message, channel: "1" })
    );
    if (JSON.stringify(said()) !== JSON.stringify(want)) throw new Error(said().join("\n"));
    const s = a.cluster.status();
    if (s.dropped.duplicate !== 1 || s.published.library !== 4) {
      throw new Error(JSON.stringify(s));
    }
  } finally {
    await a.stop();
  }
});
