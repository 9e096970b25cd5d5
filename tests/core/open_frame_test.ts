// The server list goes out in the socket's open event itself when the list is cached, as a bare
// server answers: no promise and no later turn on the way. Until the source has answered (and
// after the cache expired), it goes out once the source has.
import assert from "node:assert/strict";
import { joinCore } from "../../src/_join_core.ts";
import { Logger } from "../../src/log.ts";
import { Metrics } from "../../src/_metrics.ts";
import { parseOptions } from "../../src/options.ts";
import type { WsPeer } from "../../src/transport/types.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

function peer() {
  const sent: string[] = [];
  const p: WsPeer = {
    send: (frame) => void sent.push(frame),
    bufferedAmount: 0,
    isOpen: true,
    close() {},
    terminate: () => false,
  };
  return { p, sent };
}

function setup(cacheMs: number) {
  let calls = 0;
  // The server's own wiring of the join path.
  const { admission } = joinCore(
    parseOptions({ joinTimeoutMs: 0, userDataCacheMs: cacheMs }),
    {
      getServerData: () => {
        calls++;
        return { "1": { id: "home", name: "Home", default: true } };
      },
      getUserData: () => ({}),
    },
    new Logger("silent"),
    new Metrics(),
  );
  let n = 0;
  const open = () => {
    const conn = admission.admit({ address: `10.0.0.${++n}`, key: `10.0.0.${n}` });
    const { p, sent } = peer();
    conn.open(p);
    return sent;
  };
  return { open, calls: () => calls };
}

const isList = (f: string | undefined) => f !== undefined && JSON.parse(f).type === "server-list";

Deno.test("open: a cached server list is sent in the open event itself", async () => {
  using time = new FakeTime();
  const { open, calls } = setup(60_000);
  const first = open();
  assert.equal(first.length, 0, "nothing cached yet: sent once the source answers");
  await time.tick(0);
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(isList(first[0]), "the first viewer gets it once the source answered");
  const second = open();
  assert.equal(second.length, 1, "cached: sent before open() returned");
  assert.ok(isList(second[0]));
  assert.equal(calls(), 1);
  await time.tick(60_001); // expired: the source is asked again, and the list follows its answer
  const third = open();
  assert.equal(third.length, 0);
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(isList(third[0]));
  assert.equal(calls(), 2);
});
