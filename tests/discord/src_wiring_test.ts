// Issue 10 item 1: the Discord source as the server's DataSource, no hand wiring.
import assert from "node:assert/strict";
import { WebSocketServer } from "../../src/server.ts";
import {
  FakeDiscord,
  GUILD,
  GUILD2,
  makeSource,
  serveSource,
  smallGuild,
} from "../_fixtures/fake_discord.ts";
import { joined } from "../_fixtures/helpers.ts";

Deno.test("discord wiring: the server starts and stops the source", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()] });
  const { source } = makeSource(fake);
  try {
    const server = new WebSocketServer({
      port: 0,
      hostname: "127.0.0.1",
      logLevel: "silent",
      source,
    });
    await server.start();
    assert.ok(source.ready, "start() waited for READY and the guilds");
    const c = await joined(`ws://127.0.0.1:${server.port}`, GUILD);
    assert.equal(c.frames.find((f) => f.type === "server-join")!.data.serverName, "Test Guild");
    // events travel source → sink → viewer
    fake.current.dispatch("PRESENCE_UPDATE", {
      guild_id: GUILD,
      user: { id: "300000000000000003" },
      status: "online",
    });
    assert.equal((await c.nextOf("presence")).data.status, "online");
    await c.close();
    await server.stop();
    await fake.until(() => !fake.current.open, 3000, "the gateway connection to close");
    assert.ok(!source.ready);
  } finally {
    await source.stop();
    await fake.stop();
  }
});

Deno.test("discord wiring: a fatal gateway error makes the server's start() fail clearly", async () => {
  const fake = await FakeDiscord.start({ guilds: [smallGuild()], identifyCloseCode: 4014 });
  const { source } = makeSource(fake);
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "silent",
    source,
  });
  try {
    await assert.rejects(server.start(), /4014.*privileged intents/s);
    assert.ok(!server.running);
    assert.equal(fake.conns.length, 1, "no retry after 4014");
  } finally {
    await server.stop();
    await source.stop();
    await fake.stop();
  }
});

Deno.test({
  name: "discord wiring (13.9): viewers of a guild the bot leaves get the couldn't-connect error",
  async fn() {
    const fake = await FakeDiscord.start({ guilds: [smallGuild(), smallGuild(GUILD2, "Two")] });
    const { source } = makeSource(fake);
    await using s = await serveSource(source);
    try {
      const inTwo = await joined(s.url, GUILD2);
      const inOne = await joined(s.url, GUILD);
      fake.current.dispatch("GUILD_DELETE", { id: GUILD2 });
      const f = await inTwo.nextOf("error");
      assert.equal(f.data.message, "Sorry, couldn't connect to that Discord server.");
      // the other room goes on: a presence there still reaches its viewer
      fake.current.dispatch("PRESENCE_UPDATE", {
        guild_id: GUILD,
        user: { id: "300000000000000003" },
        status: "idle",
      });
      assert.equal((await inOne.nextOf("presence")).data.status, "idle");
      await inTwo.close();
      await inOne.close();
    } finally {
      await fake.stop();
    }
  },
});
