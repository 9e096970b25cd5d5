// examples/discord.ts as a subprocess, against the fake Discord.
import assert from "node:assert/strict";
import { ADA, BOB, CY, FakeDiscord, GUILD, GUILD2, smallGuild } from "../_fixtures/fake_discord.ts";
import { joined } from "../_fixtures/helpers.ts";
import { ensureBun, ensureNode } from "../_fixtures/runtimes.ts";
import { RedisServer } from "../_fixtures/_redis.ts";
import process from "node:process";

import { socketUrl } from "../../examples/discord.ts";

const EXAMPLE = new URL("../../examples/discord.ts", import.meta.url).pathname;
const CWD = new URL("../..", import.meta.url).pathname;

type Runtime = "deno" | "bun" | "node";
/** The Node.js binary (>= 22.18), once a Node test has looked for it. */
let node = "node";

/** The example as a child process, on Deno (`deno run -A`), Bun (`bun run`) or Node (`node`). */
function command(args: string[], env: Record<string, string>, runtime: Runtime = "deno") {
  return new Deno.Command(runtime === "deno" ? Deno.execPath() : runtime === "bun" ? "bun" : node, {
    args: runtime === "deno"
      ? ["run", "-A", EXAMPLE, ...args]
      : runtime === "bun"
      ? ["run", EXAMPLE, ...args]
      : [EXAMPLE, ...args],
    cwd: CWD,
    env: {
      DISCORD_TOKEN: "",
      DISCORD_GUILD_IDS: "",
      DISCORD_ALL_GUILDS: "",
      DISCORD_CHANNEL_IDS: "",
      DISCORD_CLIENT_ID: "",
      DISCORD_PASSWORDED: "",
      DISCORD_INCLUDE_OFFLINE: "",
      NO_COLOR: "1",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function run(args: string[], env: Record<string, string>, runtime?: Runtime) {
  const out = await command(args, env, runtime).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("discord example: a missing DISCORD_TOKEN is a clear error", async () => {
  const r = await run([], { DISCORD_GUILD_IDS: GUILD });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /DISCORD_TOKEN is not set/);
  assert.doesNotMatch(r.stderr, /DISCORD_GUILD_IDS/);
});

Deno.test("discord example: malformed variables and flags are clear errors", async () => {
  let r = await run([], {
    DISCORD_TOKEN: "x",
    DISCORD_GUILD_IDS: `${GUILD},nope`,
    DISCORD_INCLUDE_OFFLINE: "maybe",
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /"nope" is not a Discord id/);
  assert.match(r.stderr, /DISCORD_INCLUDE_OFFLINE must be true or false/);
  r = await run(["--port", "x"], { DISCORD_TOKEN: "x", DISCORD_GUILD_IDS: GUILD });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--port must be a whole number/);
  r = await run(["--help"], {});
  assert.equal(r.code, 0);
  assert.match(r.stdout, /DISCORD_GUILD_IDS/);
});

Deno.test("discord example: a token the gateway rejects exits 1 and says so", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  try {
    const r = await run(["--gateway-url", fake.gatewayUrl, "--port", "0", "--host", "127.0.0.1"], {
      DISCORD_TOKEN: "wrong-token",
      DISCORD_GUILD_IDS: GUILD,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /4004/);
    assert.match(r.stderr, /rejected the bot token/);
    assert.equal(fake.conns.length, 1, "no retry after 4004");
  } finally {
    await fake.stop();
  }
});

Deno.test("discord example: serves the guild and stops on SIGTERM", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const child = command(
    ["--gateway-url", fake.gatewayUrl, "--port", "0", "--host", "127.0.0.1"],
    { DISCORD_TOKEN: fake.token, DISCORD_GUILD_IDS: GUILD, DISCORD_INCLUDE_OFFLINE: "false" },
  ).spawn();
  let stdout = "";
  let stderr = "";
  const readOut = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
  })();
  const readErr = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  try {
    await fake.until(
      () => /socketURL=ws:\/\/127\.0\.0\.1:\d+/.test(stdout),
      30_000,
      "the URL line",
    );
    const url = /socketURL=(ws:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1];
    const c = await joined(url, GUILD);
    const join = c.frames.find((f) => f.type === "server-join")!;
    assert.equal(join.data.serverName, "Test Guild");
    assert.equal(Object.keys(join.data.users).length, 3, "offline members left out");
    await c.close();
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await readOut;
    await readErr;
    await fake.stop();
    assert.equal(status.code, 0, `exit code; stderr: ${stderr}`);
  }
});

/** Spawn the example with output collected; `stop` signals it and returns the exit status. */
function spawn(args: string[], env: Record<string, string>, runtime?: Runtime) {
  const child = command(args, env, runtime).spawn();
  const out = { stdout: "", stderr: "" };
  const reads = [
    (async () => {
      for await (const c of child.stdout.pipeThrough(new TextDecoderStream())) out.stdout += c;
    })(),
    (async () => {
      for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) out.stderr += c;
    })(),
  ];
  return {
    out,
    async stop(signal: Deno.Signal) {
      child.kill(signal);
      const status = await child.status;
      await Promise.all(reads);
      return status;
    },
  };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`discord example (13.3): ${signal} while waiting for READY exits 0`, async () => {
    const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
    fake.answerIdentify = false;
    const p = spawn(["--gateway-url", fake.gatewayUrl, "--port", "0", "--host", "127.0.0.1"], {
      DISCORD_TOKEN: fake.token,
      DISCORD_GUILD_IDS: GUILD,
    });
    try {
      await fake.waitOp(2, 1, 30_000); // IDENTIFY sent, never answered
      const status = await p.stop(signal);
      assert.equal(status.code, 0, `exit code; stderr: ${p.out.stderr}`);
      assert.doesNotMatch(p.out.stdout, /socketURL/);
    } finally {
      await fake.stop();
    }
  });
}

