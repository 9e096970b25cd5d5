// The `hideOfflineAbove` policy across `invalidateUserData`: while a dropped user map is not loaded
// again, the room's viewers are filtered by the dropped copy (its verdict and members, kept current
// by events), so a hidden member's presence and chat are withheld and counted, and one coming
// online is sent named; the next load takes over; nothing is kept for a room nobody views.
import assert from "node:assert/strict";
import type { PresenceEvent, UserMap } from "../../mod.ts";
import { EVENTS } from "../../src/events.ts";
import type { Directory } from "../../src/_directory.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { joined } from "../_fixtures/helpers.ts";
import { drawable, fold, type View } from "../_fixtures/presence_fold.ts";
import { seededInts } from "../_fixtures/random.ts";
import {
  directory,
  guildServer,
  quarterOffline as users,
  randomPresence,
  SERVER,
  visible,
} from "../_fixtures/user_maps.ts";

/** What the event router does: the map (or the dropped copy) says which frame, if any, goes out. */
function send(dir: Directory, e: PresenceEvent): Record<string, unknown> | undefined {
  const frame = dir.apply(e, EVENTS.presence.frame(e));
  return frame === undefined ? undefined : JSON.parse(frame).data;
}

Deno.test("hideOfflineAbove after invalidateUserData(serverId): hidden members' presence and chat are withheld and counted, one coming online is sent named, the next load takes over", async () => {
  // The source follows the events (as the Discord source does), so a reload gives the truth.
  const truth = users(20) as View;
  await using s = await guildServer(
    { hideOfflineAbove: 10 },
    () => structuredClone(truth) as UserMap,
  );
  await using a = await joined(s.url);
  assert.equal(Object.keys((await a.join("main")).data.users).length, 15);
  await using b = await joined(s.url);
  await b.join("main");
  const presence = (uid: string, status: PresenceEvent["status"]) => {
    const e = { server: SERVER, uid, status };
    fold(truth, EVENTS.presence.frame(e));
    return s.server.broadcastPresence(e);
  };
  const say = (uid: string, message: string) =>
    s.server.broadcastMessage({ server: SERVER, uid, message, channel: "1" });
  const withheld = () => s.server.metrics.framesWithheld;
  s.server.invalidateUserData(SERVER);
  // Withheld, and counted once each, as before the drop.
  assert.equal(presence("7", "dnd"), 2, "a hidden member coming online is sent");
  assert.equal(presence("7", "offline"), 2, "... and going offline again, as a removal");
  assert.equal(presence("11", "offline"), 0, "hidden, staying hidden");
  assert.equal(say("3", "from a hidden member"), 0);
  assert.equal(presence("999", "online"), 0, "unknown and nameless");
  assert.deepEqual(withheld(), { presence: 2, message: 1 });
  // Sent as before: a hidden member coming online named, its chat, a shown one going offline removed.
  assert.equal(presence("3", "online"), 2);
  assert.equal(say("3", "back"), 2);
  assert.equal(presence("2", "offline"), 2);
  assert.deepEqual(withheld(), { presence: 2, message: 1 });
  for (const viewer of [a, b]) {
    const named = { status: "online", username: "user 3", roleColor: "#123456" };
    assert.deepEqual((await viewer.next()).data, {
      uid: "7",
      ...named,
      status: "dnd",
      username: "user 7",
    });
    assert.deepEqual((await viewer.next()).data, { uid: "7", status: "offline", delete: true });
    assert.deepEqual((await viewer.next()).data, { uid: "3", ...named });
    assert.equal((await viewer.next()).data.message, "back");
    assert.deepEqual((await viewer.next()).data, { uid: "2", status: "offline", delete: true });
  }
  // The next join loads the map afresh: it shows the visible truth, and the policy goes on.
  await using c = await joined(s.url);
  const join = (await c.join("main")).data.users;
  assert.deepEqual(join, visible(truth));
  assert.ok("3" in join && !("2" in join) && !("7" in join));
  assert.equal(presence("15", "offline"), 0);
  assert.equal(say("19", "hidden"), 0);
  assert.deepEqual(withheld(), { presence: 3, message: 2 });
  assert.equal(presence("19", "idle"), 3);
  for (const viewer of [a, b, c]) {
    assert.deepEqual((await viewer.next()).data, {
      uid: "19",
      status: "idle",
      username: "user 19",
      roleColor: "#123456",
    });
  }
});

