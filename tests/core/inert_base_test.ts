// Callbacks that supply the data run over an inert base, never over the mock world: an operator
// whose guild id equals a mock id (232769614004748288, the id the docs use) must see only its own
// users. Instead of waiting for the mock's 4 s / 5 s timers, the test drives the server's own
// mock instance through its tick hooks (what its timers call) many times, then broadcasts a
// sentinel: delivery is in order, so any mock frame would arrive before the sentinel.
import assert from "node:assert/strict";
import { MockSource, type UserMap } from "../../mod.ts";
import { DWORLD, type Frame, joined, startServer } from "../_fixtures/helpers.ts";

const OWN: UserMap = {
  "900000000000000001": { username: "operator-user", status: "online", roleColor: "#123456" },
};

/** Every MockSource started while `fn` runs (the server makes its own). */
async function withMocksSeen<T>(fn: (mocks: MockSource[]) => Promise<T>): Promise<T> {
  const mocks: MockSource[] = [];
  const start = MockSource.prototype.start;
  MockSource.prototype.start = function (this: MockSource, ...args) {
    mocks.push(this);
    return start.apply(this, args);
  };
  try {
    return await fn(mocks);
  } finally {
    MockSource.prototype.start = start;
  }
}

/** Drive every seen mock as its timers would, for every mock server, many times. */
function tickAll(mocks: MockSource[]): void {
  const servers = Object.keys(new MockSource().getServerData());
  for (let i = 0; i < 50; i++) {
    for (const m of mocks) {
      for (const id of servers) {
        m.tickPresence(id);
        m.tickMessage(id);
      }
    }
  }
}

async function seesOnlyOwn(frames: () => Promise<Frame[]>): Promise<void> {
  const got = await frames();
  const uids = got.flatMap((f) => f.data?.uid === undefined ? [] : [f.data.uid]);
  assert.deepEqual(uids, ["900000000000000001"], JSON.stringify(got));
}

for (const when of ["in the options", "registered after construction"] as const) {
  Deno.test(`callbacks ${when} serving guild ${DWORLD}: a viewer sees no mock user or chat`, async () => {
    await withMocksSeen(async (mocks) => {
      const callbacks = {
        getServerData: () => ({ [DWORLD]: { id: "mine", name: "Mine", default: true } }),
        getUserData: () => OWN,
      };
      const s = await startServer(when === "in the options" ? { callbacks } : {});
      try {
        if (when !== "in the options") {
          s.server.onGetServerData(callbacks.getServerData).onGetUserData(callbacks.getUserData);
        }
        assert.equal(mocks.length, 1, "the server made its mock");
        await using viewer = await joined(s.url);
        const join = await viewer.join("mine");
        assert.equal(join.type, "server-join");
        assert.deepEqual(Object.keys(join.data.users), ["900000000000000001"]);
        assert.deepEqual(mocks[0].watched, [], "the mock's timers never run");
        tickAll(mocks);
        // The sentinel: the operator's own user speaks; it must be the only frame.
        s.server.broadcastMessage({
          server: DWORLD,
          uid: "900000000000000001",
          message: "sentinel",
          channel: "1",
        });
        await seesOnlyOwn(async () => [await viewer.next()]);
        // Nothing was queued behind it either.
        assert.deepEqual(await viewer.quiet(50), []);
      } finally {
        await s.server.stop();
      }
    });
  });
}

Deno.test("without data callbacks the mock world still moves (the control for the test above)", async () => {
  await withMocksSeen(async (mocks) => {
    await using s = await startServer();
    await using viewer = await joined(s.url, "dworld");
    assert.deepEqual(mocks[0].watched, [DWORLD]);
    tickAll(mocks);
    const frame = await viewer.next();
    assert.equal(frame.server, DWORLD);
    assert.match(frame.data.uid, /^1234567890123450\d\d$/, "a mock user");
  });
});
