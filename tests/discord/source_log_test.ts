// Issue 16 item 3: a source run by a server logs through the server's logger.
import assert from "node:assert/strict";
import type { LogLevel, LogRecord } from "../../src/log.ts";
import type { DiscordSourceOptions } from "../../src/discord/mod.ts";
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

/**
 * Start a server of level `logLevel` with a Discord source made with `sourceOptions`, wait until
 * the source is ready, stop everything: what reached the server's sink, the source's own sink and
 * the console.
 */
async function startAndStop(
  sourceOptions: Partial<DiscordSourceOptions>,
  logLevel: LogLevel,
): Promise<{ records: LogRecord[]; ownSink: LogRecord[]; printed: string[] }> {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source, logs: ownSink } = makeSource(fake, sourceOptions);
  const records: LogRecord[] = [];
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel,
    logSink: (r) => records.push(r),
    source,
  });
  let ready = false;
  const printed = await quietConsole(async () => {
    try {
      await server.start();
      ready = source.ready;
    } finally {
      await server.stop();
      await source.stop();
      await fake.stop();
    }
  });
  assert.ok(ready, "the source was ready once the server started");
  return { records, ownSink, printed };
}

/** The lines the Discord source wrote, by their prefix. */
const discordLines = (records: LogRecord[]) =>
  records.filter((r) => /^\[(discord|shard \d+)\] /.test(r.message));

Deno.test("source log: a Discord source without a logSink logs through the server's logger", async () => {
  // No logLevel or logSink of its own: the server's apply.
  const { records, ownSink, printed } = await startAndStop(
    { logLevel: undefined, logSink: undefined },
    "debug",
  );
  const discord = discordLines(records);
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
  const { records, printed } = await startAndStop(
    { logLevel: undefined, logSink: undefined },
    "error",
  );
  assert.deepEqual(records, [], "nothing at error level happened");
  assert.deepEqual(printed, [], "the source's info lines are not printed on their own");
});

Deno.test("source log: a Discord source given its own logSink keeps it", async () => {
  const { records, ownSink } = await startAndStop({ logLevel: "info" }, "debug");
  assert.ok(
    ownSink.some((r) => r.conn === "discord" || r.conn?.startsWith("shard")),
    "own sink used",
  );
  assert.ok(ownSink.every((r) => r.level !== "debug"), "at its own level");
  assert.deepEqual(discordLines(records), []);
});

Deno.test("source log: the source's own logLevel drops lines before the server's logger", async () => {
  const { records } = await startAndStop({ logLevel: "warn", logSink: undefined }, "debug");
  // Without the source's level, the same start logs debug lines (the first test).
  const discord = discordLines(records);
  assert.deepEqual(discord.filter((r) => r.level === "debug" || r.level === "info"), []);
  assert.ok(records.some((r) => r.message.includes("listening on")), "the server's own lines pass");
});
