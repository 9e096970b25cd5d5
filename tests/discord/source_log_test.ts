// Issue 16 item 3: a source run by a server logs through the server's logger.
import assert from "node:assert/strict";
import type { LogRecord } from "../../src/log.ts";
import { WebSocketServer } from "../../src/server.ts";
import { FakeDiscord, makeSource, smallGuild } from "../_fixtures/fake_discord.ts";

/** Run `fn` with console.log/error captured; returns what they printed. */
async function quietConsole(fn: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void printed.push(a.join(" "));
  console.error = (...a: unknown[]) => void printed.push(a.join(" "));
  try {
    await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
  return printed;
}

Deno.test("source log: a Discord source without a logSink logs through the server's logger", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  // No logLevel or logSink of its own: the server's apply.
  const { source, logs: ownSink } = makeSource(fake, { logLevel: undefined, logSink: undefined });
  const records: LogRecord[] = [];
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "debug",
    logSink: (r) => records.push(r),
    source,
  });
  const printed = await quietConsole(async () => {
    try {
      await server.start();
      assert.ok(source.ready);
    } finally {
      await server.stop();
      await source.stop();
      await fake.stop();
    }
  });
  const discord = records.filter((r) => /^\[(discord|shard \d+)\] /.test(r.message));
  assert.ok(
    discord.length > 0,
    `the source's lines reach the server's sink: ${records.map((r) => r.message).join(" | ")}`,
  );
  // Debug lines too: the server's level (debug) applies, not the source's default (info).
  assert.ok(discord.some((r) => r.level === "debug"), "the server's level governs");
  assert.deepEqual(ownSink, [], "the source was given no sink of its own");
  assert.deepEqual(printed.filter((l) => /discord|shard/.test(l)), [], "nothing on the console");
});

Deno.test("source log: a quiet server keeps the Discord source quiet", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake, { logLevel: undefined, logSink: undefined });
  const records: LogRecord[] = [];
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "error",
    logSink: (r) => records.push(r),
    source,
  });
  const printed = await quietConsole(async () => {
    try {
      await server.start();
      assert.ok(source.ready);
    } finally {
      await server.stop();
      await source.stop();
      await fake.stop();
    }
  });
  assert.deepEqual(records, [], "nothing at error level happened");
  assert.deepEqual(printed, [], "the source's info lines are not printed on their own");
});

Deno.test("source log: a Discord source given its own logSink keeps it", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source, logs } = makeSource(fake, { logLevel: "info" });
  const records: LogRecord[] = [];
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "debug",
    logSink: (r) => records.push(r),
    source,
  });
  try {
    await server.start();
  } finally {
    await server.stop();
    await source.stop();
    await fake.stop();
  }
  assert.ok(logs.some((r) => r.conn === "discord" || r.conn?.startsWith("shard")), "own sink used");
  assert.ok(logs.every((r) => r.level !== "debug"), "at its own level");
  assert.deepEqual(records.filter((r) => /^\[(discord|shard)/.test(r.message)), []);
});

Deno.test("source log: the source's own logLevel drops lines before the server's logger", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake, { logLevel: "warn", logSink: undefined });
  const records: LogRecord[] = [];
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "debug",
    logSink: (r) => records.push(r),
    source,
  });
  try {
    await server.start();
    assert.ok(source.ready);
  } finally {
    await server.stop();
    await source.stop();
    await fake.stop();
  }
  // Without the source's level, the same start logs debug lines (the first test).
  const discord = records.filter((r) => /^\[(discord|shard \d+)\] /.test(r.message));
  assert.deepEqual(discord.filter((r) => r.level === "debug" || r.level === "info"), []);
  assert.ok(records.some((r) => r.message.includes("listening on")), "the server's own lines pass");
});
