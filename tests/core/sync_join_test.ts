// A `connect` whose server list, user map and client id are cached, with room in the outbound
// budget, is answered within the task that received it, as a bare server answers: the
// `server-join` leaves before any microtask queued before the frame runs. Anything not cached,
// or a join budget without room, still goes the asynchronous way and ends the same.
import assert from "node:assert/strict";
import { ChargeLedger } from "../../src/_charge.ts";
import { Connection } from "../../src/_connection.ts";
import { CallbackRunner } from "../../src/_callback_runner.ts";
import { Directory } from "../../src/_directory.ts";
import { ProtocolHandler } from "../../src/_handler.ts";
import { Hub } from "../../src/_hub.ts";
import { Logger } from "../../src/log.ts";
import { Metrics } from "../../src/_metrics.ts";
import type { DataSource } from "../../src/source.ts";
import type { WsPeer } from "../../src/transport/types.ts";
import { budgetQueue, joiner as idleJoiner } from "../_fixtures/join_queue.ts";

const SERVER = "123456789012345678";
const limits = {
  maxFrameBytes: 4096,
  ratePerSecond: 100,
  rateBurst: 100,
  rateStrikes: 3,
  joinTimeoutMs: 0,
  openTimeoutMs: 10_000,
  highWaterBytes: 1_000_000,
  slowGraceMs: 10_000,
  maxBufferedBytes: 10_000_000,
  joinMinBytesPerSecond: 1_000_000,
};

function setup(source: Partial<DataSource>, maxTotalBufferedBytes = 1 << 30) {
  const log = new Logger("silent");
  const metrics = new Metrics();
  const full: DataSource = {
    getServerData: () => ({ [SERVER]: { id: "s", name: "S", default: true } }),
    getUserData: () => ({ "1": { username: "one", status: "online" } }),
    ...source,
  };
  const directory = new Directory(full, new CallbackRunner(5000, log, metrics), 60_000, log);
  const hub = new Hub<Connection>();
  const { queue, setUnsent } = budgetQueue(maxTotalBufferedBytes, 10, { metrics });
  const handler = new ProtocolHandler(directory, hub, log, metrics, queue);
  const ledger = new ChargeLedger({ slots: 10, bytes: 10_000_000, quarantineMs: 0, factor: 1 });
  let n = 0;
  const order: string[] = [];
  const open = () => {
    const id = `c${++n}`;
    const conn = new Connection(
      id,
      "192.0.2.1",
      limits,
      handler,
      { leave: (c) => hub.leave(c), release() {} },
      { take: () => true, join: () => true, login: () => true, settle() {} },
      ledger.open("192.0.2.1"),
      log,
      metrics,
    );
    const peer: WsPeer = {
      send(frame) {
        order.push(`${id}:${JSON.parse(frame).type}`);
      },
      bufferedAmount: 0,
      isOpen: true,
      close() {},
      terminate: () => false,
    };
    conn.open(peer);
    return conn;
  };
  const connect = (conn: Connection) =>
    conn.message(JSON.stringify({ type: "connect", data: { server: "s" } }));
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
  };
  return {
    open,
    connect,
    settle,
    order,
    metrics,
    hub,
    queue,
    setUnsent,
  };
}

for (
  const [name, source] of [
    ["no getClientId", {}],
    ["a cached client id", { getClientId: () => "4242" }],
  ] as const
) {
  Deno.test(`sync join (${name}): everything cached, the server-join leaves before a microtask queued first`, async () => {
    const t = setup(source);
    const first = t.open();
    t.connect(first); // loads the list, the map and the client id
    await t.settle();
    assert.deepEqual(t.order, ["c1:server-list", "c1:server-join"]);
    assert.equal(t.metrics.joins, 1);

    const second = t.open();
    // The list is cached: it was sent in the open event itself.
    assert.deepEqual(t.order.slice(2), ["c2:server-list"]);
    queueMicrotask(() => t.order.push("microtask"));
    t.connect(second);
    t.order.push("after connect");
    await t.settle();
    assert.deepEqual(t.order.slice(3), ["c2:server-join", "after connect", "microtask"]);
    assert.equal(t.metrics.joins, 2);
    assert.equal(t.hub.roomOf(second), SERVER);
    t.queue.close();
  });
}

Deno.test("sync join: a client id not cached yet is waited for, then the join is the same", async () => {
  let asked = 0;
  // "None" is not cached (a source still starting): every join asks again, so none is synchronous.
  const t = setup({ getClientId: () => (asked++, undefined) });
  const first = t.open();
  t.connect(first);
  await t.settle();
  const second = t.open();
  queueMicrotask(() => t.order.push("microtask"));
  t.connect(second);
  t.order.push("after connect");
  await t.settle();
  assert.deepEqual(t.order.slice(3), ["after connect", "microtask", "c2:server-join"]);
  assert.equal(asked, 2);
  assert.equal(t.metrics.joins, 2);
  t.queue.close();
});

Deno.test("sync join: a budget without room queues the join (no synchronous answer), served as bytes drain", async () => {
  const t = setup({}, 1000);
  const first = t.open();
  t.connect(first);
  await t.settle();
  t.setUnsent(1000); // the budget is spent
  const second = t.open();
  t.connect(second);
  t.order.push("after connect");
  await t.settle();
  assert.deepEqual(t.order.slice(3), ["after connect"]);
  assert.equal(t.queue.length, 1);
  t.setUnsent(0);
  await new Promise((r) => setTimeout(r, 60)); // the queue polls every 20 ms
  await t.settle();
  assert.deepEqual(t.order.slice(3), ["after connect", "c2:server-join"]);
  assert.equal(t.metrics.joins, 2);
  t.queue.close();
});

Deno.test("sync join: tryEnter never overtakes a waiter, and counts its bytes until sent", async () => {
  const { queue: q, metrics } = budgetQueue(100, 5);
  const joiner = idleJoiner();
  assert.equal(q.tryEnter(60), true);
  // Granted and not yet sent: 60 + 60 > 100, so neither path lets a second through.
  assert.equal(q.tryEnter(60), false);
  const waiter = q.enter(joiner, 60);
  assert.equal(q.length, 1);
  q.sent(joiner, 60); // serves the waiter: the budget is free again
  const turn = await waiter;
  assert.ok(turn.go && turn.queued);
  // 10 bytes would fit beside the waiter's 60, but the waiter was first.
  const blocker = q.enter(joiner, 60);
  assert.equal(q.length, 1);
  assert.equal(q.tryEnter(10), false);
  turn.done();
  assert.ok((await blocker).go);
  assert.equal(metrics.joinWaitCount, 3);
  q.close();
});
