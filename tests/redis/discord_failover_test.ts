// The Discord source across a publisher failover: two instances of the
// Discord example (one Deno, one Bun) over one redis-server and the fake
// gateway. kill -9 the publisher while Discord keeps sending: the survivor
// RESUMEs the stored session from the snapshots viewers saw (no second
// IDENTIFY), Discord replays the gap, and every viewer converges on the
// guild's real state with the gap's chat delivered once, and a line the dead
// publisher had already broadcast (replayed by Discord) not broadcast again.
import { ensureBun } from "../_fixtures/_bun.ts";
import {
  ADA,
  BOB,
  CHANNEL,
  CY,
  FakeDiscord,
  GUILD,
  member,
  smallGuild,
  user,
} from "../_fixtures/fake_discord.ts";
import { type Client, joined, until } from "../_fixtures/helpers.ts";
import { RedisServer, viewerMap } from "../_fixtures/_redis.ts";

const EXAMPLE = new URL("../../examples/discord.ts", import.meta.url).pathname;
const DAN = "300000000000000009";

function spawn(args: string[], env: Record<string, string>, runtime: "deno" | "bun") {
  const child = new Deno.Command(runtime === "deno" ? Deno.execPath() : "bun", {
    args: runtime === "deno" ? ["run", "-A", EXAMPLE, ...args] : ["run", EXAMPLE, ...args],
    env: { DISCORD_GUILD_IDS: "", DISCORD_ALL_GUILDS: "", NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const reads = [child.stdout, child.stderr].map(async (s) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) out.text += c;
  });
  return {
    out,
    async url() {
      await until(() => /socketURL=ws:\/\/127\.0\.0\.1:\d+/.test(out.text), 30_000, "the URL");
      return /socketURL=(ws:\/\/127\.0\.0\.1:\d+)/.exec(out.text)![1];
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* gone */ }
      await child.status;
      await Promise.all(reads);
    },
  };
}

function sorted(users: Record<string, Record<string, unknown>>): string {
  const canon = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify(
    canon(Object.fromEntries(Object.entries(users).map(([k, v]) => [k, canon(v)]))),
  );
}

