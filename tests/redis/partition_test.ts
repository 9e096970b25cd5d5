// A cluster under partial failures: three instances (two Deno, one Bun),
// each behind its own TCP fault proxy to one redis-server, with short
// leases. The proxy cuts links, black-holes them (holding what was sent and
// delivering it at the heal) and delays them; the tests assert what viewers
// and /metrics see. Bounds are counted in leases and generous: the machine
// running them may be loaded.
import { Redis } from "ioredis";
import { ensureBun } from "../_fixtures/_bun.ts";
import { FaultProxy } from "../_fixtures/fault_proxy.ts";
import {
  cleanup,
  type Instance,
  liveFrames,
  RedisServer,
  startInstances,
} from "../_fixtures/_redis.ts";
import { type Client, joined, until } from "../_fixtures/helpers.ts";
import { eventually } from "../_fixtures/_server_process.ts";
import { stepsAtOnce } from "../_fixtures/steps.ts";

const PRESENCE_MS = 300;
const MESSAGE_MS = 400;

interface Cluster {
  redis: RedisServer;
  proxies: FaultProxy[];
  instances: Instance[];
  viewers: Client[];
  clients: Client[];
  monitor: Redis;
  ns: string;
  dispose(): Promise<void>;
}

/** Three instances (Deno, Bun, Deno), each through its own proxy; one viewer of dworld on each. */
async function cluster(ns: string, leaseMs: number): Promise<Cluster> {
  await ensureBun();
  const redis = await RedisServer.start();
  const proxies: FaultProxy[] = [];
  const instances: Instance[] = [];
  const clients: Client[] = [];
  const monitor = new Redis(redis.url, { lazyConnect: true });
  const dispose = async () => {
    monitor.disconnect();
    await cleanup(clients, instances);
    for (const p of proxies) await p.close();
    await redis[Symbol.asyncDispose]();
  };
  try {
    await monitor.connect();
    const flags = [
      "--redis-lease-ms",
      String(leaseMs),
      "--presence-interval",
      String(PRESENCE_MS),
      "--message-interval",
      String(MESSAGE_MS),
    ];
    for (const runtime of ["deno", "bun", "deno"] as const) {
      const proxy = FaultProxy.start(redis.port);
      proxies.push(proxy);
      instances.push(...await startInstances(1, proxy.url, ns, flags, runtime));
    }
    const viewers: Client[] = [];
    for (const i of instances) {
      const c = await joined(i.url, "dworld");
      clients.push(c);
      viewers.push(c);
    }
    await until(
      () => instances.filter((i) => i.isPublisher).length === 1,
      4 * leaseMs,
      "a publisher",
    );
    await until(() => viewers.every((v) => liveFrames(v).length >= 3), 4 * leaseMs, "activity");
    return { redis, proxies, instances, viewers, clients, monitor, ns, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

async function metrics(i: Instance): Promise<string> {
  return await (await fetch(`${i.url.replace("ws://", "http://")}/metrics`)).text();
}

function metric(text: string, name: string): number {
  const m = text.match(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m"));
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

function chat(c: Client): string[] {
  return c.raw.filter((r) => r.startsWith('{"type":"message"'));
}

async function epoch(c: Cluster): Promise<number> {
  return Number(await c.monitor.get(`${c.ns}:epoch`) ?? 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function everyLinkBlackholed(): Promise<void> {
  const LEASE = 1000;
  const c = await cluster("p1", LEASE);
  try {
    for (let round = 1; round <= 3; round++) {
      for (const p of c.proxies) p.blackhole();
      await sleep(3 * LEASE);
      const counts = c.viewers.map((v) => liveFrames(v).length);
      const marks = c.instances.map((i) => i.lines.length);
      // Watch the lease from outside the partition, from the heal on.
      const holders: { at: number; holder: string }[] = [];
      let watching = true;
      const watch = (async () => {
        while (watching) {
          holders.push({
            at: performance.now(),
            holder: await c.monitor.get(`${c.ns}:leader`) ?? "",
          });
          await sleep(25);
        }
      })();
      const healed = performance.now();
      for (const p of c.proxies) p.heal();
      await until(
        () => c.viewers.every((v, n) => liveFrames(v).length >= counts[n] + 3),
        3 * LEASE,
        `round ${round}: activity on every instance within 3 leases of the heal`,
      ).finally(() => watching = false);
      await watch;
      await sleep(LEASE); // let a lease granted just now show whether its holder publishes
      // Every holder seen after the heal announced itself as the publisher of that epoch.
      for (const h of new Set(holders.map((x) => x.holder).filter((x) => x))) {
        const [id, ep] = h.split(":");
        const owner = c.instances.find((i, n) =>
          i.lines.slice(marks[n]).some((l) =>
            l.includes(`instance ${id} is the publisher (epoch ${ep})`)
          )
        );
        if (!owner) {
          throw new Error(
            `round ${round}: ${h} held the lease but never published:\n` +
              c.instances.map((i, n) => i.lines.slice(marks[n]).join("\n")).join("\n---\n"),
          );
        }
      }
      // No window without a holder longer than a lease once the instances are back.
      let gap = 0, start = -1;
      for (const h of holders) {
        if (h.holder === "") {
          if (start < 0) start = h.at;
          gap = Math.max(gap, h.at - start);
        } else start = -1;
      }
      // The outage was seen: every instance declared Redis down and came back.
      c.instances.forEach((i, n) => {
        if (!i.lines.slice(marks[n]).some((l) => /redis up/.test(l))) {
          throw new Error(`round ${round}: instance ${n} never logged its reconnection`);
        }
      });
      if (gap > LEASE) {
        throw new Error(
          `round ${round}: ${Math.round(gap)} ms without a lease holder after the heal`,
        );
      }
      console.log(
        `round ${round}: activity back everywhere after ${
          Math.round(performance.now() - healed)
        } ms, ` +
          `longest holder-less window ${Math.round(gap)} ms`,
      );
    }
    if (c.instances.filter((i) => i.isPublisher).length !== 1) throw new Error("not one publisher");
  } finally {
    await c.dispose();
  }
}

async function publisherSlow700(): Promise<void> {
  const LEASE = 2000;
  const c = await cluster("p2", LEASE);
  try {
    const pub = c.instances.findIndex((i) => i.isPublisher);
    const edge = c.viewers[(pub + 1) % 3];
    const before = await epoch(c);
    const count = liveFrames(edge).length;
    const marks = c.instances.map((i) => i.lines.length);
    c.proxies[pub].delay(700, 700);
    await sleep(20_000);
    c.proxies[pub].heal();
    const got = liveFrames(edge).length - count;
    const nominal = 20_000 / PRESENCE_MS + 20_000 / MESSAGE_MS;
    // Terms begun (Redis's epoch counter) and terms ended (a flapping publisher re-takes its own epoch).
    const stops = c.instances.reduce(
      (n, i, k) => n + i.lines.slice(marks[k]).filter((l) => /stops publishing/.test(l)).length,
      0,
    );
    const changes = Math.max((await epoch(c)) - before, stops);
    console.log(`${got} of ~${Math.round(nominal)} events delivered, ${changes} lease change(s)`);
    if (got < 0.6 * nominal) {
      throw new Error(`only ${got} of ~${Math.round(nominal)} events delivered`);
    }
    if (changes > 2) throw new Error(`${changes} lease changes`);
  } finally {
    await c.dispose();
  }
}

async function publisherSlow300(): Promise<void> {
  const LEASE = 2000;
  const c = await cluster("p2b", LEASE);
  try {
    const pub = c.instances.findIndex((i) => i.isPublisher);
    const edge = c.viewers[(pub + 1) % 3];
    const before = await epoch(c);
    const marks = c.instances.map((i) => i.lines.length);
    const count = liveFrames(edge).length;
    c.proxies[pub].delay(300, 300);
    await sleep(10_000);
    c.proxies[pub].heal();
    const got = liveFrames(edge).length - count;
    const nominal = 10_000 / PRESENCE_MS + 10_000 / MESSAGE_MS;
    const stops = c.instances.some((i, k) =>
      i.lines.slice(marks[k]).some((l) => /stops publishing|redis down/.test(l))
    );
    console.log(`${got} of ~${Math.round(nominal)} events delivered`);
    if ((await epoch(c)) !== before || stops) {
      throw new Error(
        `the lease moved or redis was declared down:\n${
          c.instances[pub].lines.slice(marks[pub]).join("\n")
        }`,
      );
    }
    if (got < 0.8 * nominal) {
      throw new Error(`only ${got} of ~${Math.round(nominal)} events delivered`);
    }
  } finally {
    await c.dispose();
  }
}

async function edgeBlackholed(): Promise<void> {
  const LEASE = 1000;
  const c = await cluster("p3", LEASE);
  try {
    const pub = c.instances.findIndex((i) => i.isPublisher);
    const e = (pub + 1) % 3;
    const edge = c.instances[e];
    c.proxies[e].blackhole();
    const cut = performance.now();
    let down = false;
    while (performance.now() - cut < 2 * LEASE) {
      if (metric(await metrics(edge), "dback_redis_up") === 0) {
        down = true;
        break;
      }
      await sleep(50);
    }
    if (!down) throw new Error("dback_redis_up still 1 two leases into the black-hole");
    for (const at of [3000, 10_000]) {
      await sleep(Math.max(0, at - (performance.now() - cut)));
      // A new viewer gets the server list and its join from the local copies.
      const t0 = performance.now();
      const v = await joined(edge.url);
      c.clients.push(v);
      const j = await v.join("dworld");
      if (j.type !== "server-join") throw new Error(`join during the outage: ${JSON.stringify(j)}`);
      if (Object.keys(j.data.users).length === 0) {
        throw new Error("empty join map during the outage");
      }
      const took = performance.now() - t0;
      if (took > 5000) throw new Error(`server-list and join took ${Math.round(took)} ms`);
      // The lag metric: at least the real lag (time since the last event got through) less 1 s.
      const lag = metric(await metrics(edge), "dback_cluster_event_lag_seconds");
      const real = (performance.now() - cut) / 1000;
      if (lag < real - 1) {
        throw new Error(
          `lag metric ${lag} s while ${real.toFixed(1)} s behind:\n${await metrics(edge)}\n${
            edge.lines.join("\n")
          }`,
        );
      }
    }
    await sleep(Math.max(0, 20_000 - (performance.now() - cut)));
    const count = liveFrames(c.viewers[e]).length;
    c.proxies[e].heal();
    await until(
      () => liveFrames(c.viewers[e]).length >= count + 3,
      4 * LEASE,
      "activity after the heal",
    );
    const up = await eventually(
      async () => metric(await metrics(edge), "dback_redis_up") === 1,
      4 * LEASE,
    );
    if (!up) throw new Error("dback_redis_up not back to 1 within 4 leases of the heal");
  } finally {
    await c.dispose();
  }
}

async function edgeCut(): Promise<void> {
  const LEASE = 1000;
  const c = await cluster("p5", LEASE);
  try {
    const pub = c.instances.findIndex((i) => i.isPublisher);
    const e = (pub + 1) % 3;
    const ref = c.viewers[(pub + 2) % 3];
    c.proxies[e].cut();
    await sleep(10_000);
    c.proxies[e].heal();
    const want = chat(ref).length;
    await until(() => chat(c.viewers[e]).length >= want, 4 * LEASE, "the chat sent during the cut");
    const mine = chat(c.viewers[e]).slice(0, want).join("\n");
    const theirs = chat(ref).slice(0, want).join("\n");
    if (mine !== theirs) {
      throw new Error("the cut edge's chat differs from the others' (lost or reordered)");
    }
    const m = await metrics(c.instances[e]);
    if (metric(m, "dback_cluster_events_lost_total") !== 0) throw new Error("events counted lost");
    if (metric(m, "dback_cluster_caught_up_total") < 1) throw new Error("no catch-up counted");
    console.log(`${want} chat messages, none lost`);
  } finally {
    await c.dispose();
  }
}

// Most of each case is waiting (a fault held for seconds, leases running out), and each has a
// Redis, proxies and instances of its own, so they run at once: concurrent steps of one test.
Deno.test("partitions: every case at once, each on a cluster of its own", async (t) => {
  const cases: Array<[string, () => Promise<void>]> = [
    [
      "every link black-holed for 3 leases, 3 times: each heal brings activity back everywhere within 3 leases, and the lease never sits with an instance that does not publish",
      everyLinkBlackholed,
    ],
    [
      "the publisher's link 700 ms slower each way for 20 s (2 s lease): most events still delivered, at most 2 lease changes",
      publisherSlow700,
    ],
    [
      "the publisher's link 300 ms slower each way (2 s lease, round trip under half a lease): no lease change, events flow",
      publisherSlow300,
    ],
    [
      "an edge's link black-holed for 20 s: /metrics says redis down within 2 leases, lag grows with the outage, and new viewers there are served",
      edgeBlackholed,
    ],
    [
      "an edge's link cut for 10 s: after the heal its viewers get every chat message, late and in order",
      edgeCut,
    ],
  ];
  await stepsAtOnce(t, cases.map(([name, fn]) => ({ name, fn })));
});
