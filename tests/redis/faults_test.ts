// Faults of a cluster over a real redis-server, with real processes: the
// publisher killed, the publisher paused past its lease, Redis restarted.
import { Redis } from "ioredis";
import {
  assertOneStream,
  type Instance,
  libraryInstance,
  liveFrames as stream,
  RedisServer,
  startInstances,
  viewerMap,
} from "../_fixtures/_redis.ts";
import { type Client, DWORLD, joined, until } from "../_fixtures/helpers.ts";

const LEASE_MS = 1000;
const LEASE = ["--redis-lease-ms", String(LEASE_MS)];

async function publisher(instances: Instance[], ms = 5000): Promise<Instance> {
  await until(() => instances.filter((i) => i.isPublisher).length === 1, ms, "one publisher");
  return instances.find((i) => i.isPublisher)!;
}

/** Join `dworld` on `url` until the map equals `expected()` (presence keeps changing it). */
async function consistentJoin(
  url: string,
  expected: () => string,
  clients: Client[],
): Promise<void> {
  let last = "";
  for (let attempt = 0; attempt < 10; attempt++) {
    const c = await joined(url);
    clients.push(c);
    const j = await c.join("dworld");
    last = JSON.stringify(sorted(j.data.users));
    if (last === expected()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`join map ${last} differs from the viewer's ${expected()}`);
}

function sorted(users: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(users).sort(([a], [b]) => a.localeCompare(b)));
}

Deno.test("kill -9 the publisher: a survivor takes over within 2x lease; viewers keep receiving", async () => {
  await using redis = await RedisServer.start();
  const instances = await startInstances(3, redis.url, "f2", [
    ...LEASE,
    "--presence-interval",
    "400",
    "--message-interval",
    "300",
  ]);
  const clients: Client[] = [];
  try {
    const viewers = new Map<Instance, Client>();
    for (const i of instances) {
      const c = await joined(i.url, "dworld");
      clients.push(c);
      viewers.set(i, c);
    }
    const old = await publisher(instances);
    const survivors = instances.filter((i) => i !== old);
    const marks = survivors.map((i) => i.lines.length);
    old.signal("SIGKILL");
    const killed = performance.now();
    await until(
      () =>
        survivors.some((s, n) => s.lines.slice(marks[n]).some((l) => /is the publisher/.test(l))),
      // The lease runs out after LEASE_MS and a survivor renews every third of it (about 1.05 s
      // measured); the deadline leaves room for a loaded machine scheduling three processes.
      5 * LEASE_MS,
      `a survivor to take over within ${5 * LEASE_MS} ms`,
    );
    const took = performance.now() - killed;
    const counts = survivors.map((s) => stream(viewers.get(s)!).length);
    await until(
      () => survivors.every((s, n) => stream(viewers.get(s)!).length >= counts[n] + 5),
      5000,
      "survivors' viewers to keep receiving",
    );
    for (const s of survivors) {
      if (viewers.get(s)!.ws.readyState !== WebSocket.OPEN) throw new Error("a viewer was dropped");
    }
    // A viewer reconnecting to a survivor sees what the survivors' viewers see.
    for (const s of survivors) {
      await consistentJoin(
        s.url,
        () => JSON.stringify(sorted(viewerMap(viewers.get(s)!))),
        clients,
      );
    }
    console.log(`takeover after ${Math.round(took)} ms (lease ${LEASE_MS} ms)`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const i of instances) await i.stop();
  }
});

Deno.test("SIGSTOP the publisher past its lease, SIGCONT: nothing of the old epoch reaches anyone", async () => {
  await using redis = await RedisServer.start();
  const instances = await startInstances(3, redis.url, "f3", [
    ...LEASE,
    "--presence-interval",
    "100",
    "--message-interval",
    "150",
  ]);
  const clients: Client[] = [];
  const monitor = new Redis(redis.url, { lazyConnect: true });
  const seen: { s: number; e: number; k: string }[] = [];
  try {
    await monitor.connect();
    monitor.on("message", (_ch: string, m: string) => seen.push(JSON.parse(m)));
    await monitor.subscribe(`f3:ev:${DWORLD}`);
    for (const i of instances) clients.push(await joined(i.url, "dworld"));
    const old = await publisher(instances);
    const others = instances.filter((i) => i !== old);
    const marks = others.map((i) => i.lines.length);
    old.signal("SIGSTOP");
    await until(
      () => others.some((s, n) => s.lines.slice(marks[n]).some((l) => /is the publisher/.test(l))),
      4 * LEASE_MS,
      "a new publisher",
    );
    await new Promise((r) => setTimeout(r, LEASE_MS));
    const mark = old.lines.length;
    old.signal("SIGCONT");
    await old.waitFor(/stops publishing/, 5000, mark);
    await new Promise((r) => setTimeout(r, 1500));
    // On the wire: sequence numbers without gap or repeat, epochs never going back.
    let newest = 0;
    for (let n = 0; n < seen.length; n++) {
      if (n > 0 && seen[n].s !== seen[n - 1].s + 1) {
        throw new Error(`sequence ${seen[n - 1].s} then ${seen[n].s}`);
      }
      if (seen[n].k !== "src") continue;
      if (seen[n].e < newest) throw new Error(`epoch ${seen[n].e} published after ${newest}`);
      newest = seen[n].e;
    }
    if (newest < 2) throw new Error(`no new epoch seen (newest ${newest})`);
    // At the viewers, the paused instance's included: one and the same stream.
    assertOneStream(clients, 10);
    if (instances.filter((i) => i.isPublisher).length !== 1) throw new Error("not one publisher");
  } finally {
    monitor.disconnect();
    await Promise.all(clients.map((c) => c.close()));
    for (const i of instances) await i.stop();
  }
});