Deno.test("hideOfflineAbove after invalidateUserData() (every map): hidden members stay withheld while the room has viewers; the last one leaving takes the dropped map", async () => {
  await using s = await guildServer({ hideOfflineAbove: 10 }, () => users(20));
  await using a = await joined(s.url);
  await a.join("main");
  s.server.invalidateUserData();
  assert.equal(s.server.broadcastPresence({ server: SERVER, uid: "7", status: "offline" }), 0);
  assert.equal(
    s.server.broadcastMessage({ server: SERVER, uid: "3", message: "x", channel: "1" }),
    0,
  );
  assert.deepEqual(s.server.metrics.framesWithheld, { presence: 1, message: 1 });
  assert.equal(s.server.broadcastPresence({ server: SERVER, uid: "3", status: "online" }), 1);
  assert.deepEqual((await a.next()).data, {
    uid: "3",
    status: "online",
    username: "user 3",
    roleColor: "#123456",
  });
  // The last viewer leaves: the dropped map goes, so nothing is filtered (nor counted) any more.
  await a.close();
  const rooms = async () => (await (await fetch(`${s.http}/api/status`)).json()).rooms;
  for (let i = 0; i < 300 && await rooms() !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(await rooms(), 0);
  assert.equal(s.server.broadcastPresence({ server: SERVER, uid: "11", status: "offline" }), 0);
  assert.deepEqual(s.server.metrics.framesWithheld, { presence: 1, message: 1 });
});

Deno.test("hideOfflineAbove: a dropped map is kept only while its room has viewers, serves no join, and goes when the next load lands", async () => {
  using _time = new FakeTime({ timers: true });
  let calls = 0;
  let answer: (m: UserMap) => void = () => {};
  const dir = directory(
    () => {
      if (++calls === 1) return users(20);
      return new Promise<UserMap>((resolve) => answer = resolve);
    },
    60_000,
    10,
  );
  // The source is asked a turn after the caller's (see CallbackRunner): answer call `n` once made.
  const answerCall = async (n: number, map: UserMap) => {
    for (let i = 0; calls < n && i < 100; i++) await null;
    assert.equal(calls, n);
    answer(map);
  };
  const hiddenOffline = { server: SERVER, uid: "7", status: "offline" } as const;
  const first = await dir.userMap(SERVER);
  assert.ok(first.ok);
  // Nobody views the room: the dropped map is not kept (frames go out as given, nothing is hidden).
  dir.invalidate(SERVER);
  assert.deepEqual(send(dir, hiddenOffline), { uid: "7", status: "offline" });
  assert.equal(dir.hides(SERVER, "3"), false);
  // Loaded again (the second call), viewed, then dropped: it filters, but serves no join.
  const loading = dir.userMap(SERVER);
  await answerCall(2, users(20));
  const second = await loading;
  assert.ok(second.ok && !second.value.retired);
  dir.watch(SERVER, true);
  dir.invalidate(SERVER);
  assert.ok(second.value.retired);
  assert.equal(dir.cachedUserMap(SERVER), undefined, "a join must load the map afresh");
  assert.equal(send(dir, hiddenOffline), undefined);
  assert.equal(dir.hides(SERVER, "3"), true);
  // A load dropped meanwhile answers its own waiters but is not kept; the filter stays.
  const dropped = dir.userMap(SERVER);
  dir.invalidate(SERVER);
  await answerCall(3, users(20));
  const late = await dropped;
  assert.ok(late.ok && late.value.retired);
  assert.deepEqual(send(dir, { server: SERVER, uid: "3", status: "idle" }), {
    uid: "3",
    status: "idle",
    username: "user 3",
    roleColor: "#123456",
  });
  assert.equal(dir.hides(SERVER, "3"), false, "back online: its chat is sent");
  // The next load (with the event above replayed onto it) replaces the filter.
  const next = dir.userMap(SERVER);
  await answerCall(4, users(20));
  send(dir, { server: SERVER, uid: "11", status: "online" }); // newer than the source's answer
  const fresh = await next;
  assert.ok(fresh.ok && !fresh.value.retired && fresh.value.hideOffline === true);
  assert.equal(dir.cachedUserMap(SERVER), fresh.value);
  const view = JSON.parse(fresh.value.snapshot().json);
  assert.equal(view["11"].status, "online", "the event that came while it loaded");
  // The last viewer leaves: a dropped map goes with it.
  dir.invalidate(SERVER);
  assert.equal(send(dir, hiddenOffline), undefined, "viewed: still filtered");
  dir.watch(SERVER, false);
  assert.deepEqual(send(dir, hiddenOffline), { uid: "7", status: "offline" });
  assert.equal(dir.hides(SERVER, "19"), false);
});

Deno.test("hideOfflineAbove: across random drops of the map, every viewer's view equals the visible truth and chat is withheld exactly from hidden speakers", async () => {
  using time = new FakeTime({ timers: true });
  const truth = users(200) as View;
  const dir = directory(() => structuredClone(truth) as UserMap, 60_000, 100);
  const rand = seededInts(20);
  let viewers: View[] = [];
  let dropped = false; // a map was dropped and no join has loaded it since
  const seen = { withheld: 0, named: 0, chatWithheld: 0, chatSent: 0, leftEmpty: 0, loads: 0 };
  const presence = () => {
    const e = randomPresence(rand, 0);
    fold(truth, EVENTS.presence.frame(e));
    const frame = dir.apply(e, EVENTS.presence.frame(e));
    if (frame === undefined) {
      if (dropped && viewers.length) seen.withheld++;
      return;
    }
    if (dropped && viewers.length && frame.includes('"username"') && !e.username) seen.named++;
    for (const view of viewers) drawable(view, frame);
  };
  for (let step = 0; step < 3000; step++) {
    const r = rand(100);
    if (r < 55) presence();
    else if (r < 68) {
      if (!viewers.length) continue;
      const uid = `${rand(260)}`;
      const hidden = dir.hides(SERVER, uid);
      assert.equal(hidden, !(uid in visible(truth)), `chat of ${uid} at step ${step}`);
      if (dropped) hidden ? seen.chatWithheld++ : seen.chatSent++;
    } else if (r < 82) {
      // A join: events (and sometimes another drop) may come while the source answers; a copy
      // dropped meanwhile is asked for again, as the handler does.
      let map = await (async () => {
        const loading = dir.userMap(SERVER);
        for (let i = rand(3); i > 0; i--) presence();
        // The source answers a turn or two later: what follows is newer than its answer.
        for (let i = rand(3); i > 0; i--) await null;
        for (let i = rand(3); i > 0; i--) presence();
        if (rand(4) === 0) dir.invalidate(SERVER);
        for (let i = rand(3); i > 0; i--) presence();
        return await loading;
      })();
      assert.ok(map.ok);
      if (map.value.retired) map = await dir.userMap(SERVER);
      assert.ok(map.ok && !map.value.retired && map.value.hideOffline === true);
      seen.loads += dropped ? 1 : 0;
      dropped = false;
      const snap = map.value.snapshot();
      const view: View = JSON.parse(snap.json);
      for (const frame of snap.replay) drawable(view, frame);
      assert.deepEqual(view, visible(truth), `joiner at step ${step}`);
      if (!viewers.length) dir.watch(SERVER, true);
      viewers.push(view);
    } else if (r < 89) {
      dir.invalidate(SERVER);
      dropped = true;
    } else if (r < 91) {
      dir.invalidateAll();
      dropped = true;
    } else if (r < 92) {
      // Everyone leaves, each with the visible truth.
      for (const view of viewers) assert.deepEqual(view, visible(truth), `leaver at step ${step}`);
      if (viewers.length) dir.watch(SERVER, false);
      seen.leftEmpty += viewers.length ? 1 : 0;
      viewers = [];
    } else await time.tick(rand(300));
  }
  for (const view of viewers) assert.deepEqual(view, visible(truth));
  assert.ok(
    seen.withheld > 100 && seen.named > 20 && seen.chatWithheld > 20 && seen.chatSent > 20 &&
      seen.leftEmpty > 10 && seen.loads > 50,
    JSON.stringify(seen),
  );
});
