// Issue 13 items 1-4 and 6 (gateway part): the GatewayClient against a fake
// Discord that misbehaves in exactly one way per test. Time bounds here are
// lower bounds the client must respect (a wait it must not skip) or caps on
// counts within a bounded run; none measures speed.
import assert from "node:assert/strict";
import {
  FakeDiscord,
  gatewayClient,
  maxInWindow,
  type Received,
} from "../_fixtures/fake_discord.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The delays of "reconnecting in N ms (attempt K)" log lines. */
function reconnects(lines: { message: string }[]): { delay: number; attempt: number }[] {
  return lines.flatMap((l) => {
    const m = /reconnecting in (\d+) ms \(attempt (\d+)\)/.exec(l.message);
    return m ? [{ delay: Number(m[1]), attempt: Number(m[2]) }] : [];
  });
}

Deno.test("gateway 13.1: every RESUME answered op 9 d=true backs off instead of storming", async () => {
  await using fake = await FakeDiscord.start();
  await using c = gatewayClient(fake, { timing: { reconnectBaseMs: 20, reconnectMaxMs: 200 } });
  c.client.connect();
  await fake.waitSession(1);
  fake.resumeReply = "invalid-resumable";
  fake.current.send({ op: 7, d: null });
  await sleep(1500);
  const storm = fake.conns.length;
  // Without backoff this loop reconnects thousands of times in 1.5 s (a slow machine makes fewer).
  assert.ok(storm <= 25, `${storm} connections in 1.5 s`);
  // It keeps trying, each wait longer: by attempt 5 the wait is in the cap's range.
  await fake.until(() => reconnects(c.logs).some((x) => x.attempt >= 5), 10_000, "attempt 5");
  const r = reconnects(c.logs);
  assert.ok(r.every((x) => x.delay >= 10), "no zero-delay reconnect on any path");
  assert.ok(r.some((x) => x.delay >= 100), "the backoff grew to the cap's range");
  assert.ok(r.every((x) => x.delay <= 200), "the backoff is capped");
  // A successful RESUMED resets the backoff.
  fake.resumeReply = "resumed";
  await fake.until(() => c.sessions.includes("resumed"), 3000, "RESUMED");
  fake.current.send({ op: 7, d: null });
  await fake.until(() => c.sessions.filter((s) => s === "resumed").length === 2, 3000, "again");
  assert.equal(reconnects(c.logs).at(-1)!.attempt, 1, "attempt count starts over");
  assert.equal(c.fatal.length, 0);
});

Deno.test("gateway 13.1: op 7 on every connection and op 9 d=false also back off", async () => {
  await using fake = await FakeDiscord.start();
  await using c = gatewayClient(fake, { timing: { reconnectBaseMs: 20, reconnectMaxMs: 200 } });
  c.client.connect();
  await fake.waitSession(1);
  // Every new connection is told to reconnect right after HELLO, before any RESUMED.
  fake.hello = false;
  const sendOp7 = setInterval(() => {
    for (const conn of fake.conns) {
      if (conn.open && !conn.received.length) {
        conn.send({ op: 10, d: { heartbeat_interval: 1000 } });
        conn.send({ op: 7, d: null });
      }
    }
  }, 2);
  try {
    fake.current.send({ op: 7, d: null });
    await sleep(1200);
  } finally {
    clearInterval(sendOp7);
  }
  assert.ok(fake.conns.length <= 20, `${fake.conns.length} connections in 1.2 s`);
  await fake.until(() => reconnects(c.logs).some((x) => x.delay >= 100), 10_000, "a long wait");
  fake.hello = true;
  fake.identifyReply = "invalid";
  fake.resumeReply = "invalid";
  const before = fake.conns.length;
  await sleep(1200);
  const after = fake.conns.length - before;
  assert.ok(after <= 20, `${after} connections in 1.2 s of op 9 d=false`);
  assert.ok(reconnects(c.logs).slice(-3).every((x) => x.delay >= 20));
});

Deno.test("gateway 13.2: no HELLO within the deadline reconnects, logged; start-up then succeeds", async () => {
  await using fake = await FakeDiscord.start();
  fake.hello = false;
  await using c = gatewayClient(fake, { timing: { helloTimeoutMs: 100 } });
  c.client.connect();
  await fake.until(() => fake.conns.length >= 2, 3000, "a second connection");
  assert.equal(c.lines(/no HELLO within 100 ms/).length >= 1, true);
  assert.equal(c.lines(/no HELLO within 100 ms/)[0].level, "warn");
  fake.hello = true;
  await fake.until(() => c.sessions.includes("ready"), 3000, "READY");
  // After an op 7, a gateway that then stays silent is left too.
  fake.hello = false;
  const n = fake.conns.length;
  fake.current.send({ op: 7, d: null });
  await fake.until(() => fake.conns.length >= n + 2, 3000, "reconnect after the silent one");
  fake.hello = true;
  await fake.until(() => c.sessions.includes("resumed"), 3000, "RESUMED");
  assert.equal(c.fatal.length, 0);
});

