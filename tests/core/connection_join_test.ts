// A join that leaves at once is not "in flight": no slow-client state is kept for it and
// nothing watches it drain; one still queued in the runtime is (and is allowed its size).
import assert from "node:assert/strict";
import { ChargeLedger } from "../../src/_charge.ts";
import { Connection, type ConnectionHandler } from "../../src/_connection.ts";
import { Logger } from "../../src/log.ts";
import { Metrics } from "../../src/_metrics.ts";
import type { WsPeer } from "../../src/transport/types.ts";

const limits = {
  maxFrameBytes: 4096,
  ratePerSecond: 10,
  rateBurst: 10,
  rateStrikes: 3,
  joinTimeoutMs: 0,
  openTimeoutMs: 10_000,
  highWaterBytes: 1000,
  slowGraceMs: 10_000,
  maxBufferedBytes: 100_000,
  joinMinBytesPerSecond: 1_000_000,
};

/** A socket that keeps `left` of every frame unsent. */
function peer(left: number): WsPeer & { sent: string[] } {
  let buffered = 0;
  return {
    sent: [],
    send(frame) {
      this.sent.push(frame);
      buffered += Math.min(left, frame.length);
    },
    get bufferedAmount() {
      return buffered;
    },
    isOpen: true,
    close() {},
    terminate: () => false,
  };
}

function connection(p: WsPeer): Connection {
  const handler: ConnectionHandler = {
    open: () => Promise.resolve(),
    connect: () => Promise.resolve(),
  };
  const ledger = new ChargeLedger({ slots: 10, bytes: 10_000_000, quarantineMs: 0, factor: 1 });
  const conn = new Connection(
    "c1",
    "192.0.2.1",
    limits,
    handler,
    { leave() {}, release() {} },
    { take: () => true, join: () => true, login: () => true, settle() {} },
    ledger.open("192.0.2.1"),
    new Logger("silent"),
    new Metrics(),
  );
  conn.open(p);
  return conn;
}

Deno.test("a join the runtime sent at once is not in flight", () => {
  const p = peer(0);
  const conn = connection(p);
  const join = "x".repeat(50_000);
  assert.equal(conn.sendJoin(join, join.length), true);
  assert.equal(p.sent.at(-1), join);
  assert.equal(conn.joinInFlight, false);
  assert.equal(conn.joinUnsent, false);
});

Deno.test("a join still queued in the runtime stays in flight, and counts as not behind", () => {
  const p = peer(40_000);
  const conn = connection(p);
  const join = "x".repeat(50_000);
  assert.equal(conn.sendJoin(join, join.length), true);
  assert.equal(conn.joinInFlight, true);
  assert.equal(conn.joinUnsent, true);
  // 40,000 unsent bytes are far above the high-water mark, but they are the join's own.
  assert.equal(conn.deliver("y", 1), true);
  assert.equal(conn.closed, false);
});