Deno.test("redis-server stopped and restarted: no crash, viewers stay, activity and snapshots come back", async () => {
  await using redis = await RedisServer.start();
  const subs = await startInstances(2, redis.url, "f4", [
    ...LEASE,
    "--presence-interval",
    "200",
    "--message-interval",
    "300",
  ]);
  const a = await libraryInstance(redis.url, "f4");
  const clients: Client[] = [];
  try {
    for (const u of [a.url, ...subs.map((i) => i.url)]) clients.push(await joined(u, "dworld"));
    await publisher(subs);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    const metrics = async () =>
      await (await fetch(`${subs[0].url.replace("ws://", "http://")}/metrics`)).text();
    if (!/^dback_redis_up 0$/m.test(await metrics())) throw new Error("/metrics: redis not down");
    // A change made while Redis is away (a library broadcast; queued, sent once on return).
    a.server.broadcastPresence({
      server: DWORLD,
      uid: "999999999999999001",
      status: "dnd",
      username: "made-during-outage",
      roleColor: "#123456",
    });
    const before = clients.map((c) => stream(c).length);
    await redis.restart();
    const outage = (c: Client) => c.raw.filter((r) => r.includes("made-during-outage")).length;
    await until(
      () => clients.every((c) => outage(c) === 1),
      10_000,
      "the outage change everywhere",
    );
    await until(
      () => clients.every((c, n) => stream(c).length >= before[n] + 6),
      10_000,
      "activity to resume",
    );
    for (const c of clients) {
      if (c.ws.readyState !== WebSocket.OPEN) throw new Error("viewer dropped");
    }
    for (const i of subs) {
      if (await i.exited(0)) throw new Error(`instance crashed:\n${i.lines.join("\n")}`);
    }
    const fresh = await joined(subs[1].url);
    clients.push(fresh);
    const j = await fresh.join("dworld");
    const u = j.data.users["999999999999999001"];
    if (u?.status !== "dnd") {
      throw new Error(`the snapshot lacks the outage change: ${JSON.stringify(j.data.users)}`);
    }
    await publisher(subs);
    if (!/^dback_redis_up 1$/m.test(await metrics())) throw new Error("/metrics: redis not up");
    // Redis lost its epoch counter with the rest: nothing may be counted as a stale-epoch drop.
    for (const i of subs) {
      const m = await (await fetch(`${i.url.replace("ws://", "http://")}/metrics`)).text();
      if (!/^dback_cluster_dropped_total\{reason="stale_epoch"\} 0$/m.test(m)) {
        throw new Error(`a false stale-epoch drop after the restart:\n${m}`);
      }
    }
    if (!subs.some((i) => i.lines.some((l) => /redis down/.test(l)))) {
      throw new Error("outage not logged");
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await a.server.stop();
    for (const i of subs) await i.stop();
  }
});

Deno.test("redis unreachable at start: the instance serves anyway, and joins the cluster when it appears", async () => {
  await using redis = await RedisServer.reserve(); // nothing listens on its port yet
  const [inst] = await startInstances(1, redis.url, "f5", [
    ...LEASE,
    "--presence-interval",
    "100",
    "--message-interval",
    "150",
  ]);
  const clients: Client[] = [];
  try {
    await inst.waitFor(/redis at .* unreachable; serving and retrying/);
    const c = await joined(inst.url, "dworld"); // from the source's own view meanwhile
    clients.push(c);
    await redis.restart();
    await inst.waitFor(/is the publisher/, 10_000);
    await until(() => stream(c).length >= 5, 5000, "activity once redis is there");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await inst.stop();
  }
});
