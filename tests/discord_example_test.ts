// examples/discord.ts as a subprocess, against the fake Discord.
import assert from "node:assert/strict";
import { FakeDiscord, GUILD, smallGuild } from "./discord_fake_test.ts";
import { joined } from "./helpers.ts";

const EXAMPLE = new URL("../examples/discord.ts", import.meta.url).pathname;
const CWD = new URL("..", import.meta.url).pathname;

function command(args: string[], env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EXAMPLE, ...args],
    cwd: CWD,
    env: {
      DISCORD_TOKEN: "",
      DISCORD_GUILD_IDS: "",
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

async function run(args: string[], env: Record<string, string>) {
  const out = await command(args, env).output();
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
