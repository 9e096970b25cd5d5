// On each runtime (native rooms included): a viewer who joins while presence flows gets the
// user map's snapshot, then the presence frames since it, then the live stream, in that order,
// so its view equals the truth and that of a viewer who was there all along.
import assert from "node:assert/strict";
import { EVENTS } from "../../src/events.ts";
import { BIG_GUILD_SHORT, bigUserMap, presenceEvent } from "../_fixtures/big_guild.ts";
import { GuildProcess, RUNTIMES } from "../_fixtures/guild_process.ts";
import { RawViewer } from "../_fixtures/raw_viewer.ts";
import { fold, type View } from "../_fixtures/presence_fold.ts";

const MEMBERS = 400; // about 53 KB: the join's text is kept whole by the raw viewer

for (const runtime of RUNTIMES) {
  Deno.test(`${runtime}: joiners' views (snapshot, replay, live) equal the truth`, async () => {
    await using server = await GuildProcess.start(runtime, { members: MEMBERS });
    const truth = bigUserMap(MEMBERS) as View;
    let n = 0;
    const presence = async (count: number) => {
      await server.presence(count);
      for (let i = 0; i < count; i++) {
        fold(truth, EVENTS.presence.frame(presenceEvent(n++, MEMBERS)));
      }
    };
    const viewers: RawViewer[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        const v = await RawViewer.connect(server.port);
        viewers.push(v);
        v.connect(BIG_GUILD_SHORT);
        assert.equal((await v.waitFor((f) => f.type === "server-join"))?.type, "server-join");
        await presence(5);
      }
      for (const v of viewers) {
        const at = v.frames.findIndex((f) => f.type === "server-join");
        // Every viewer's stream ends with the last event (replayed or live).
        const last = EVENTS.presence.frame(presenceEvent(n - 1, MEMBERS));
        assert.ok(await v.waitFor((f) => f.text === last, at + 1));
        const view: View = JSON.parse(v.frames[at].text!).data.users;
        for (const f of v.frames.slice(at + 1)) fold(view, f.text!);
        assert.deepEqual(view, truth);
      }
    } finally {
      for (const v of viewers) v.destroy();
    }
  });
}
