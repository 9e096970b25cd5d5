// The Discord command's supervisor: failures that may pass are retried (cause in the log),
// a definite answer ends it once; nothing connects before begin().
import assert from "node:assert/strict";
import { type GatewayLike, GatewaySupervisor } from "../../src/discord/_supervisor.ts";

function fakeSource(outcome: () => Promise<void>, log: string[]): GatewayLike {
  let ready = false;
  return {
    getServerData: () => ({}),
    getUserData: () => ({}),
    start: async () => {
      log.push("start");
      await outcome();
      ready = true;
    },
    stop: () => {
      log.push("stop");
      return Promise.resolve();
    },
    get ready() {
      return ready;
    },
  };
}

const sink = { presence() {}, message() {}, clientId() {} } as never;

Deno.test("supervisor: network failures are retried with their cause logged, then ready", async () => {
  const log: string[] = [];
  const warnings: string[] = [];
  let attempt = 0;
  let readyCalls = 0;
  const s = new GatewaySupervisor({
    create: () =>
      fakeSource(() => {
        attempt++;
        if (attempt < 3) {
          return Promise.reject(
            new Error("fetch failed", { cause: new Error("dns error: failed to lookup address") }),
          );
        }
        return Promise.resolve();
      }, log),
    warn: (m) => warnings.push(m),
    onFatal: () => assert.fail("not fatal"),
    onReady: () => readyCalls++,
    retryBaseMs: 1,
  });
  await s.start(sink);
  assert.deepEqual(log, [], "nothing connects before begin()");
  assert.equal(s.state().state, "waiting");
  s.begin();
  for (let i = 0; i < 200 && readyCalls === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(readyCalls, 1);
  assert.equal(s.state().state, "ready");
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /fetch failed: caused by dns error: failed to lookup address/);
  assert.deepEqual(log, ["start", "stop", "start", "stop", "start"]);
  await s.stop();
});

Deno.test("supervisor: the wait doubles per failure up to its cap", async () => {
  const warnings: string[] = [];
  const s = new GatewaySupervisor({
    create: () => fakeSource(() => Promise.reject(new Error("connect ECONNREFUSED")), []),
    warn: (m) => warnings.push(m),
    onFatal: () => assert.fail("not fatal"),
    retryBaseMs: 1,
    retryMaxMs: 4,
  });
  await s.start(sink);
  s.begin();
  for (let i = 0; i < 200 && warnings.length < 5; i++) await new Promise((r) => setTimeout(r, 5));
  await s.stop();
  const waits = warnings.slice(0, 5).map((w) => Number(/retrying in (\d+) ms/.exec(w)![1]));
  assert.deepEqual(waits, [1, 2, 4, 4, 4]);
  assert.match(warnings[0], /ECONNREFUSED/);
});

Deno.test("supervisor: a rejected token ends it once, without a retry", async () => {
  const log: string[] = [];
  const fatal: Error[] = [];
  const s = new GatewaySupervisor({
    create: () =>
      fakeSource(() => Promise.reject(Object.assign(new Error("rejected"), { code: 4004 })), log),
    warn: () => assert.fail("no retry"),
    onFatal: (e) => fatal.push(e),
    retryBaseMs: 1,
  });
  await s.start(sink);
  s.begin();
  for (let i = 0; i < 200 && fatal.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fatal.length, 1);
  assert.equal(s.state().state, "failed");
  assert.deepEqual(log, ["start"]);
  await s.stop();
});