Deno.test("kill -9 the Discord publisher: the survivor RESUMEs, the gap is replayed once, every viewer converges", async () => {
  await ensureBun();
  await using redis = await RedisServer.start();
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  // The rebuild after a RESUME asks for the members again: answer with the guild as it is now.
  const dan = member(user(DAN, "dan"));
  fake.onRequestMembers = (conn, d) => {
    const g = smallGuild();
    conn.dispatch("GUILD_MEMBERS_CHUNK", {
      guild_id: d.guild_id,
      members: [...g.members.filter((m) => m.user.id !== BOB), dan],
      presences: [
        { user: { id: ADA }, status: "offline", activities: [] },
        { user: { id: CY }, status: "dnd", activities: [] },
        { user: { id: DAN }, status: "online", activities: [] },
        ...g.presences.filter((p) => p.user.id !== ADA && p.user.id !== BOB),
      ],
      chunk_index: 0,
      chunk_count: 1,
      nonce: d.nonce,
    });
  };
  const args = [
    "--gateway-url",
    fake.gatewayUrl,
    "--api-base",
    fake.apiBase,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--redis",
    redis.url,
    "--redis-namespace",
    "dfail",
    "--redis-lease-ms",
    "1500",
  ];
  const env = { DISCORD_TOKEN: fake.token, DISCORD_GUILD_IDS: GUILD };
  const a = spawn(args, env, "deno");
  let b: ReturnType<typeof spawn> | undefined;
  const clients: Client[] = [];
  try {
    await a.url();
    await fake.waitSession(1, 20_000);
    b = spawn(args, env, "bun");
    const urlB = await b.url();
    // A follower serves what the publisher shares: ready while Redis is up.
    const health = await fetch(`${urlB.replace(/^ws/, "http")}/healthz`);
    if ((await health.text()) !== "ok\n") throw new Error("the follower's /healthz is not ok");
    const viewer = await joined(urlB, GUILD);
    clients.push(viewer);
    // A change while all is well, so the stored session's sequence moves past READY.
    fake.current.dispatch("PRESENCE_UPDATE", { guild_id: GUILD, user: { id: CY }, status: "dnd" });
    await until(() => viewerMap(viewer)[CY]?.status === "dnd", 5000, "the first change");
    await new Promise((r) => setTimeout(r, 1500)); // the session store saves at most once a second
    if (!/is the publisher/.test(a.out.text)) {
      throw new Error(`a is not the publisher:\n${a.out.text}`);
    }
    // Two lines the publisher broadcasts just before it dies: the first moves
    // the stored sequence, the second falls inside the store's 1 s throttle, so
    // the stored sequence predates it and Discord replays it to the survivor,
    // which must not broadcast it a second time.
    for (
      const [id, content] of [["900000000000000010", "first"], ["900000000000000011", "second"]]
    ) {
      fake.current.dispatch("MESSAGE_CREATE", {
        id,
        guild_id: GUILD,
        channel_id: CHANNEL,
        author: user(CY, "cy"),
        member: { roles: [], nick: null },
        content: `${content} line before the crash`,
      });
    }
    const lines = (content: string) =>
      viewer.raw.filter((r) =>
        r.startsWith('{"type":"message"') && r.includes(`${content} line before the crash`)
      ).length;
    await until(() => lines("second") === 1, 5000, "the lines before the crash");

    await a.stop("SIGKILL");
    // Discord goes on while nobody is connected: a member goes offline, one leaves, one joins, one speaks.
    fake.emit("session-1", "PRESENCE_UPDATE", {
      guild_id: GUILD,
      user: { id: ADA },
      status: "offline",
    });
    fake.emit("session-1", "GUILD_MEMBER_REMOVE", { guild_id: GUILD, user: user(BOB, "bob") });
    fake.emit("session-1", "GUILD_MEMBER_ADD", { guild_id: GUILD, ...dan });
    fake.emit("session-1", "PRESENCE_UPDATE", {
      guild_id: GUILD,
      user: { id: DAN },
      status: "online",
    });
    fake.emit("session-1", "MESSAGE_CREATE", {
      id: "900000000000000001",
      guild_id: GUILD,
      channel_id: CHANNEL,
      author: user(DAN, "dan"),
      member: { roles: [], nick: null },
      content: "said during the failover",
    });

    await until(() => /is the publisher/.test(b!.out.text), 10_000, "the survivor to take over");
    await until(() => fake.ops(6).length === 1, 10_000, "the survivor's RESUME");
    const said = () =>
      viewer.raw.filter((r) =>
        r.startsWith('{"type":"message"') && r.includes("said during the failover")
      )
        .length;
    await until(() => said() >= 1, 10_000, "the gap's chat");
    const want = (m: Record<string, Record<string, unknown>>) =>
      (m[ADA] === undefined || m[ADA].status === "offline") && !m[BOB] &&
      m[DAN]?.status === "online" && m[CY]?.status === "dnd";
    await until(() => want(viewerMap(viewer)), 10_000, "the viewer to converge").catch((err) => {
      throw new Error(`${err.message}: ${sorted(viewerMap(viewer))}\n${b!.out.text}`);
    });
    // A viewer joining now sees the same map; the state came through Redis, not a second IDENTIFY.
    const fresh = await joined(urlB);
    clients.push(fresh);
    const j = await fresh.join(GUILD);
    if (sorted(j.data.users) !== sorted(viewerMap(viewer))) {
      throw new Error(
        `join map ${sorted(j.data.users)} differs from the viewer's ${sorted(viewerMap(viewer))}`,
      );
    }
    if (fake.ops(2).length !== 1) throw new Error(`${fake.ops(2).length} IDENTIFYs`);
    await new Promise((r) => setTimeout(r, 1000));
    if (said() !== 1) throw new Error(`the gap's chat delivered ${said()} times`);
    // The message id stays in Redis: viewers get the protocol's frame only.
    if (viewer.raw.some((r) => r.includes("90000000000000001"))) {
      throw new Error("a chat frame carries the Discord message id");
    }
    const metrics = await (await fetch(`${urlB.replace(/^ws/, "http")}/metrics`)).text();
    if (!/dback_cluster_dropped_total\{reason="duplicate"\} [12]\n/.test(metrics)) {
      throw new Error(`the survivor counted no duplicate:\n${metrics}`);
    }
    if (lines("first") !== 1 || lines("second") !== 1) {
      throw new Error(
        `lines said before the crash delivered ${lines("first")} and ${lines("second")} times`,
      );
    }
    const terms = b.out.text.match(/is the publisher/g)?.length ?? 0;
    if (terms !== 1 || /stops publishing/.test(b.out.text)) {
      throw new Error(`the survivor flapped:\n${b.out.text}`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await a.stop("SIGKILL");
    await b?.stop();
    await fake.stop();
  }
});
