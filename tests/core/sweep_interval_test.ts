// docs/operating.md: every connection is checked on a timer, every `slowClientGraceMs / 4`, between
// 50 and 500 ms. On a fake clock: the sweeps fall exactly on that interval, clamped at both ends.
import assert from "node:assert/strict";
import { sweepSlowClients } from "../../src/_slow_client.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

async function sweepTimes(slowGraceMs: number, overMs: number): Promise<number[]> {
  using time = new FakeTime({ timers: true });
  const start = time.now;
  const at: number[] = [];
  const stop = sweepSlowClients(
    (fn) => fn({ sweep: () => at.push(time.now - start) }),
    slowGraceMs,
  );
  await time.tick(overMs);
  stop();
  assert.equal(time.pending, 0, "stop() clears the timer");
  return at;
}

Deno.test("slow-client sweep: every slowClientGraceMs / 4, never under 50 ms nor over 500 ms", async () => {
  assert.deepEqual(await sweepTimes(1000, 1000), [250, 500, 750, 1000]);
  assert.deepEqual(await sweepTimes(100, 200), [50, 100, 150, 200], "25 ms clamped to 50");
  assert.deepEqual(await sweepTimes(10_000, 1500), [500, 1000, 1500], "2.5 s clamped to 500 ms");
});