Deno.test("gateway 13.2: a gateway that never says HELLO fails start-up with a clear error", async () => {
  await using fake = await FakeDiscord.start();
  fake.hello = false;
  await using c = gatewayClient(fake, { timing: { helloTimeoutMs: 50, maxStartFailures: 3 } });
  c.client.connect();
  await fake.until(() => c.fatal.length === 1, 3000, "the fatal error");
  assert.match(c.fatal[0].message, /could not establish a gateway session after 3 attempts/);
  assert.equal(fake.conns.length, 3);
});

Deno.test("gateway 13.3: IDENTIFY never answered (heartbeats ACKed) reconnects after the deadline", async () => {
  await using fake = await FakeDiscord.start({ heartbeatIntervalMs: 100 });
  fake.identifyReply = "silent";
  await using c = gatewayClient(fake, { timing: { readyTimeoutMs: 200, maxStartFailures: 20 } });
  c.client.connect();
  await fake.until(() => c.lines(/no READY within 200 ms/).length >= 1, 3000, "the deadline");
  await fake.waitOp(2, 2, 3000);
  assert.ok(fake.ops(1).length >= 1, "heartbeats went on while waiting");
  fake.identifyReply = "ready";
  await fake.until(() => c.sessions.includes("ready"), 3000, "READY");
  // A RESUME nobody answers is given up for an IDENTIFY.
  fake.resumeReply = "silent";
  const identifies = fake.ops(2).length;
  fake.current.send({ op: 7, d: null });
  await fake.waitOp(6, 1, 3000);
  await fake.waitOp(2, identifies + 1, 3000);
  assert.ok(c.lines(/no RESUMED within 200 ms/).length >= 1);
  await fake.until(() => c.sessions.filter((s) => s === "ready").length === 2, 3000, "READY 2");
});

Deno.test("gateway 13.4: frames queued across reconnects are sent after the next RESUMED, none lost", async () => {
  await using fake = await FakeDiscord.start({ heartbeatIntervalMs: 1000 });
  await using c = gatewayClient(fake, {
    timing: { sendLimit: 10, sendWindowMs: 1000, helloTimeoutMs: 150 },
  });
  c.client.connect();
  await fake.waitSession(1);
  // 20 member requests: more than one window's budget, so some are still queued...
  for (let i = 0; i < 20; i++) {
    assert.equal(c.client.send(8, { guild_id: "1", nonce: `n${i}` }), true);
  }
  // ...when the gateway drops us (after the first window's frames arrived: frames
  // in flight on a dying socket are lost, which is what onSession is for), and
  // the next socket stays silent for a while.
  // Every frame sent so far has arrived (none in flight): the rest are still queued.
  await fake.until(
    () => fake.ops(8).length >= 5 && fake.ops(8).length + c.client.queued === 20,
    3000,
    "the first window",
  );
  assert.ok(c.client.queued > 0, "some frames still queued");
  fake.hello = false;
  fake.current.close(4000, "Unknown error.");
  await fake.until(() => fake.conns.length === 2, 3000, "second connection");
  await fake.conns[1].opened; // (it decides on HELLO when it opens)
  // Queued while no session exists; the later one replaces the earlier under one key.
  assert.equal(c.client.send(8, { guild_id: "2", nonce: "old" }, { key: "members:2" }), true);
  assert.equal(c.client.send(8, { guild_id: "2", nonce: "new" }, { key: "members:2" }), true);
  fake.hello = true;
  await fake.until(() => c.sessions.includes("resumed"), 3000, "RESUMED");
  await fake.until(() => fake.ops(8).length >= 21, 8000, "every member request");
  await sleep(50);
  const nonces = fake.ops(8).map((r) => r.payload.d.nonce);
  const expected = [...Array.from({ length: 20 }, (_, i) => `n${i}`), "new"];
  assert.deepEqual(nonces.toSorted(), expected.toSorted(), "each frame exactly once");
  assert.equal(fake.ops(8, 2).length, 0, "nothing on the socket that never said HELLO");
  // On the resumed socket, data frames come only after RESUME was sent.
  const resumed = fake.conns.find((x) => x.received.some((p) => p.op === 6))!;
  const firstData = resumed.received.findIndex((p) => p.op === 8);
  const resume = resumed.received.findIndex((p) => p.op === 6);
  assert.ok(firstData === -1 || resume < firstData);
  assert.deepEqual(c.sessions, ["ready", "resumed"], "onSession told of both");
});

