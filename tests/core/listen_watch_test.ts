// The Node transport's listener watch (Deno's node:net may stop accepting without telling): when
// it calls for a new listener, and how a failed re-listen is retried, by order and outcome on a
// fake clock.
import assert from "node:assert/strict";
import { type AddressInfo, createServer } from "node:net";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { keepAccepting, watchListener } from "../../src/transport/_listen_watch.ts";

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

Deno.test("keep accepting: a re-listen that fails is tried again after its back-off, and the listener serves again", async () => {
  // Real timers for the hang guard: the fake clock below replaces the global ones.
  const realSetTimeout = setTimeout;
  const realClearTimeout = clearTimeout;
  const server = createServer((socket) => socket.end("hi"));
  await new Promise<void>((r) => server.listen({ port: 0, host: "127.0.0.1" }, r));
  const { port } = server.address() as AddressInfo;
  // The first re-listen finds the port taken: a listener elsewhere grabs it the moment the old
  // one lets go.
  let blocker: Deno.Listener | undefined;
  let listens = 0;
  // A listen sooner than the back-off (100 ms of the fake clock) after the one before is counted
  // and not passed on: a build that retried at once would otherwise spin on EADDRINUSE through
  // the event queue and starve every timer, and the test would hang instead of failing.
  let early = 0;
  let lastListen = -Infinity;
  const listen = server.listen.bind(server);
  server.listen = ((...args: Parameters<typeof server.listen>) => {
    listens++;
    const now = performance.now();
    if (now - lastListen < 100) {
      early++;
      return server;
    }
    lastListen = now;
    if (listens === 1) blocker = Deno.listen({ hostname: "127.0.0.1", port });
    return listen(...args);
  }) as typeof server.listen;

  const logs: string[] = [];
  let heard: { re: RegExp; resolve: () => void } | undefined;
  const hear = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      if (logs.some((l) => re.test(l))) return resolve();
      const guard = realSetTimeout(() => reject(new Error(`never logged ${re}: ${logs}`)), 10_000);
      heard = {
        re,
        resolve: () => {
          realClearTimeout(guard);
          resolve();
        },
      };
    });
  const log = (message: string) => {
    logs.push(message);
    if (heard?.re.test(message)) heard.resolve();
  };

  using time = new FakeTime({ timers: true });
  let queued = 0;
  const stop = keepAccepting(server, port, "127.0.0.1", log, {
    periodMs: 1000,
    queued: () => queued,
  });
  try {
    queued = 2; // connections wait, none is accepted
    await time.tick(2000);
    assert.match(logs[0], /stopped accepting \(2 connections waiting\)/);
    assert.equal(listens, 1);
    assert.ok(blocker, "the port was free to take once the old listener closed");
    await hear(/failed/);
    assert.equal(early, 0, "a failed re-listen was retried at once, with no back-off");
    assert.match(
      logs[1],
      new RegExp(`listening again on port ${port} failed \\(listen EADDRINUSE.*next try in 100 ms`),
    );
    blocker.close();
    await time.tick(99);
    assert.equal(listens, 1, "not before its back-off");
    await time.tick(1);
    assert.equal(listens, 2);
    assert.equal(early, 0);
    await hear(new RegExp(`^listening again on port ${port}$`));
    assert.equal(logs.length, 3, logs.join("\n"));
    assert.ok(server.listening);
    // Served again, on the same port.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const got = new Uint8Array(2);
    let n = 0;
    while (n < 2) {
      n += (await conn.read(got.subarray(n))) ?? assert.fail("closed before the answer");
    }
    conn.close();
    assert.equal(new TextDecoder().decode(got), "hi");
  } finally {
    stop();
    await new Promise((r) => server.close(r));
  }
});