Deno.test("discord example (13.10): --config file wins over the environment", async () => {
  const fake = await FakeDiscord.start({
    guilds: [smallGuild(), smallGuild(GUILD2, "Second")],
  });
  const dir = await Deno.makeTempDir();
  const file = `${dir}/discord-config.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      token: fake.token,
      servers: [
        { id: GUILD2, alias: "Lobby", slug: "lobby" },
        { id: GUILD, default: true, hideOffline: true, ignoreUsers: [BOB] },
      ],
    }),
  );
  const p = spawn(
    ["--config", file, "--gateway-url", fake.gatewayUrl, "--port", "0", "--host", "127.0.0.1"],
    // ignored: the file gives the servers and the token
    { DISCORD_TOKEN: "wrong", DISCORD_GUILD_IDS: "100000000000000009" },
  );
  try {
    await fake.until(() => /socketURL=ws:\/\/127\.0\.0\.1:\d+/.test(p.out.stdout), 30_000, "URL");
    const url = /socketURL=(ws:\/\/127\.0\.0\.1:\d+)/.exec(p.out.stdout)![1];
    const c = await joined(url, GUILD);
    const list = c.frames.find((f) => f.type === "server-list")!.data;
    assert.deepEqual(list[GUILD2], {
      id: "lobby",
      name: "Lobby",
      default: false,
      passworded: false,
    });
    assert.equal(list[GUILD].default, true);
    const users = c.frames.find((f) => f.type === "server-join")!.data.users;
    assert.ok(users[ADA], "online member shown");
    assert.equal(users[CY], undefined, "offline member hidden");
    assert.equal(users[BOB], undefined, "ignored user hidden");
    await c.close();
  } finally {
    const status = await p.stop("SIGTERM");
    await fake.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, p.out.stderr);
  }
});

Deno.test("discord example (13.10): a bad configuration file names the field", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/c.json`;
  try {
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        servers: [{ id: GUILD, listenChannels: ["a"], ignoreChannels: ["b"] }, { id: "x" }],
        colour: "red",
      }),
    );
    const r = await run(["--config", file], { DISCORD_TOKEN: "t" });
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /servers\[0\]\.listenChannels: give either ignoreChannels or listenChannels/,
    );
    assert.match(r.stderr, /servers\[1\]\.id: id must be a Discord id/);
    assert.match(r.stderr, /colour/);
    await Deno.writeTextFile(file, "{ not json");
    const r2 = await run(["--config", file], { DISCORD_TOKEN: "t" });
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /not valid JSON/);
    const r3 = await run(["--config", `${dir}/missing.json`], { DISCORD_TOKEN: "t" });
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /cannot read the file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const rt of ["bun", "node"] as const) {
  Deno.test(`discord example on ${rt}: --help, a clear env error, serves the guild, exits 0 on SIGTERM`, async () => {
    if (rt === "bun") await ensureBun();
    else node = await ensureNode();
    const help = await run(["--help"], {}, rt);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /DISCORD_GUILD_IDS/);
    const bad = await run([], { DISCORD_GUILD_IDS: GUILD }, rt);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /DISCORD_TOKEN is not set/);
    const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
    const p = spawn(
      ["--gateway-url", fake.gatewayUrl, "--port", "0", "--host", "127.0.0.1"],
      { DISCORD_TOKEN: fake.token, DISCORD_GUILD_IDS: GUILD },
      rt,
    );
    try {
      await fake.until(() => /socketURL=ws:\/\/127\.0\.0\.1:\d+/.test(p.out.stdout), 30_000, "URL");
      const identify = (await fake.waitOp(2)).payload;
      assert.equal(identify.d.properties.os, process.platform, "the OS comes from node:process");
      const url = /socketURL=(ws:\/\/127\.0\.0\.1:\d+)/.exec(p.out.stdout)![1];
      const c = await joined(url, GUILD);
      assert.equal(c.frames.find((f) => f.type === "server-join")!.data.serverName, "Test Guild");
      await c.close();
    } finally {
      const status = await p.stop("SIGTERM");
      await fake.stop();
      assert.equal(status.code, 0, p.out.stderr);
    }
  });
}

