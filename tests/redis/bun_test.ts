// A cluster that mixes runtimes: one instance under Bun, one under Node.js, one under Deno,
// one redis-server; the Redis client (ioredis) runs on all three.
import { ensureBun } from "../_fixtures/_bun.ts";
import { assertOneStream, RedisServer, startInstances } from "../_fixtures/_redis.ts";
import { type Client, joined, until } from "../_fixtures/helpers.ts";

Deno.test("a Bun, a Node and a Deno instance: one publisher, the same sequence on all", async () => {
  await ensureBun(); // installs package.json dependencies (ioredis too) when missing
  await using redis = await RedisServer.start();
  const flags = [
    "--redis-lease-ms",
    "1000",
    "--presence-interval",
    "150",
    "--message-interval",
    "200",
  ];
  const instances = [
    ...await startInstances(1, redis.url, "b1", flags, "bun"),
    ...await startInstances(1, redis.url, "b1", flags, "node"),
    ...await startInstances(1, redis.url, "b1", flags, "deno"),
  ];
  const clients: Client[] = [];
  try {
    for (const i of instances) clients.push(await joined(i.url, "dworld"));
    await until(() => instances.filter((i) => i.isPublisher).length === 1, 5000, "one publisher");
    await new Promise((r) => setTimeout(r, 4000));
    assertOneStream(clients, 20);
    if (instances.filter((i) => i.isPublisher).length !== 1) throw new Error("not one publisher");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    for (const i of instances) await i.stop();
  }
});
