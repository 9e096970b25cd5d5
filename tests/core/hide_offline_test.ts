// The `hideOfflineAbove` policy: above N users a server's join leaves offline members out, and
// every presence frame keeps a viewer's picture equal to the visible users (a member back from
// offline is named, one going offline removed, a hidden one staying hidden not sent); at or below
// N nothing is hidden. Joiners (snapshot, replay, live frames) see the truth under the policy over
// random steps; a guild crossing N on a reload never gets a frame it cannot draw.
import assert from "node:assert/strict";
import type { PresenceEvent, UserMap } from "../../mod.ts";
import { EVENTS } from "../../src/events.ts";
import type { Directory } from "../../src/_directory.ts";
import { parseOptions } from "../../src/options.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { joined } from "../_fixtures/helpers.ts";
import { drawable, fold, type View } from "../_fixtures/presence_fold.ts";
import { seededInts } from "../_fixtures/random.ts";
import {
  directory as userDirectory,
  guildServer,
  quarterOffline as users,
  randomPresence,
  SERVER,
  STATUSES,
  visible,
} from "../_fixtures/user_maps.ts";

const directory = (getUserData: () => UserMap, hideOfflineAbove: number, cacheMs = 60_000) =>
  userDirectory(getUserData, cacheMs, hideOfflineAbove);

/** What the event router does: the map says which frame (if any) the room gets. */
function send(dir: Directory, e: PresenceEvent): Record<string, unknown> | undefined {
  const frame = dir.apply(e, EVENTS.presence.frame(e));
  return frame === undefined ? undefined : JSON.parse(frame).data;
}

async function joinView(dir: Directory): Promise<View> {
  const map = await dir.userMap(SERVER);
  assert.ok(map.ok);
  const snap = map.value.snapshot();
  const view: View = JSON.parse(snap.json);
  for (const frame of snap.replay) drawable(view, frame);
  return view;
}

Deno.test("hideOfflineAbove: above N the join omits offline members; presence names, removes, or skips", async () => {
  const dir = directory(() => users(20), 10);
  const view = await joinView(dir);
  assert.equal(Object.keys(view).length, 15);
  assert.ok(!("3" in view) && "2" in view);
  // A hidden member comes online: sent with its name and colour from the map.
  assert.deepEqual(send(dir, { server: SERVER, uid: "3", status: "idle" }), {
    uid: "3",
    status: "idle",
    username: "user 3",
    roleColor: "#123456",
  });
  // A shown member goes offline: removed.
  assert.deepEqual(send(dir, { server: SERVER, uid: "2", status: "offline" }), {
    uid: "2",
    status: "offline",
    delete: true,
  });
  // A shown member changes status: as given.
  assert.deepEqual(send(dir, { server: SERVER, uid: "1", status: "dnd" }), {
    uid: "1",
    status: "dnd",
  });
  // Hidden and staying hidden (offline again, renamed while offline, removed): nothing is sent.
  assert.equal(send(dir, { server: SERVER, uid: "7", status: "offline" }), undefined);
  assert.equal(
    send(dir, { server: SERVER, uid: "2", status: "offline", username: "x" }),
    undefined,
  );
  assert.equal(
    send(dir, { server: SERVER, uid: "11", status: "offline", delete: true }),
    undefined,
  );
  // An unknown user without a name cannot be drawn: not sent either.
  assert.equal(send(dir, { server: SERVER, uid: "999", status: "online" }), undefined);
  // The next joiner sees the same picture as one who was there all along.
  const later = await joinView(dir);
  assert.equal(later["3"].status, "idle");
  assert.ok(!("2" in later));
  assert.equal(later["2"], undefined);
  assert.equal(Object.keys(later).length, 15);
});

Deno.test("hideOfflineAbove: at or below N every member is in the join; a member back from offline is named", async () => {
  const dir = directory(() => users(10), 10);
  const view = await joinView(dir);
  assert.equal(Object.keys(view).length, 10);
  assert.equal(view["3"].status, "offline");
  assert.deepEqual(send(dir, { server: SERVER, uid: "2", status: "offline" }), {
    uid: "2",
    status: "offline",
  });
  assert.deepEqual(send(dir, { server: SERVER, uid: "3", status: "online" }), {
    uid: "3",
    status: "online",
    username: "user 3",
    roleColor: "#123456",
  });
  // Off (0): frames go out exactly as given.
  const off = directory(() => users(20), 0);
  assert.equal(Object.keys(await joinView(off)).length, 20);
  assert.deepEqual(send(off, { server: SERVER, uid: "3", status: "online" }), {
    uid: "3",
    status: "online",
  });
});

