// The gateway's outbound budget on a fake clock: how many frames leave in any window, and in what
// order, without a real sleep.
import assert from "node:assert/strict";
import { SendLimiter } from "../../src/discord/_send_limiter.ts";
import { maxInWindow } from "../_fixtures/fake_discord.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

Deno.test("send limiter: at most the limit per window, a reserve for control frames, which go first", async () => {
  using time = new FakeTime({ timers: true });
  const sent: Array<{ at: number; payload: string }> = [];
  const limiter = new SendLimiter(12, 600, (payload) => {
    sent.push({ at: Date.now(), payload });
    return true;
  });
  for (let i = 0; i < 40; i++) assert.equal(limiter.push(`d${i}`), true);
  // Data may use the budget less the reserve (1 of 12) at once; the rest waits for the window.
  assert.equal(sent.length, 11);
  limiter.control("heartbeat");
  assert.equal(sent.at(-1)?.payload, "heartbeat", "a control frame uses the reserve at once");
  await time.tick(649);
  assert.equal(sent.length, 12, "nothing more before the window and its guard have passed");
  await time.tick(1);
  assert.equal(sent.length, 23);
  await time.tick(5000);
  assert.equal(sent.filter((s) => s.payload.startsWith("d")).length, 40, "every frame went");
  assert.deepEqual(
    sent.filter((s) => s.payload.startsWith("d")).map((s) => s.payload),
    Array.from({ length: 40 }, (_, i) => `d${i}`),
    "in order",
  );
  assert.ok(maxInWindow(sent, 600) <= 12);
  assert.equal(limiter.queued, 0);
  assert.equal(time.pending, 0, "no timer left behind");
});

Deno.test("send limiter: a frame queued again under its key replaces the waiting one; a full queue refuses", async () => {
  using time = new FakeTime({ timers: true });
  const sent: string[] = [];
  let ready = false;
  const limiter = new SendLimiter(
    10,
    1000,
    (p) => {
      sent.push(p);
      return true;
    },
    () => ready,
    3,
  );
  assert.equal(limiter.push("a1", "a"), true);
  assert.equal(limiter.push("b", "b"), true);
  assert.equal(limiter.push("a2", "a"), true, "replaces a1 in place");
  assert.equal(limiter.push("c"), true);
  assert.equal(limiter.push("d"), false, "at most 3 wait");
  assert.deepEqual(sent, [], "no data frame before the session is ready");
  ready = true;
  limiter.flush();
  assert.deepEqual(sent, ["a2", "b", "c"]);
  limiter.clear();
  await time.tick(2000);
  assert.equal(time.pending, 0);
});
