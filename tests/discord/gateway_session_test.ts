// The session store hook (for scale-out, issue 12): a GatewayClient saves its
// session and another one RESUMEs it instead of identifying.
import assert from "node:assert/strict";
import type { GatewaySession, GatewaySessionStore } from "../../src/discord/_gateway_types.ts";
import { FakeDiscord, gatewayClient, smallGuild } from "../_fixtures/fake_discord.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store in memory that counts its saves. */
function memoryStore(initial?: GatewaySession) {
  const saved = new Map<number, GatewaySession>();
  if (initial) saved.set(0, initial);
  const log: (GatewaySession | undefined)[] = [];
  const store: GatewaySessionStore = {
    load: (shard) => Promise.resolve(saved.get(shard)),
    save: (shard, s) => {
      log.push(s);
      if (s) saved.set(shard, s);
      else saved.delete(shard);
      return Promise.resolve();
    },
  };
  return { store, saved, log };
}

Deno.test("session store: saved after READY, throttled while the sequence moves, resumed by the next client", async () => {
  await using fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const mem = memoryStore();
  {
    await using c = gatewayClient(fake, {
      sessionStore: mem.store,
      timing: { sessionSaveIntervalMs: 100 },
    });
    c.client.connect();
    await fake.waitSession(1);
    await fake.until(() => mem.saved.get(0)?.sessionId === "session-1", 2000, "first save");
    assert.equal(mem.saved.get(0)!.resumeUrl, `ws://127.0.0.1:${fake.port}/resume`);
    for (let i = 0; i < 200; i++) fake.current.dispatch("TYPING_START", { i });
    await fake.until(() => mem.saved.get(0)?.seq === fake.seq, 2000, "latest seq saved");
    assert.ok(mem.log.length <= 6, `${mem.log.length} saves for 200 dispatches`);
    await sleep(150);
    const conn = fake.current;
    await c.client.close();
    await conn.closed;
    // Discord ends a session closed with 1000/1001; a stored one must stay resumable.
    assert.notEqual(conn.closeCode, 1000);
    assert.notEqual(conn.closeCode, 1001);
  }
  const seq = mem.saved.get(0)!.seq;
  assert.equal(seq, fake.seq);
  await using next = gatewayClient(fake, { sessionStore: mem.store });
  next.client.connect();
  const resume = await fake.waitOp(6, 1, 3000);
  assert.equal(resume.payload.d.session_id, "session-1");
  assert.equal(resume.payload.d.seq, seq);
  assert.equal(fake.current.path, "/resume");
  await fake.until(() => next.sessions.includes("resumed"), 3000, "RESUMED");
  assert.equal(fake.ops(2).length, 1, "the second client did not IDENTIFY");
});

Deno.test("session store: a stored session Discord refuses leads to IDENTIFY and a new saved session", async () => {
  await using fake = await FakeDiscord.start();
  const mem = memoryStore({
    sessionId: "gone",
    seq: 5,
    resumeUrl: `ws://127.0.0.1:${fake.port}/resume`,
  });
  await using c = gatewayClient(fake, { sessionStore: mem.store });
  c.client.connect();
  await fake.until(() => c.sessions.includes("ready"), 3000, "READY");
  assert.equal(fake.ops(6)[0].payload.d.session_id, "gone");
  await fake.until(() => mem.saved.get(0)?.sessionId === "session-1", 2000, "new session saved");
});

Deno.test("session store: a malformed or failing store is logged and IDENTIFY goes on", async () => {
  await using fake = await FakeDiscord.start();
  const bad: GatewaySessionStore = {
    load: () => Promise.resolve({ sessionId: "", seq: -1 } as unknown as GatewaySession),
    save: () => Promise.reject(new Error("disk full")),
  };
  {
    await using c = gatewayClient(fake, { sessionStore: bad });
    c.client.connect();
    await fake.until(() => c.sessions.includes("ready"), 3000, "READY");
    assert.equal(c.lines(/malformed stored session/).length, 1);
    await fake.until(() => c.lines(/could not save the session \(disk full\)/).length > 0, 2000);
  }
  const throwing: GatewaySessionStore = {
    load: () => Promise.reject(new Error("redis down")),
    save: () => Promise.resolve(),
  };
  await using c2 = gatewayClient(fake, { sessionStore: throwing });
  c2.client.connect();
  await fake.until(() => c2.sessions.includes("ready"), 3000, "READY");
  assert.equal(c2.lines(/could not load the stored session \(redis down\)/).length, 1);
});
