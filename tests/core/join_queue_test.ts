// The join queue on a fake clock: first come first served (a small join never overtakes a big
// one that waits), served as bytes drain, bounded, closed sockets leave it, the wait histogram
// counts every join, and a join larger than the whole budget still goes once the rest drained.
import assert from "node:assert/strict";
import { JoinQueue, type Turn } from "../../src/_join_queue.ts";
import { Metrics } from "../../src/_metrics.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { budgetQueue, joiner } from "../_fixtures/join_queue.ts";

Deno.test("join queue: FIFO under the budget, served as bytes drain, bounded", async () => {
  using time = new FakeTime({ timers: true });
  const { queue: q, metrics, setUnsent } = budgetQueue(100, 3);
  const first = await q.enter(joiner(), 60);
  assert.ok(first.go);
  setUnsent(60);
  first.done();
  const order: string[] = [];
  const track = (name: string, p: Promise<Turn>) =>
    p.then((t) => {
      order.push(`${name}:${t.go ? "go" : t.why}`);
      return t;
    });
  const big = track("big", q.enter(joiner(), 50)); // 60 + 50 > 100: waits
  const small = track("small", q.enter(joiner(), 10)); // would fit, but waits behind big
  let told = 0; // waiting is not idling: the queue lifts the join deadline of whoever waits
  const gone = { ...joiner(), joined: () => told++ };
  const leaver = track("leaver", q.enter(gone, 10));
  assert.equal(q.length, 3);
  assert.equal((await q.enter(joiner(), 1)).go, false); // the queue is full
  assert.equal(told, 1);
  assert.equal(metrics.joinsRefusedBusy, 1);
  await time.tick(100);
  assert.deepEqual(order, []); // nothing drained: nobody goes, the small one does not overtake
  gone.isOpen = false;
  setUnsent(0); // drained
  await time.tick(20);
  await big;
  await small;
  await leaver;
  assert.deepEqual(order, ["leaver:gone", "big:go", "small:go"]); // a closed socket leaves first
  assert.equal(q.length, 0);
  assert.equal(metrics.joinWaitCount, 3); // first, big, small
  assert.equal(metrics.joinWaitBuckets[0], 1); // the first did not wait
  assert.equal(metrics.joinWaitBuckets.reduce((a, b) => a + b, 0), 3);
  for (const t of [await big, await small]) if (t.go) t.done();
  q.close();
});

Deno.test("join queue: a join bigger than the budget goes once the rest has drained", async () => {
  using time = new FakeTime({ timers: true });
  const { queue: q, setUnsent } = budgetQueue(100, 10, { unsent: 60 });
  const seen: { turn?: Turn } = {};
  q.enter(joiner(), 500).then((t) => seen.turn = t);
  await time.tick(20);
  assert.ok(seen.turn === undefined); // 60 unsent: a quarter of the budget is not free yet
  setUnsent(25);
  await time.tick(20);
  const turn = seen.turn as Turn | undefined; // set by the queue since the assertion above
  assert.equal(turn?.go, true);
  if (turn?.go) turn.done();
  q.close();
});

Deno.test("join queue: close lets every waiter go", async () => {
  using _time = new FakeTime({ timers: true });
  const { queue: q } = budgetQueue(10, 10, { unsent: 10 });
  const waiting = q.enter(joiner(), 5);
  q.close();
  assert.deepEqual(await waiting, { go: false, why: "gone" });
});

Deno.test("join queue: a decision reads the tracked sum, never the full measure; joins on their way are looked at", async () => {
  using time = new FakeTime({ timers: true });
  let tracked = 0;
  let measured = 0;
  let reads = 0;
  const metrics = new Metrics();
  const q = new JoinQueue(
    { maxTotalBufferedBytes: 100, joinQueueLength: 10 },
    () => (reads++, tracked),
    metrics,
    { measure: () => (measured++, 1234) },
  );
  // A joiner whose join drains as the queue looks at it (its sweep updates the tracked sum).
  let left = 0;
  const inFlight = {
    isOpen: true,
    get joinInFlight() {
      return left > 0;
    },
    sweep() {
      left = Math.max(0, left - 30);
      tracked = left;
    },
    joined() {},
  };
  const first = await q.enter(inFlight, 90);
  assert.ok(first.go);
  left = tracked = 90; // sent
  first.done();
  const order: number[] = [];
  // Each of these is out at once when sent (not on its way): only the first join holds bytes.
  const waits = [1, 2, 3].map((i) =>
    q.enter(joiner(), 50).then((t) => {
      order.push(i);
      if (t.go) t.done();
      return t;
    })
  );
  await time.tick(20); // 60 left: 60 + 50 does not fit
  assert.deepEqual(order, []);
  await time.tick(20); // 30 left: they go, in order
  await Promise.all(waits);
  assert.deepEqual(order, [1, 2, 3]);
  assert.equal(measured, 0); // decisions never walked every socket
  assert.ok(reads > 0);
  assert.equal(q.unsentBytes(), 1234); // the gauge measures
  assert.equal(metrics.unsentBytes, 1234);
  q.close();
});

Deno.test("join queue: the first join at least as big as told is reported once", async () => {
  using _time = new FakeTime({ timers: true });
  const told: number[] = [];
  const { queue: q } = budgetQueue(1e9, 10, {
    onBigJoin: (bytes) => told.push(bytes),
    bigJoinBytes: 1000,
  });
  for (const bytes of [999, 5000, 7000]) {
    const t = await q.enter(joiner(), bytes);
    if (t.go) t.done();
  }
  assert.deepEqual(told, [5000]);
  q.close();
});
