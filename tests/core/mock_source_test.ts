// The mock data source: fidelity to the reference server and its demo login.
import assert from "node:assert/strict";
import { ERRORS, MockSource } from "../../mod.ts";
import { joined, REPOS, startServer } from "../_fixtures/helpers.ts";

Deno.test("mock fidelity: 'My Repos' has the reference's statuses and colours; offline members do not chat", async () => {
  const users = Object.values(new MockSource().getUserData(REPOS));
  const count = (s: string) => users.filter((u) => u.status === s).length;
  assert.deepEqual([count("online"), count("idle"), count("dnd"), count("offline")], [10, 5, 3, 3]);
  assert.equal(users.find((u) => u.username === "me")?.roleColor, "#54a0ff");
  const dbackUser = users.find((u) => u.username === "d-back");
  assert.deepEqual([dbackUser?.status, dbackUser?.roleColor], ["dnd", "#ff6348"]);
  const offline = new Set(users.filter((u) => u.status === "offline").map((u) => u.uid));
  const speakers: string[] = [];
  let i = 0;
  const mock = new MockSource({ random: () => (i++ % 97) / 97 });
  mock.start({ emit: (e) => e.type === "message" && speakers.push(e.event.uid) });
  for (let n = 0; n < 300; n++) mock.tickMessage(REPOS);
  mock.stop();
  assert.equal(speakers.length, 300);
  assert.ok(speakers.every((uid) => !offline.has(uid)), "an offline member spoke");
  await Promise.resolve();
});

Deno.test("mock login: with only getUserData registered, the demo 'oauth' server is gone and admits no token", async () => {
  const { server, url } = await startServer({
    callbacks: { getUserData: () => ({ "1": { username: "real", status: "online" } }) },
  });
  try {
    const c = await joined(url);
    const answer = await c.join("oauth", {
      discordToken: "anything",
      discordUser: { id: "1", username: "x" },
    });
    // A data hook replaces the whole mock world: its servers are not listed, so not joinable.
    assert.equal(answer.type, "error");
    assert.equal(answer.data.message, ERRORS.noSuchServer);
    await c.close();
  } finally {
    await server.stop();
  }
  // Both data hooks from the mock: the demo still works as PROTOCOL.md describes.
  const demo = await startServer();
  try {
    const c = await joined(demo.url);
    const answer = await c.join("oauth", {
      discordToken: "anything",
      discordUser: { id: "1", username: "x" },
    });
    assert.equal(answer.type, "server-join");
    assert.equal(answer.data.request.server, "oauth");
    assert.equal(answer.data.serverName, "OAuth2 Protected Server");
    assert.ok(Object.keys(answer.data.users).length > 0, "the demo server has members");
    await c.close();
  } finally {
    await demo.server.stop();
  }
});
