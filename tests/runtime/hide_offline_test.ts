// On each runtime: with `hideOfflineAbove`, a big guild whose members are mostly offline is joined
// with its visible members only (a frame a fraction of the whole map's size), and a later
// presence of a hidden member arrives with its name and colour; one of a shown member going
// offline removes it.
import assert from "node:assert/strict";
import {
  BIG_GUILD_SHORT,
  bigUserMap,
  isOffline,
  memberUid,
  presenceEvent,
} from "../_fixtures/big_guild.ts";
import { GuildProcess, RUNTIMES } from "../_fixtures/guild_process.ts";
import { RawViewer } from "../_fixtures/raw_viewer.ts";

const MEMBERS = 2000;
const OFFLINE = 0.8; // 1,600 offline: the join (400 users, about 53 KB) is kept whole by the viewer

for (const runtime of RUNTIMES) {
  Deno.test(`${runtime}: hideOfflineAbove leaves offline members out of a big join and names them when they come online`, async () => {
    await using server = await GuildProcess.start(runtime, {
      members: MEMBERS,
      offline: OFFLINE,
      options: { hideOfflineAbove: 1000 },
    });
    const all = bigUserMap(MEMBERS, OFFLINE);
    const shown = Object.keys(all).filter((uid) => all[uid].status !== "offline");
    const v = await RawViewer.connect(server.port);
    try {
      v.connect(BIG_GUILD_SHORT);
      const join = await v.waitFor((f) => f.type === "server-join");
      assert.ok(join?.text, "the join arrives whole");
      const users = JSON.parse(join.text).data.users;
      assert.deepEqual(Object.keys(users).sort(), shown.sort());
      const whole = new TextEncoder().encode(JSON.stringify(all)).length;
      assert.ok(join.bytes * 4 < whole, `join ${join.bytes} B, whole map ${whole} B`);
      // Presence 0: member 0 (hidden) comes online; 1 and 2: shown members change status;
      // 3: a shown member goes offline.
      const first = presenceEvent(0, MEMBERS);
      const gone = presenceEvent(3, MEMBERS);
      assert.ok(isOffline(0, OFFLINE) && first.uid === memberUid(0) && first.status === "online");
      assert.ok(!isOffline(Number(BigInt(gone.uid) - BigInt(memberUid(0))), OFFLINE));
      assert.equal(gone.status, "offline");
      const at = v.frames.length;
      await server.presence(4);
      assert.ok(await v.waitFor((f) => f.type === "presence" && f.text!.includes(gone.uid), at));
      const sent = v.frames.slice(at).map((f) => JSON.parse(f.text!).data);
      assert.equal(sent.length, 4);
      assert.deepEqual(sent[0], {
        uid: first.uid,
        status: "online",
        username: all[first.uid].username,
        roleColor: all[first.uid].roleColor,
      });
      assert.equal(sent[1].username, undefined, "a shown member's change is sent as given");
      assert.deepEqual(sent[3], { uid: gone.uid, status: "offline", delete: true });
    } finally {
      v.destroy();
    }
  });
}
