// The open and join deadlines are checked by the server's one periodic sweep, not by timers made
// per connection: on a fake clock, admitted and opened connections leave no timer behind, and a
// connection is forgotten (never opened) or closed with 1008 (never joined) by the first sweep at
// or after its deadline, not before; a joined one stays. The same sweep lets go of rate buckets
// that are full again, and a connection's rate limit is the same as if it had kept them.
import assert from "node:assert/strict";
import { Admission } from "../../src/_admission.ts";
import type { Connection, ConnectionHandler } from "../../src/_connection.ts";
import { Hub } from "../../src/_hub.ts";
import { Logger, type LogRecord } from "../../src/log.ts";
import { Metrics } from "../../src/_metrics.ts";
import { parseOptions } from "../../src/options.ts";
import { ERRORS } from "../../src/protocol.ts";
import type { WsPeer } from "../../src/transport/types.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

const OPEN_MS = 400;
const JOIN_MS = 1000;

/** A peer like Deno's: it cannot terminate, and records the close it was asked for. */
function fakePeer(): WsPeer & { closedWith?: [number, string]; sent: string[] } {
  const peer: WsPeer & { closedWith?: [number, string]; sent: string[] } = {
    sent: [],
    send(frame) {
      peer.sent.push(frame);
    },
    bufferedAmount: 0,
    isOpen: true,
    close(code, reason) {
      peer.closedWith = [code, reason];
    },
    terminate: () => false,
  };
  return peer;
}

function setup(joinTimeoutMs = JOIN_MS, rate: { ratePerSecond?: number; rateBurst?: number } = {}) {
  const lines: LogRecord[] = [];
  const metrics = new Metrics();
  const handler: ConnectionHandler = {
    open: () => Promise.resolve(),
    connect: () => Promise.resolve(),
  };
  const admission = new Admission(
    parseOptions({ openTimeoutMs: OPEN_MS, joinTimeoutMs, maxConnectionsPerIp: 1000, ...rate }),
    new Hub<Connection>(),
    handler,
    new Logger("warn", (r) => lines.push(r)),
    metrics,
  );
  const admit = (i: number) => admission.admit({ address: `10.0.0.${i}`, key: `10.0.0.${i}` });
  return { admission, admit, lines, metrics };
}

Deno.test("deadlines: admitting and opening connections starts no timer", () => {
  using time = new FakeTime({ timers: true });
  const { admit } = setup();
  for (let i = 0; i < 50; i++) {
    const conn = admit(i);
    if (i % 2) conn.open(fakePeer());
  }
  assert.equal(time.pending, 0, "a timer per connection");
});

Deno.test("deadlines: a socket that never opens is forgotten by the first sweep at its open deadline", async () => {
  using time = new FakeTime({ timers: true });
  const { admission, admit, lines } = setup();
  admit(1);
  await time.tick(OPEN_MS - 1);
  admission.sweep();
  assert.equal(admission.size, 1, "forgotten before its deadline");
  await time.tick(1);
  admission.sweep();
  assert.equal(admission.size, 0, "still counted after its deadline");
  assert.deepEqual(lines.map((l) => l.message), [
    `forgotten: socket did not open within ${OPEN_MS} ms`,
  ]);
});

Deno.test("deadlines: an open connection that never joins is closed with 1008 at its join deadline; a joined one stays", async () => {
  using time = new FakeTime({ timers: true });
  const { admission, admit, metrics } = setup();
  const idle = fakePeer();
  const member = fakePeer();
  await time.tick(OPEN_MS - 1); // opening late leaves the open deadline behind
  admit(1).open(idle);
  const joiner = admit(2);
  joiner.open(member);
  await time.tick(JOIN_MS - 1);
  joiner.joined();
  admission.sweep();
  assert.equal(idle.closedWith, undefined, "closed before its join deadline");
  await time.tick(1);
  admission.sweep();
  assert.deepEqual(idle.closedWith, [1008, "Join timeout"]);
  assert.equal(metrics.closedForAbuse, 1);
  await time.tick(60_000);
  admission.sweep();
  assert.equal(member.closedWith, undefined, "a joined connection has no join deadline");
});

Deno.test("deadlines: joinTimeoutMs 0 never closes an open connection", async () => {
  using time = new FakeTime({ timers: true });
  const { admission, admit } = setup(0);
  const peer = fakePeer();
  admit(1).open(peer);
  await time.tick(3_600_000);
  admission.sweep();
  assert.equal(peer.closedWith, undefined);
  assert.equal(admission.size, 1);
});

Deno.test("rate buckets: the sweep lets go only of full ones; the limit is unchanged", async () => {
  using time = new FakeTime({ timers: true });
  const { admission, admit } = setup(0, { ratePerSecond: 1, rateBurst: 3 });
  const peer = fakePeer();
  const conn = admit(1);
  conn.open(peer);
  const connect = JSON.stringify({ type: "connect", data: { server: "dworld" } });
  const refusals = () => peer.sent.filter((f) => f.includes(ERRORS.rateLimited)).length;
  const burst = async (n: number) => {
    for (let i = 0; i < n; i++) conn.message(connect);
    await time.tick(0);
  };
  await burst(4);
  assert.equal(refusals(), 1, "the fourth frame of a burst of three is refused");
  await time.tick(1500); // 1.5 tokens back: not full
  admission.sweep();
  await burst(2);
  assert.equal(refusals(), 2, "a bucket that was not full was kept (one token, not three)");
  await time.tick(10_000); // full again
  admission.sweep();
  await burst(4);
  assert.equal(refusals(), 3, "a full bucket let go behaves as a new one: three, then refused");
});

Deno.test("rate strikes: a client calm until its bucket is full again is forgiven its old refusals", async () => {
  using time = new FakeTime({ timers: true });
  const lines: LogRecord[] = [];
  const admission = new Admission(
    parseOptions({ joinTimeoutMs: 0, ratePerSecond: 1, rateBurst: 3, rateStrikes: 2 }),
    new Hub<Connection>(),
    { open: () => Promise.resolve(), connect: () => Promise.resolve() },
    new Logger("warn", (r) => lines.push(r)),
    new Metrics(),
  );
  const peer = fakePeer();
  const conn = admission.admit({ address: "10.0.0.1", key: "10.0.0.1" });
  conn.open(peer);
  const connect = JSON.stringify({ type: "connect", data: { server: "dworld" } });
  // Five bursts, each one frame over the burst of three, calm in between: five refusals in all,
  // more than rateStrikes, but never more than one since the client was last calm.
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 4; i++) conn.message(connect);
    await time.tick(10_000);
    admission.sweep();
  }
  assert.equal(peer.sent.filter((f) => f.includes(ERRORS.rateLimited)).length, 5);
  assert.equal(peer.closedWith, undefined, "closed for refusals spread over calm periods");
  // Refusals in a row still close it.
  for (let i = 0; i < 6; i++) conn.message(connect);
  // The close waits for the answers queued before it, each a turn of the task pump.
  for (let i = 0; i < 10; i++) await time.tick(20);
  assert.deepEqual(lines.map((l) => l.message), ["closing: 3 frames over the rate limit"]);
  assert.deepEqual(peer.closedWith, [1008, "Rate limit exceeded"]);
});