Deno.test("hideOfflineAbove: every joiner's view (snapshot, replay, live) equals the visible truth", async () => {
  using time = new FakeTime({ timers: true });
  const dir = directory(() => users(200), 100);
  // mulberry32: the low bits of a power-of-two LCG repeat too soon for `% 4` to mix statuses.
  const rand = seededInts(7);
  let announced = 0;
  const truth: View = users(200) as View;
  const clients: View[] = [];
  let replayed = 0;
  let skipped = 0;
  for (let step = 0; step < 3000; step++) {
    const r = rand(100);
    if (r < 70) {
      const e = randomPresence(rand, step);
      fold(truth, EVENTS.presence.frame(e)); // the source's picture, offline members included
      const frame = dir.apply(e, EVENTS.presence.frame(e));
      if (frame === undefined) skipped++;
      else {
        if (frame.includes('"username"') && !e.username) announced++;
        for (const view of clients) drawable(view, frame);
      }
    } else if (r < 90) {
      const map = await dir.userMap(SERVER);
      assert.ok(map.ok);
      replayed += map.value.snapshot().replay.length;
      clients.push(await joinView(dir));
    } else {
      await time.tick(rand(300));
    }
  }
  assert.ok(
    clients.length > 400 && replayed > 100 && skipped > 100 && announced > 100,
    `joins ${clients.length}, replayed ${replayed}, skipped ${skipped}, announced ${announced}`,
  );
  const expected = visible(truth);
  assert.ok(Object.keys(expected).length < Object.keys(truth).length);
  for (const view of clients) assert.deepEqual(view, expected);
});

Deno.test("hideOfflineAbove: a guild crossing N switches on a reload (with a margin); earlier viewers keep every visible member right", async () => {
  using time = new FakeTime();
  // The source's picture: members join and leave by events (as the Discord source sends them).
  const source = users(100) as View;
  const dir = directory(() => structuredClone(source) as UserMap, 100, 1000);
  const viewers: View[] = [];
  let n = 0;
  const emit = (e: PresenceEvent) => {
    fold(source, EVENTS.presence.frame(e));
    const frame = dir.apply(e, EVENTS.presence.frame(e));
    if (frame !== undefined) { for (const v of viewers) drawable(v, frame); }
  };
  const uids = () => Object.keys(source);
  const traffic = (count: number) => {
    for (let i = 0; i < count; i++, n++) {
      const all = uids();
      emit({ server: SERVER, uid: all[(n * 37) % all.length], status: STATUSES[n % 4] });
    }
  };
  const resize = async (members: number) => {
    for (let i = 0; uids().length < members; i++, n++) {
      emit({ server: SERVER, uid: `${1000 + n}`, status: STATUSES[n % 4], username: `new ${n}` });
    }
    while (uids().length > members) {
      emit({ server: SERVER, uid: uids()[n++ % uids().length], status: "offline", delete: true });
    }
    await time.tick(1001);
    await dir.userMap(SERVER); // served from the old copy; the source is asked meanwhile
    await new Promise((r) => setTimeout(r, 0));
    const map = await dir.userMap(SERVER);
    assert.ok(map.ok);
    assert.equal(map.value.size, members);
    return map.value.hideOffline;
  };
  // Every viewer, whenever it joined, has every visible member right.
  const check = (when: string) => {
    for (const v of viewers) assert.deepEqual(visible(v), visible(source), when);
  };
  // 100 users: at N, shown in full.
  viewers.push(await joinView(dir));
  traffic(200);
  assert.deepEqual(viewers[0], source);
  // Grown past N: hidden from the next load on.
  assert.equal(await resize(110), true);
  traffic(300);
  check("after growing");
  const joiner = await joinView(dir);
  assert.deepEqual(joiner, visible(source));
  viewers.push(joiner);
  // Shrunk within the margin (95 > 90): still hidden; below it (85): shown again.
  assert.equal(await resize(95), true);
  traffic(300);
  check("within the margin");
  assert.equal(await resize(85), false);
  traffic(300);
  check("after shrinking");
  assert.deepEqual(await joinView(dir), source);
});

