// A cluster that mixes runtimes: one instance under Bun, one under Deno,
// one redis-server; the Redis client (ioredis) runs on both.
import { ensureBun, ROOT } from "./_bun.ts";
import { assertOneStream, RedisServer, startInstances } from "./_redis.ts";
import { type Client, joined, until } from "./helpers.ts";

async function ensureIoredisForBun(): Promise<void> {
  await ensureBun();
  try {
    await Deno.stat(`${ROOT}node_modules/ioredis/package.json`);
  } catch {
    const out = await new Deno.Command("bun", {
      args: ["install", "--frozen-lockfile"],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`bun install failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
}

Deno.test("a Bun instance and a Deno instance: one publisher, the same sequence on both", async () => {
  await ensureIoredisForBun();
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
