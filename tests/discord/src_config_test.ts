// Issue 13 item 10: the configuration file and per-server settings.
import assert from "node:assert/strict";
import { DiscordGatewaySource, parseDiscordConfig } from "../../src/discord/mod.ts";
import { resolveServer } from "../../src/discord/_config.ts";
import {
  ADA,
  BOB,
  CY,
  FakeDiscord,
  GUILD,
  GUILD2,
  makeSource,
  serveSource,
  smallGuild,
} from "../_fixtures/fake_discord.ts";
import { Client } from "../_fixtures/helpers.ts";

function problems(value: unknown): string {
  try {
    parseDiscordConfig(JSON.stringify(value), "c.json");
  } catch (err) {
    return String(err);
  }
  throw new Error("parsed, but should not have");
}

Deno.test("discord config: a complete file parses", () => {
  const c = parseDiscordConfig(JSON.stringify({
    token: "abc",
    clientId: "777000000000000001",
    url: "https://dzone.example/",
    infoCommand: "!d-zone",
    infoCooldownSeconds: 30,
    allGuilds: false,
    shards: "auto",
    servers: [
      { id: GUILD, default: true, slug: "home", alias: "Home", discordLogin: true },
      {
        id: GUILD2,
        password: "hunter2",
        listenChannels: ["#general", "500000000000000001"],
        ignoreUsers: ["bob"],
        hideOffline: true,
        url: "https://other.example/dz/",
      },
    ],
  }));
  assert.equal(c.servers[1].listenChannels![0], "general", "a leading # is dropped");
  assert.equal(c.shards, "auto");
  assert.equal(c.allGuilds, false);
});

Deno.test("discord config: every error names its field", () => {
  assert.match(problems({}), /servers: list at least one server, or set allGuilds: true/);
  assert.match(problems({ servers: [{ id: "12" }] }), /servers\[0\]\.id: id must be a Discord id/);
  assert.match(
    problems({ servers: [{ id: GUILD, ignoreChannels: ["a"], listenChannels: ["b"] }] }),
    /servers\[0\]\.listenChannels: give either ignoreChannels or listenChannels, not both/,
  );
  assert.match(
    problems({ servers: [{ id: GUILD }, { id: GUILD }] }),
    /servers\[1\]\.id: 100000000000000001 is listed twice/,
  );
  assert.match(
    problems({ servers: [{ id: GUILD, default: true }, { id: GUILD2, default: true }] }),
    /servers\[1\]\.default: only one server may be the default/,
  );
  assert.match(
    problems({ servers: [{ id: GUILD, slug: "x" }, { id: GUILD2, slug: "x" }] }),
    /servers\[1\]\.slug: "x" is used twice/,
  );
  assert.match(
    problems({ servers: [{ id: GUILD, discordLogin: true }] }),
    /servers\[0\]\.discordLogin: needs clientId/,
  );
  assert.match(problems({ servers: [{ id: GUILD, colour: 1 }] }), /servers\[0\]: .*colour/);
  assert.match(problems({ allGuilds: true, url: "ftp://x" }), /url: must be an http/);
  assert.match(problems({ allGuilds: true, hideOffline: "yes" }), /hideOffline/);
  assert.match(problems({ allGuilds: true, infoCooldownSeconds: 0.5 }), /infoCooldownSeconds/);
  assert.throws(
    () => new DiscordGatewaySource({ token: "t", infoCommand: "!d-zone" }),
    /url: infoCommand needs url/,
  );
});

Deno.test("discord config: per-server settings reach the server list, the user map and joins", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild(), smallGuild(GUILD2, "Second")] });
  const { source } = makeSource(fake, {
    clientId: "777000000000000001",
    servers: [
      { id: GUILD, slug: "home", alias: "Home Sweet Home", password: "hunter2", hideOffline: true },
      { id: GUILD2, default: true, ignoreUsers: [ADA, "bob"] },
    ],
  });
  await using s = await serveSource(source);
  try {
    const map = source.getServerData();
    assert.deepEqual(map[GUILD], {
      id: "home",
      name: "Home Sweet Home",
      default: false,
      passworded: true,
      password: "hunter2",
    });
    assert.equal(map[GUILD2].default, true);
    assert.deepEqual(
      Object.keys(source.getUserData(GUILD)).sort(),
      [ADA, BOB, "300000000000000004"].sort(),
    );
    assert.ok(!(CY in source.getUserData(GUILD)), "hideOffline");
    assert.deepEqual(
      Object.keys(source.getUserData(GUILD2)).sort(),
      [CY, "300000000000000004"].sort(),
    );
    // The legacy password admits; a wrong one does not; the password never reaches clients.
    const c = await Client.open(s.url);
    const list = await c.next();
    assert.ok(!JSON.stringify(list).includes("hunter2"));
    c.ws.send(JSON.stringify({ type: "connect", data: { server: "home", password: "nope" } }));
    assert.equal((await c.next()).type, "error");
    c.ws.send(JSON.stringify({ type: "connect", data: { server: "home", password: "hunter2" } }));
    const join = await c.next();
    assert.equal(join.type, "server-join");
    assert.equal(join.data.serverName, "Home Sweet Home");
    await c.close();
  } finally {
    await fake.stop();
  }
});

Deno.test("discord config: server settings fall back to the global defaults", () => {
  const d = {
    passworded: false,
    includeOffline: false,
    listenChannels: ["1"],
    url: "https://a.example/",
  };
  const bare = resolveServer(GUILD, { id: GUILD }, d);
  assert.equal(bare.includeOffline, false, "top-level hideOffline applies");
  assert.deepEqual([...bare.listenChannels!], ["1"]);
  assert.equal(bare.url, "https://a.example/");
  assert.equal(bare.slug, GUILD);
  const own = resolveServer(GUILD, { id: GUILD, hideOffline: false, ignoreChannels: ["x"] }, d);
  assert.equal(own.includeOffline, true);
  assert.equal(own.listenChannels, null, "an own ignore list replaces the default listen list");
  assert.deepEqual([...own.ignoreChannels!], ["x"]);
  const unlisted = resolveServer(GUILD2, undefined, { ...d, passworded: true });
  assert.equal(unlisted.passworded, true);
});
