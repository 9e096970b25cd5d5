// The server list is asked of the source and validated once per `userDataCacheMs`, not once per
// open and per `connect`; every change signal (a `server-gone` event, `onGetServerData`,
// `invalidateUserData()`) makes the change visible to the very next viewer.
import assert from "node:assert/strict";
import type { DataSource, EventSink, ServerMap, UserMap } from "../../mod.ts";
import { Client, startServer } from "../_fixtures/helpers.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

const USERS: UserMap = { "7": { uid: "7", username: "ada", status: "online" } };

function counting(initial: ServerMap) {
  const state = { servers: initial, calls: 0 };
  const getServerData = () => {
    state.calls++;
    return state.servers;
  };
  return { state, getServerData };
}

async function listOf(url: string): Promise<string[]> {
  await using c = await Client.open(url);
  const f = await c.next();
  assert.equal(f.type, "server-list");
  return Object.values(f.data as Record<string, { id: string }>).map((s) => s.id);
}

Deno.test("callbacks: five viewers who open and join cost one getServerData call", async () => {
  const { state, getServerData } = counting({ "1": { id: "home", name: "Home", default: true } });
  await using s = await startServer({
    userDataCacheMs: 60_000,
    callbacks: { getServerData, getUserData: () => USERS },
  });
  for (let i = 0; i < 5; i++) {
    await using c = await Client.open(s.url);
    assert.equal((await c.next()).type, "server-list");
    assert.equal((await c.join("home")).type, "server-join");
  }
  assert.equal(state.calls, 1);
});

Deno.test("callbacks: a changed list is visible once userDataCacheMs has passed", async () => {
  const { state, getServerData } = counting({ "1": { id: "home", name: "Home", default: true } });
  await using s = await startServer({
    userDataCacheMs: 50,
    callbacks: { getServerData, getUserData: () => USERS },
  });
  // Only the clocks are frozen (the sockets need real timers): the cache's expiry reads them.
  using time = new FakeTime();
  assert.deepEqual(await listOf(s.url), ["home"]);
  state.servers = { "2": { id: "new", name: "New", default: true } };
  await time.tick(49);
  assert.deepEqual(await listOf(s.url), ["home"]); // still fresh
  await time.tick(2);
  assert.deepEqual(await listOf(s.url), ["new"]);
  assert.equal(state.calls, 2);
});

Deno.test("userDataCacheMs 0: every open asks the source (no caching)", async () => {
  const { state, getServerData } = counting({ "1": { id: "home", name: "Home", default: true } });
  await using s = await startServer({
    userDataCacheMs: 0,
    callbacks: { getServerData, getUserData: () => USERS },
  });
  assert.deepEqual(await listOf(s.url), ["home"]);
  state.servers = { "2": { id: "new", name: "New", default: true } };
  assert.deepEqual(await listOf(s.url), ["new"]);
  assert.equal(state.calls, 2);
});

Deno.test("library: invalidateUserData() and onGetServerData show a change to the next viewer", async () => {
  const { state, getServerData } = counting({ "1": { id: "home", name: "Home", default: true } });
  await using s = await startServer({
    userDataCacheMs: 60_000,
    callbacks: { getServerData, getUserData: () => USERS },
  });
  assert.deepEqual(await listOf(s.url), ["home"]);
  state.servers = { "2": { id: "new", name: "New", default: true } };
  assert.deepEqual(await listOf(s.url), ["home"]); // cached: not asked again
  s.server.invalidateUserData();
  assert.deepEqual(await listOf(s.url), ["new"]);
  assert.equal(state.calls, 2);
  s.server.onGetServerData(() => ({ "3": { id: "other", name: "Other", default: true } }));
  assert.deepEqual(await listOf(s.url), ["other"]);
});

Deno.test("source: a server-gone event drops the server from the next viewer's list", async () => {
  let sink: EventSink | undefined;
  const { state, getServerData } = counting({
    "1": { id: "home", name: "Home", default: true },
    "2": { id: "away", name: "Away" },
  });
  const source: DataSource = {
    getServerData,
    getUserData: () => USERS,
    start: (s) => {
      sink = s;
    },
  };
  await using s = await startServer({ userDataCacheMs: 60_000, source });
  assert.deepEqual(await listOf(s.url), ["home", "away"]);
  assert.deepEqual(await listOf(s.url), ["home", "away"]);
  assert.equal(state.calls, 1);
  state.servers = { "1": { id: "home", name: "Home", default: true } };
  assert.ok(sink, "the server started the source");
  sink.emit({ type: "server-gone", event: { server: "2" } });
  assert.deepEqual(await listOf(s.url), ["home"]);
  assert.equal(state.calls, 2);
});

Deno.test("a connect to a server added since the list was cached joins at once", async () => {
  const { state, getServerData } = counting({ "1": { id: "home", name: "Home", default: true } });
  await using s = await startServer({
    userDataCacheMs: 60_000,
    callbacks: { getServerData, getUserData: () => USERS },
  });
  assert.deepEqual(await listOf(s.url), ["home"]);
  state.servers = { ...state.servers, "2": { id: "new", name: "New" } };
  await using c = await Client.open(s.url);
  assert.deepEqual((await c.next()).type, "server-list");
  assert.equal((await c.join("new")).type, "server-join");
  assert.equal((await c.join("home")).type, "server-join");
  assert.equal(state.calls, 2); // the unknown name asked again; the known one did not
});

Deno.test("getClientId is asked once per server, and again after an update-clientid event", async () => {
  let clientId = "111";
  let calls = 0;
  await using s = await startServer({
    userDataCacheMs: 60_000,
    callbacks: {
      getServerData: () => ({ "1": { id: "home", name: "Home", default: true } }),
      getUserData: () => USERS,
      getClientId: () => {
        calls++;
        return clientId;
      },
    },
  });
  for (let i = 0; i < 3; i++) {
    await using c = await Client.open(s.url);
    assert.equal((await c.join("home")).data.clientId, "111");
  }
  assert.equal(calls, 1);
  clientId = "222";
  s.server.broadcastClientIdUpdate({ server: "1", clientId: "222" });
  await using c = await Client.open(s.url);
  assert.equal((await c.join("home")).data.clientId, "222");
  assert.equal(calls, 2);
});
