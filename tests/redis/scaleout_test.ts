// Several dback instances over one real redis-server: one publisher, the
// same stream everywhere, library broadcasts once, a join storm.
import {
  assertOneStream,
  libraryInstance,
  RedisServer,
  startInstances,
} from "../_fixtures/_redis.ts";
import { type Client, DWORLD, type Frame, joined, until } from "../_fixtures/helpers.ts";

const LEASE = ["--redis-lease-ms", "1000"];

Deno.test("three instances: one publisher, the same sequence on every viewer, the same map on join", async () => {
  await using redis = await RedisServer.start();
  const instances = await startInstances(3, redis.url, "s1", [
    ...LEASE,
    "--presence-interval",
    "150",
    "--message-interval",
    "200",
  ]);
  const clients: Client[] = [];
  try {
    for (const i of instances) clients.push(await joined(i.url, "dworld"));
    await new Promise((r) => setTimeout(r, 6000));
    const publishers = instances.filter((i) => i.isPublisher);
    if (publishers.length !== 1) {
      throw new Error(
        `${publishers.length} publishers:\n${
          instances.map((i) => i.lines.join("\n")).join("\n--\n")
        }`,
      );
    }
    // Viewers joined one after the other: each later one saw a part of the earlier ones' stream.
    assertOneStream(clients, 30);
    // A new join on each instance: the same user map everywhere (retried:
    // a presence change may land between the three joins).
    let same = false;
    for (let attempt = 0; attempt < 8 && !same; attempt++) {
      const fresh = await Promise.all(instances.map((i) => joined(i.url)));
      clients.push(...fresh);
      const joins = await Promise.all(fresh.map((c) => c.join("dworld")));
      const maps = joins.map((j: Frame) => JSON.stringify(j.data.users));
      same = maps.every((m) => m === maps[0]) && Object.keys(joins[0].data.users).length === 4;
    }
    if (!same) throw new Error("joins on different instances returned different user maps");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const i of instances) await i.stop();
  }
});

Deno.test("a library broadcast on one instance reaches viewers on every instance exactly once", async () => {
  await using redis = await RedisServer.start();
  const subs = await startInstances(2, redis.url, "s5", [
    ...LEASE,
    "--presence-interval",
    "100000",
  ]);
  const a = await libraryInstance(redis.url, "s5");
  const clients: Client[] = [];
  try {
    const urls = [a.url, ...subs.map((i) => i.url)];
    for (const u of urls) clients.push(await joined(u, "dworld"));
    const text = `exactly-once-${crypto.randomUUID()}`;
    a.server.broadcastMessage({
      server: DWORLD,
      uid: "123456789012345001",
      message: text,
      channel: "1",
    });
    const count = (c: Client) => c.raw.filter((r) => r.includes(text)).length;
    await until(() => clients.every((c) => count(c) >= 1), 5000, "the message on every viewer");
    await new Promise((r) => setTimeout(r, 500));
    const counts = clients.map(count);
    if (counts.some((n) => n !== 1)) throw new Error(`deliveries per viewer: ${counts}`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await a.server.stop();
    for (const i of subs) await i.stop();
  }
});

Deno.test("a join storm of 1,000 viewers over three instances: every one gets server-join", async () => {
  await using redis = await RedisServer.start();
  // In-process instances: all clients come from 127.0.0.1, and the command
  // line keeps the default of 32 connections per IP.
  const nodes: Awaited<ReturnType<typeof libraryInstance>>[] = [];
  for (let n = 0; n < 3; n++) {
    nodes.push(
      await libraryInstance(redis.url, "s6", {
        maxConnectionsPerIp: 1000,
        ipFramesPerSecond: 100_000,
        ipBytesPerSecond: 100_000_000,
        // All 1,000 come from one address: its join budget would refuse the storm.
        ipJoinBurst: 1000,
      }, n === 0),
    );
  }
  const urls = Array.from({ length: 1000 }, (_, n) => nodes[n % 3].url);
  const sockets: WebSocket[] = [];
  let joinedCount = 0;
  let errors = 0;
  try {
    await Promise.all(urls.map((u) =>
      new Promise<void>((resolve) => {
        const ws = new WebSocket(u);
        sockets.push(ws);
        const timer = setTimeout(() => {
          errors++;
          resolve();
        }, 20_000);
        ws.onopen = () => ws.send(JSON.stringify({ type: "connect", data: { server: "dworld" } }));
        ws.onmessage = (e) => {
          if (typeof e.data === "string" && e.data.startsWith('{"type":"server-join"')) {
            joinedCount++;
            clearTimeout(timer);
            resolve();
          }
        };
        ws.onerror = () => {
          errors++;
          clearTimeout(timer);
          resolve();
        };
      })
    ));
    if (joinedCount !== 1000) throw new Error(`${joinedCount} of 1000 joined (${errors} failed)`);
  } finally {
    await Promise.all(sockets.map((ws) =>
      new Promise<void>((r) => {
        if (ws.readyState === WebSocket.CLOSED) return r();
        ws.onclose = () => r();
        ws.close();
      })
    ));
    for (const n of nodes) await n.server.stop();
  }
});