Deno.test("gateway 13.4: a new session (re-IDENTIFY) is reported so the caller can re-issue requests", async () => {
  await using fake = await FakeDiscord.start();
  await using c = gatewayClient(fake);
  c.client.connect();
  await fake.waitSession(1);
  fake.current.send({ op: 9, d: false });
  await fake.until(() => c.sessions.length === 2, 3000, "second session");
  assert.deepEqual(c.sessions, ["ready", "ready"]);
  await c.client.close();
  assert.equal(c.client.send(8, { guild_id: "1" }), false, "a closed client refuses frames");
});

Deno.test("gateway 13.6: at most sendLimit frames arrive in any window, across reconnects", async () => {
  await using fake = await FakeDiscord.start({ heartbeatIntervalMs: 10_000 });
  await using c = gatewayClient(fake, { timing: { sendLimit: 12, sendWindowMs: 600 } });
  // Count frames when the client hands them to its socket: arrival times at the fake add the
  // loaded machine's scheduling jitter, which is not the client's doing.
  const sentAt: Received[] = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data) {
    if (typeof data === "string" && data.includes('"op":8')) {
      sentAt.push({ conn: 0, payload: { op: 8 }, at: Date.now() });
    }
    return send.call(this, data);
  };
  try {
    c.client.connect();
    await fake.waitSession(1);
    for (let i = 0; i < 40; i++) c.client.send(8, { guild_id: "1", nonce: `n${i}` });
    await fake.until(() => fake.ops(8).length >= 15, 5000, "a second window");
    fake.current.send({ op: 7, d: null }); // a new connection does not get a fresh budget
    await fake.until(() => fake.ops(8).length === 40, 8000, "all frames");
  } finally {
    WebSocket.prototype.send = send;
  }
  assert.equal(sentAt.length, 40);
  const worst = maxInWindow(sentAt, 600);
  assert.ok(worst <= 12, `${worst} frames were sent within one 600 ms window`);
});

Deno.test("gateway 13.6: the heartbeat reserve follows the interval, so a flood never starves heartbeats", async () => {
  // 200 ms beats need ~11 frames per 2 s window; a fixed reserve of 4 would leave them 4.
  await using fake = await FakeDiscord.start({ heartbeatIntervalMs: 200 });
  await using c = gatewayClient(fake, { timing: { sendLimit: 40, sendWindowMs: 2000 } });
  // Every frame, counted when the client hands it to its socket.
  const sentAt: Received[] = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data) {
    if (typeof data === "string" && /"op":(1|8)\b/.test(data)) {
      sentAt.push({ conn: 0, payload: { op: 0 }, at: Date.now() });
    }
    return send.call(this, data);
  };
  try {
    c.client.connect();
    await fake.waitSession(1);
    for (let i = 0; i < 100; i++) c.client.send(8, { guild_id: "1", nonce: `n${i}` });
    // Waiting on counts, not on the clock: a loaded machine only makes this take longer.
    await fake.until(
      () => fake.ops(1).length >= 8 && fake.ops(8).length >= 20,
      20_000,
      "8 heartbeats and 20 data frames",
    );
  } finally {
    WebSocket.prototype.send = send;
  }
  assert.equal(c.lines(/zombie/).length, 0, "no heartbeat was starved into a zombie reconnect");
  assert.equal(fake.conns.length, 1);
  assert.ok(maxInWindow(sentAt, 2000) <= 40, "the budget held");
});
Deno.test("gateway 13.4: the send queue is bounded; beyond maxQueuedFrames send refuses, logged", async () => {
  await using fake = await FakeDiscord.start();
  await using c = gatewayClient(fake, { maxQueuedFrames: 3 });
  // Before any session every data frame waits in the queue.
  for (let i = 0; i < 3; i++) {
    assert.equal(c.client.send(8, { guild_id: "1", nonce: `n${i}` }), true);
  }
  assert.equal(c.client.send(8, { guild_id: "1", nonce: "n3" }), false);
  assert.equal(c.client.send(8, { guild_id: "1", nonce: "n0b" }, { key: "k" }), false);
  assert.equal(c.lines(/send queue full/).length, 2);
  assert.equal(c.client.queued, 3);
  c.client.connect();
  await fake.until(() => fake.ops(8).length === 3, 3000, "the queued frames");
  assert.deepEqual(fake.ops(8).map((r) => r.payload.d.nonce), ["n0", "n1", "n2"]);
  const order = fake.conns[0].received.map((p) => p.op).filter((op) => op !== 1);
  assert.deepEqual(order, [2, 8, 8, 8], "IDENTIFY first, data only after READY");
});