Deno.test("hideOfflineAbove: an option checked like the others; it needs the user map cache", () => {
  assert.equal(parseOptions({}).hideOfflineAbove, 0);
  assert.equal(parseOptions({ hideOfflineAbove: 5000 }).hideOfflineAbove, 5000);
  assert.throws(() => parseOptions({ hideOfflineAbove: -1 }), /hideOfflineAbove/);
  assert.throws(() => parseOptions({ hideOfflineAbove: 1.5 }), /hideOfflineAbove/);
  assert.throws(
    () => parseOptions({ hideOfflineAbove: 10, userDataCacheMs: 0 }),
    /hideOfflineAbove needs userDataCacheMs/,
  );
});

Deno.test("hideOfflineAbove: a server sends hidden members' frames named, and not their chat messages", async () => {
  await using s = await guildServer({ hideOfflineAbove: 10 }, () => users(20));
  await using a = await joined(s.url);
  const join = await a.join("main");
  assert.equal(Object.keys(join.data.users).length, 15);
  const say = (uid: string, message: string) =>
    s.server.broadcastMessage({ server: SERVER, uid, message, channel: "1" });
  assert.equal(say("3", "from a hidden member"), 0, "not sent");
  assert.equal(say("1", "from a shown one"), 1);
  assert.equal((await a.nextOf("message")).data.message, "from a shown one");
  assert.equal(s.server.broadcastPresence({ server: SERVER, uid: "7", status: "offline" }), 0);
  s.server.broadcastPresence({ server: SERVER, uid: "3", status: "online" });
  assert.deepEqual((await a.nextOf("presence")).data, {
    uid: "3",
    status: "online",
    username: "user 3",
    roleColor: "#123456",
  });
  // Online now: its messages are sent.
  assert.equal(say("3", "back"), 1);
  assert.equal((await a.nextOf("message")).data.message, "back");
});

Deno.test("hideOfflineAbove: dback_frames_withheld_total counts each frame kept from a room, by type, once per event, and no frame sent", async () => {
  await using s = await guildServer({ hideOfflineAbove: 10 }, () => users(20));
  // Two viewers: a withheld event counts once, not once per viewer.
  await using a = await joined(s.url);
  await a.join("main");
  await using b = await joined(s.url);
  await b.join("main");
  const presence = (uid: string, status: "online" | "dnd" | "offline") =>
    s.server.broadcastPresence({ server: SERVER, uid, status });
  const say = (uid: string, message: string) =>
    s.server.broadcastMessage({ server: SERVER, uid, message, channel: "1" });
  const withheld = () => s.server.metrics.framesWithheld;
  // Sent, rewritten or not: not counted.
  assert.equal(presence("1", "dnd"), 2);
  assert.equal(presence("2", "offline"), 2, "a shown member going offline is sent as a removal");
  assert.equal(say("1", "from a shown member"), 2);
  assert.deepEqual(withheld(), { presence: 0, message: 0 });
  // Withheld: each counted once.
  assert.equal(presence("7", "offline"), 0, "hidden, staying hidden");
  assert.deepEqual(withheld(), { presence: 1, message: 0 });
  assert.equal(say("3", "from a hidden member"), 0);
  assert.equal(say("2", "from one hidden since"), 0);
  assert.deepEqual(withheld(), { presence: 1, message: 2 });
  assert.equal(presence("999", "online"), 0, "unknown and nameless");
  assert.deepEqual(withheld(), { presence: 2, message: 2 });
  // A hidden member back online is sent, named, and so is its chat: not counted.
  assert.equal(presence("3", "online"), 2);
  assert.equal(say("3", "back"), 2);
  assert.deepEqual(withheld(), { presence: 2, message: 2 });
  const text = (await (await fetch(`${s.http}/metrics`)).text()).split("\n");
  assert.ok(text.includes('dback_frames_withheld_total{type="presence"} 2'), text.join("\n"));
  assert.ok(text.includes('dback_frames_withheld_total{type="message"} 2'), text.join("\n"));
});

Deno.test("hideOfflineAbove off: offline members' presence and chat are sent, nothing is counted as withheld", async () => {
  await using s = await guildServer({}, () => users(20));
  await using a = await joined(s.url);
  assert.equal(Object.keys((await a.join("main")).data.users).length, 20);
  assert.equal(s.server.broadcastPresence({ server: SERVER, uid: "7", status: "offline" }), 1);
  assert.equal(
    s.server.broadcastMessage({ server: SERVER, uid: "3", message: "hi", channel: "1" }),
    1,
  );
  assert.deepEqual(s.server.metrics.framesWithheld, { presence: 0, message: 0 });
  const text = (await (await fetch(`${s.http}/metrics`)).text()).split("\n");
  assert.ok(text.includes('dback_frames_withheld_total{type="presence"} 0'), text.join("\n"));
});
