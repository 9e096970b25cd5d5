// The Discord command as a service: it binds its port first and answers /healthz while
// the gateway connects, keeps retrying an unreachable Discord, exits 0 on SIGTERM, fails
// before IDENTIFY when its port is taken, and ends on a definite answer with one line.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { FakeDiscord, GUILD, smallGuild } from "../_fixtures/fake_discord.ts";
import { ensureBun } from "../_fixtures/_bun.ts";
import { ensureNode } from "../_fixtures/runtimes.ts";
import { RedisServer } from "../_fixtures/_redis.ts";
import { stepsAtOnce } from "../_fixtures/steps.ts";
import { freePort } from "./_nginx.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function spawn(
  args: string[],
  env: Record<string, string>,
  runtime: "deno" | "bun" | "node" = "deno",
) {
  const child = new Deno.Command(
    runtime === "node" ? await ensureNode() : runtime === "deno" ? Deno.execPath() : "bun",
    {
      args: runtime === "deno"
        ? ["run", "-A", "examples/discord.ts", ...args]
        : runtime === "node"
        ? ["examples/discord.ts", ...args]
        : ["run", "examples/discord.ts", ...args],
      cwd: ROOT,
      env: { DISCORD_GUILD_IDS: GUILD, NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    },
  ).spawn();
  const out = { text: "" };
  const reads = [child.stdout, child.stderr].map(async (s) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) out.text += c;
  });
  return {
    out,
    async until(re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = out.text.match(re);
        if (m) return m;
        assert.ok(Date.now() < deadline, `waited for ${re}:\n${out.text}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* exited */ }
      // A process that does not exit is a failure, not a hung test: killed after 20 s.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 20_000);
      const status = await child.status;
      clearTimeout(timer);
      await Promise.all(reads);
      return status;
    },
    status: child.status,
    done: () => Promise.all(reads),
  };
}

/** Listen on a free loopback port; the gateway is an address where nothing listens. */
const onDeadDiscord = (
  dead: number,
): string[] => ["--port", "0", "--host", "127.0.0.1", "--gateway-url", `ws://127.0.0.1:${dead}`];

/** On `rt`, Discord unreachable: the port answers /healthz (not connected) while it retries. */
async function unreachable(rt: "deno" | "bun" | "node"): Promise<void> {
  if (rt === "bun") await ensureBun();
  const dead = freePort();
  const p = await spawn(
    [...onDeadDiscord(dead), "--api-base", `http://127.0.0.1:${dead}/api`],
    { DISCORD_TOKEN: "unused-token" },
    rt,
  );
  try {
    const port = Number((await p.until(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.match(await health.text(), /^ok\nsource: discord (connecting|retrying)\n$/);
    const status = await (await fetch(`http://127.0.0.1:${port}/api/status`)).json();
    assert.equal(status.source.kind, "discord");
    assert.notEqual(status.source.state, "ready");
    // The page is served meanwhile.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    await page.body?.cancel();
    // It keeps trying (a second attempt, and still no exit), and says why it failed.
    await p.until(/attempt 2/);
    assert.match(p.out.text, /WARN .*socket error: .*(refused|failed to connect)/i);
    assert.match(
      await (await fetch(`http://127.0.0.1:${port}/healthz`)).text(),
      /source: discord (connecting|retrying)/,
    );
  } finally {
    const s = await p.stop("SIGTERM");
    assert.equal(s.code, 0, p.out.text);
  }
}

// Most of each case is waiting for the second attempt (a back-off of seconds), each with a process
// of its own, so the runtimes run at once, as concurrent steps.
Deno.test("discord command, Discord unreachable: deno, bun and node at once", async (t) => {
  await stepsAtOnce(
    t,
    (["deno", "bun", "node"] as const).map((rt) => ({
      name:
        `${rt}: discord command, Discord unreachable: the port answers /healthz (not connected) while it retries; SIGTERM exits 0`,
      fn: () => unreachable(rt),
    })),
  );
});

Deno.test("discord command, Discord's API unreachable: the cause is logged, and a failed start is started again", async () => {
  const dead = freePort();
  const p = await spawn(
    ["--port", "0", "--host", "127.0.0.1", "--api-base", `http://127.0.0.1:${dead}/api`],
    { DISCORD_TOKEN: "unused-token" },
  );
  try {
    await p.until(/listening on/);
    // fetch says "fetch failed"; the log carries what failed underneath.
    await p.until(/GET \/gateway\/bot: .*fetch failed: caused by .*(refused|connect)/i);
    await p.until(/discord: start failed \(attempt 1\): .*; retrying in \d+ ms/);
    // The new start asks again.
    const again = p.out.text.length;
    const deadline = Date.now() + 30_000;
    while (!/GET \/gateway\/bot/.test(p.out.text.slice(again))) {
      assert.ok(Date.now() < deadline, `no new attempt:\n${p.out.text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    const s = await p.stop("SIGTERM");
    assert.equal(s.code, 0, p.out.text);
  }
});

Deno.test("discord command --redis, Discord unreachable: port first, the publisher's /healthz reports the gateway, SIGTERM exits 0", async () => {
  await using redis = await RedisServer.start();
  const dead = freePort();
  const p = await spawn(
    [
      ...onDeadDiscord(dead),
      "--redis",
      redis.url,
      "--redis-namespace",
      "unreachable",
    ],
    { DISCORD_TOKEN: "unused-token" },
  );
  try {
    // The port first: bound and answering before the lease is even won.
    const port = Number((await p.until(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const first = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(first.status, 200);
    await first.body?.cancel();
    await p.until(/is the publisher/);
    await p.until(/socket error/);
    // The publisher's /healthz reports its gateway, not a cluster that looks ready.
    assert.match(
      await (await fetch(`http://127.0.0.1:${port}/healthz`)).text(),
      /^ok\nsource: discord (connecting|retrying)\n$/,
    );
    const status = await (await fetch(`http://127.0.0.1:${port}/api/status`)).json();
    assert.equal(status.source.kind, "discord");
    assert.notEqual(status.source.state, "ready");
    assert.equal(status.cluster, "leader");
  } finally {
    const s = await p.stop("SIGTERM");
    assert.equal(s.code, 0, p.out.text);
  }
});

/**
 * Run the discord command, with `extra` flags, on a port another socket holds: it exits 1 with
 * the listen error and never connected to the gateway.
 */
async function assertPortTakenExits(extra: string[]): Promise<void> {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const p = await spawn(
      [
        "--port",
        String((busy.addr as Deno.NetAddr).port),
        "--host",
        "127.0.0.1",
        "--gateway-url",
        fake.gatewayUrl,
        ...extra,
      ],
      { DISCORD_TOKEN: fake.token },
    );
    const status = await p.status;
    await p.done();
    assert.equal(status.code, 1, p.out.text);
    assert.match(p.out.text, /error: cannot listen on 127\.0\.0\.1:\d+/);
    assert.equal(fake.conns.length, 0, "no gateway connection before the port is bound");
  } finally {
    busy.close();
    await fake.stop();
  }
}

Deno.test("discord command, port taken: exit 1 before any IDENTIFY", async () => {
  await assertPortTakenExits([]);
});

Deno.test("discord command --redis, port taken: exit 1 before any gateway connection", async () => {
  await using redis = await RedisServer.start();
  await assertPortTakenExits([
    "--redis",
    redis.url,
    "--redis-namespace",
    "taken",
    "--redis-lease-ms",
    "300",
  ]);
});

Deno.test("discord command, a rejected token: exit 1 with the reason on one error line, once", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  try {
    const p = await spawn(
      ["--port", "0", "--host", "127.0.0.1", "--gateway-url", fake.gatewayUrl],
      { DISCORD_TOKEN: "wrong-token" },
    );
    const status = await p.status;
    await p.done();
    assert.equal(status.code, 1, p.out.text);
    const lines = p.out.text.split("\n").filter((l) => /rejected the bot token/.test(l));
    assert.equal(lines.length, 1, p.out.text);
    assert.match(lines[0], /^error: /);
    assert.equal(fake.conns.length, 1, "no retry after a definite answer");
  } finally {
    await fake.stop();
  }
});
