// Unit tests for the small counting pieces: the token bucket, UTF-8 length, the hub's rooms.
import assert from "node:assert/strict";
import { TokenBucket, utf8Length } from "../../src/_limits.ts";
import { Hub } from "../../src/_hub.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

Deno.test("unit: token bucket refills at its rate and never past its burst", () => {
  const b = new TokenBucket(10, 3, 0);
  assert.equal(
    [b.take(1, 0), b.take(1, 0), b.take(1, 0), b.take(1, 0)].join(),
    "true,true,true,false",
  );
  assert.equal(b.take(1, 50), false, "half a token after 50 ms");
  assert.equal(b.take(1, 100), true, "one token after 100 ms");
  assert.equal(b.full(10_000), true);
  assert.equal(b.take(4, 10_000), false, "never more than the burst");
  assert.equal(b.take(3, 10_000), true);
});

Deno.test("unit: utf8Length matches TextEncoder, surrogates included", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a😀b", "\ud800", "\udc00x", "x\ud83d", "日本語"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
  }
});

Deno.test("unit: hub rooms, moves, activity events and fan-out counts", () => {
  const events: string[] = [];
  const hub = new Hub((id, active) => events.push(`${id}:${active}`));
  const got: string[] = [];
  const sub = (name: string, ok = true) => ({
    deliver: (f: string, bytes: number) => {
      got.push(`${name}<${f}:${bytes}`);
      return ok;
    },
  });
  const a = sub("a"), b = sub("b"), dead = sub("dead", false);
  hub.join(a, "1");
  hub.join(b, "1");
  hub.join(dead, "1");
  assert.equal(hub.publish("1", "é"), 2, "only delivered frames count");
  assert.deepEqual(got, ["a<é:2", "b<é:2", "dead<é:2"]);
  hub.join(a, "2");
  assert.equal(hub.roomOf(a), "2");
  hub.leave(b);
  hub.leave(dead);
  hub.leave(a);
  assert.equal(hub.publish("1", "x"), 0);
  assert.deepEqual(events, ["1:true", "2:true", "1:false", "2:false"]);
});

Deno.test("test clock: FakeTime freezes the clocks, runs fake timers in time order, restores all", async () => {
  const realTimeout = globalThis.setTimeout;
  const ran: string[] = [];
  {
    using time = new FakeTime({ timers: true });
    const t0 = performance.now();
    const d0 = Date.now();
    setTimeout(() => ran.push(`b@${performance.now() - t0}`), 20);
    setTimeout(() => ran.push(`a@${performance.now() - t0}`), 10);
    const every = setInterval(() => ran.push(`i@${performance.now() - t0}`), 15);
    const cancelled = setTimeout(() => ran.push("never"), 5);
    clearTimeout(cancelled);
    assert.equal(performance.now(), t0, "frozen until ticked");
    await time.tick(30);
    clearInterval(every);
    await time.tick(100);
    assert.deepEqual(ran, ["a@10", "i@15", "b@20", "i@30"]);
    assert.equal(Date.now() - d0, 130);
    assert.equal(time.pending, 0);
  }
  assert.equal(globalThis.setTimeout, realTimeout, "the real timers are back");
  assert.equal(
    Object.getOwnPropertyDescriptor(performance, "now"),
    undefined,
    "the real clock is back",
  );
});
