// The join path is warmed at start on a private copy of its machinery: the server's own hooks,
// metrics, logs and connection ids see nothing of it, and its first real viewer is served as
// before.
import assert from "node:assert/strict";
import { joined, startServer } from "../_fixtures/helpers.ts";
import { warmJoinPath } from "../../src/_warm.ts";

Deno.test("the warm-up touches none of the server's state, and the first viewer is c1", async () => {
  const calls: string[] = [];
  await using s = await startServer({
    callbacks: {
      getServerData: () => {
        calls.push("getServerData");
        return { "100000000000000001": { id: "mine", name: "Mine", default: true } };
      },
      getUserData: () => {
        calls.push("getUserData");
        return {};
      },
    },
  });
  // start() has warmed the join path (once per process) by now.
  assert.deepEqual(await warmJoinPath({ inMemory: 5, loopback: 5 }), { inMemory: 0, loopback: 0 });
  assert.deepEqual(calls, []);
  const m = s.server.metrics;
  assert.equal(m.connectionsTotal, 0);
  assert.equal(m.joins, 0);
  assert.equal(m.framesIn, 0);
  assert.equal(m.framesOut, 0);
  assert.deepEqual(m.callbacks, {});
  assert.equal(s.logs.filter((r) => r.conn !== undefined).length, 0);
  const c = await joined(s.url, "mine");
  c.close();
  assert.equal(s.server.metrics.joins, 1);
  assert.ok(s.logs.some((r) => r.conn === "c1"), "the first viewer is c1");
});
