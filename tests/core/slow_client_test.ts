// The slow-client rule on a fake clock: the hard cap, the grace period (and its reset), and a
// server-join in flight, without waiting on real time.
import assert from "node:assert/strict";
import { SlowClientRule } from "../../src/_slow_client.ts";

const MB = 1_000_000;
const limits = {
  highWaterBytes: 4 * MB,
  slowGraceMs: 2000,
  maxBufferedBytes: 16 * MB,
  joinMinBytesPerSecond: 1 * MB,
};

function rule() {
  const clock = { now: 0 };
  return { clock, rule: new SlowClientRule(limits, () => clock.now) };
}

Deno.test("slow client: a send past the cap drops at once, whatever the clock", () => {
  const { rule: r } = rule();
  assert.equal(r.check(16 * MB - 10, 10), null, "exactly at the cap is allowed");
  assert.equal(r.check(16 * MB - 10, 11), "(hard limit)");
});

Deno.test("slow client: behind for the grace period drops; catching up in between resets it", () => {
  const { clock, rule: r } = rule();
  assert.equal(r.check(5 * MB, 1), null, "behind: the grace starts");
  clock.now = 1500;
  assert.equal(r.check(3 * MB, 1), null, "under the high-water mark: the grace resets");
  clock.now = 2500;
  assert.equal(r.check(5 * MB, 1), null, "behind again: a new grace from 2500");
  clock.now = 4499;
  assert.equal(r.check(5 * MB, 1), null);
  clock.now = 4500;
  assert.equal(r.check(5 * MB, 1), "for 2000 ms");
});

Deno.test("slow client: a big join in flight is not behind until it is out or overdue", () => {
  const { clock, rule: r } = rule();
  const join = 13 * MB; // a 100,000-member guild
  r.joinSent(join);
  assert.equal(r.joinInFlight, true);
  // Both limits are raised by the join's size: 17 MB queued is fine, past 29 MB is not.
  assert.equal(r.check(17 * MB, 1000), null);
  assert.equal(r.check(29 * MB, 1), "(hard limit)");
  // Read at a sane speed, it stays for its whole allowance (2 s + 13 s at 1 MB/s)...
  clock.now = 14_000;
  assert.equal(r.check(10 * MB, 1000), null);
  // ...and once it is out (back under the high-water mark) the allowance is gone.
  clock.now = 14_500;
  assert.equal(r.check(3 * MB, 1000), null);
  assert.equal(r.joinInFlight, false);
  assert.equal(r.check(16 * MB, 1), "(hard limit)", "normal limits again");
});

Deno.test("slow client: a join never read is dropped when it is overdue", () => {
  const { clock, rule: r } = rule();
  r.joinSent(13 * MB);
  clock.now = 15_000;
  assert.equal(r.check(13 * MB, 0), null, "due at 2 s + 13 s");
  clock.now = 15_001;
  assert.equal(r.check(13 * MB, 0), "(join overdue)");
});

Deno.test("slow client: `calm` is exactly when a new rule passes and stays new (so none need exist)", () => {
  const values = [0, 1, 4 * MB - 1, 4 * MB, 4 * MB + 1, 12 * MB, 16 * MB - 1, 16 * MB, 17 * MB];
  for (const factor of [undefined, 1.7]) {
    const l = { ...limits, memoryFactor: factor };
    for (const buffered of values) {
      for (const bytes of [0, 1, MB]) {
        const fresh = new SlowClientRule(l, () => 0);
        const passes = fresh.check(buffered, bytes) === null && fresh.idle;
        assert.equal(SlowClientRule.calm(l, buffered, bytes), passes, `${buffered} + ${bytes}`);
      }
    }
  }
});

Deno.test("slow client: a rule is idle only when behind for no time and no join is in flight", () => {
  const { clock, rule: r } = rule();
  assert.ok(r.idle);
  r.check(5 * MB, 0); // behind: the grace clock runs
  assert.ok(!r.idle);
  r.check(0, 0); // caught up
  assert.ok(r.idle);
  r.joinSent(8 * MB);
  assert.ok(!r.idle, "a join in flight");
  clock.now = 100;
  r.check(0, 0); // the join is out
  assert.ok(r.idle);
});