Deno.test("discord example: --redis flag mistakes are named", async () => {
  let r = await run(["--redis-namespace", "x"], { DISCORD_TOKEN: "t", DISCORD_GUILD_IDS: GUILD });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--redis-namespace and --redis-lease-ms need --redis/);
  r = await run(["--redis", "localhost:6379"], { DISCORD_TOKEN: "t", DISCORD_GUILD_IDS: GUILD });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--redis must be redis:\/\/host:port/);
  r = await run(["--help"], {});
  assert.match(r.stdout, /--redis <url>/);
});

Deno.test("discord example --redis: two instances, one Discord connection, viewers on both; the survivor takes over", async () => {
  await using redis = await RedisServer.start();
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const args = [
    "--gateway-url",
    fake.gatewayUrl,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--redis",
    redis.url,
    "--redis-namespace",
    "discordtest",
  ];
  const env = { DISCORD_TOKEN: fake.token, DISCORD_GUILD_IDS: GUILD };
  const urlOf = async (p: ReturnType<typeof spawn>) => {
    await fake.until(() => /socketURL=ws:\/\/127\.0\.0\.1:\d+/.test(p.out.stdout), 30_000, "URL");
    return /socketURL=(ws:\/\/127\.0\.0\.1:\d+)/.exec(p.out.stdout)![1];
  };
  const a = spawn(args, env);
  let b: ReturnType<typeof spawn> | undefined;
  let aStopped = false;
  try {
    const urlA = await urlOf(a);
    await fake.waitSession(1, 20_000); // the first instance took the lease and connected
    b = spawn(args, env);
    const urlB = await urlOf(b);
    // A viewer on the instance without the Discord connection sees the guild.
    const viewer = await joined(urlB, GUILD);
    const join = viewer.frames.find((f) => f.type === "server-join")!;
    assert.equal(join.data.serverName, "Test Guild");
    assert.ok(join.data.users[ADA], "members from the shared state");
    // ...and the live changes, through Redis.
    fake.current.dispatch("PRESENCE_UPDATE", { guild_id: GUILD, user: { id: CY }, status: "dnd" });
    const p = await viewer.nextOf("presence");
    assert.equal(p.data.uid, CY);
    assert.equal(p.data.status, "dnd");
    await viewer.close();
    assert.notEqual(urlA, urlB);
    assert.equal(fake.ops(2).length, 1, "only the publisher identified");
    assert.doesNotMatch(b.out.stdout + b.out.stderr, /is the publisher/);
    // The publisher leaves: the other instance connects to Discord in its place.
    const status = await a.stop("SIGTERM");
    aStopped = true;
    assert.equal(status.code, 0, a.out.stderr);
    // It resumes the session the publisher left (a clean stop keeps it resumable).
    await fake.until(() => fake.ops(6).length === 1, 20_000, "the survivor's RESUME");
    assert.equal(fake.ops(2).length, 1, "no second IDENTIFY");
  } finally {
    if (!aStopped) await a.stop("SIGTERM");
    const sb = b ? await b.stop("SIGTERM") : undefined;
    await fake.stop();
    if (sb) assert.equal(sb.code, 0, b!.out.stderr);
  }
});

Deno.test("discord example: the printed URL is usable for wildcard and IPv6 binds", () => {
  assert.equal(socketUrl("0.0.0.0", 3000), "ws://localhost:3000");
  assert.equal(socketUrl("::", 3000), "ws://localhost:3000");
  assert.equal(socketUrl("::1", 80), "ws://[::1]:80");
  assert.equal(socketUrl("127.0.0.1", 1), "ws://127.0.0.1:1");
});
