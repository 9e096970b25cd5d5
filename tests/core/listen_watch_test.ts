// The Node transport's listener watch (Deno's node:net may stop accepting without telling): when
// it calls for a new listener, by order and outcome on a fake clock.
import assert from "node:assert/strict";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { watchListener } from "../../src/transport/_listen_watch.ts";

function setup() {
  const state = {
    queued: 0 as number | undefined,
    accepted: 0,
    belowCap: true,
    relisten: [] as number[],
  };
  const stop = watchListener({
    queued: () => state.queued,
    accepted: () => state.accepted,
    belowCap: () => state.belowCap,
    relisten: (q) => state.relisten.push(q),
    periodMs: 1000,
  });
  return { state, stop };
}

Deno.test("listen watch: connections waiting a whole period with none accepted: listen again, once", async () => {
  using time = new FakeTime({ timers: true });
  const { state, stop } = setup();
  await time.tick(1000);
  state.queued = 3;
  await time.tick(1000); // may have just arrived
  assert.deepEqual(state.relisten, []);
  await time.tick(1000); // waited a whole period
  assert.deepEqual(state.relisten, [3]);
  // Counted afresh after a new listener: one more whole period before the next call.
  await time.tick(1000);
  assert.deepEqual(state.relisten, [3]);
  await time.tick(1000);
  assert.deepEqual(state.relisten, [3, 3]);
  stop();
  await time.tick(5000);
  assert.deepEqual(state.relisten, [3, 3], "stopped");
});

Deno.test("listen watch: a listener that accepts, an empty queue, a full server or an unreadable table is left alone", async () => {
  using time = new FakeTime({ timers: true });
  const { state, stop } = setup();
  state.queued = 5;
  for (let i = 0; i < 5; i++) {
    state.accepted++; // busy, but accepting
    await time.tick(1000);
  }
  state.belowCap = false; // at its cap the server drops what it accepts: nothing is counted
  await time.tick(3000);
  state.belowCap = true;
  state.queued = undefined;
  await time.tick(3000);
  state.queued = 0;
  await time.tick(3000);
  assert.deepEqual(state.relisten, []);
  // The same queue, no accepts: now it is stuck.
  state.queued = 2;
  await time.tick(2000);
  assert.deepEqual(state.relisten, [2]);
  stop();
});
