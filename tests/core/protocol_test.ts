// Every rule of PROTOCOL.md's conversation, against a real server over real WebSockets.
import assert from "node:assert/strict";
import { ERRORS, type ServerMap } from "../../mod.ts";
import { Client, DOCS, DWORLD, joined, OAUTH, REPOS, startServer } from "../_fixtures/helpers.ts";

Deno.test("the server list arrives first, with the four mock servers exactly as PROTOCOL.md lists them", async () => {
  await using s = await startServer();
  const { url } = s;
  await using c = await Client.open(url);
  const first = await c.next();
  assert.equal(first.type, "server-list");
  assert.deepEqual(first.data, {
    [DWORLD]: { id: "dworld", name: "D-World", default: true, passworded: false },
    [DOCS]: { id: "docs", name: "Docs (WIP)", default: false, passworded: false },
    [OAUTH]: { id: "oauth", name: "OAuth2 Protected Server", default: false, passworded: true },
    [REPOS]: { id: "repos", name: "My Repos", default: false, passworded: false },
  });
});

Deno.test("the full conversation of PROTOCOL.md replays frame by frame", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using c = await Client.open(url);
  assert.equal((await c.next()).type, "server-list");
  c.send({ type: "connect", data: { server: "dworld" } });
  const join = await c.next();
  assert.equal(c.raw[1].startsWith('{"type":"server-join","data":{"users":{'), true);
  assert.deepEqual(Object.keys(join.data), ["users", "request", "serverName"]);
  assert.deepEqual(join.data.request, { server: "dworld" });
  assert.equal(join.data.serverName, "D-World");
  assert.deepEqual(join.data.users["123456789012345001"], {
    uid: "123456789012345001",
    username: "vegeta897",
    status: "online",
    roleColor: "#ff6b6b",
  });
  assert.deepEqual(
    Object.values(join.data.users).map((u) => {
      const { username, status, roleColor } = u as Record<string, string>;
      return [username, status, roleColor];
    }),
    [
      ["vegeta897", "online", "#ff6b6b"],
      ["Cog-Creators", "idle", "#4ecdc4"],
      ["d-zone-org", "dnd", "#45b7d1"],
      ["NNTin", "online", "#96ceb4"],
    ],
  );

  server.broadcastPresence({ server: DWORLD, uid: "123456789012345001", status: "idle" });
  server.broadcastPresence({
    server: DWORLD,
    uid: "42",
    status: "online",
    username: "newcomer",
    roleColor: "#00ff00",
  });
  server.broadcastPresence({ server: DWORLD, uid: "42", status: "offline", delete: true });
  server.broadcastMessage({
    server: DWORLD,
    uid: "123456789012345001",
    message: "hello",
    channel: "527964146659229701",
  });
  server.broadcastClientIdUpdate({ server: DWORLD, clientId: "1234567890" });
  const expected = [
    `{"type":"presence","server":"${DWORLD}","data":{"uid":"123456789012345001","status":"idle"}}`,
    `{"type":"presence","server":"${DWORLD}","data":{"uid":"42","status":"online","username":"newcomer","roleColor":"#00ff00"}}`,
    `{"type":"presence","server":"${DWORLD}","data":{"uid":"42","status":"offline","delete":true}}`,
    `{"type":"message","server":"${DWORLD}","data":{"uid":"123456789012345001","message":"hello","channel":"527964146659229701"}}`,
    `{"type":"update-clientid","server":"${DWORLD}","data":{"clientId":"1234567890"}}`,
  ];
  for (let i = 0; i < expected.length; i++) await c.next();
  assert.deepEqual(c.raw.slice(2), expected);

  c.send("not json at all");
  assert.deepEqual(await c.next(), { type: "error", data: { message: "Invalid JSON" } });
  c.send({ type: "hello", data: {} });
  assert.deepEqual(await c.next(), { type: "error", data: { message: "Unknown event type" } });
  assert.equal(c.ws.readyState, WebSocket.OPEN);
});

Deno.test("connect: default, missing, null, blank, number and padded ids are normalised", async () => {
  const servers: ServerMap = {
    "1": { id: "home", name: "Home", default: true },
    "2": { id: "7", name: "Seven" },
  };
  await using s = await startServer({
    callbacks: { getServerData: () => servers, getUserData: () => ({}) },
  });
  const { url } = s;
  await using c = await joined(url);
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ server: "default" }, "default", "Home"],
    [{}, "default", "Home"],
    [{ server: null }, "default", "Home"],
    [{ server: "   " }, "default", "Home"],
    [{ server: 7 }, "7", "Seven"],
    [{ server: "  home " }, "home", "Home"],
  ];
  for (const [data, request, name] of cases) {
    c.send({ type: "connect", data });
    const f = await c.next();
    assert.equal(f.type, "server-join", JSON.stringify(data));
    assert.deepEqual(f.data.request, { server: request });
    assert.equal(f.data.serverName, name);
  }
});

Deno.test("connect errors use the protocol's texts and keep the connection open", async () => {
  await using s = await startServer();
  const { url } = s;
  await using c = await joined(url);
  assert.deepEqual((await c.join("nope")).data, {
    message: "Sorry, couldn't connect to that Discord server.",
  });
  c.send({ type: "connect" });
  assert.deepEqual((await c.next()).data, { message: ERRORS.invalidConnect });
  c.send({ type: "connect", data: "dworld" });
  assert.deepEqual((await c.next()).data, { message: ERRORS.invalidConnect });
  c.send({ type: "connect", data: { server: { id: "dworld" } } });
  assert.deepEqual((await c.next()).data, { message: ERRORS.invalidServer });
  c.send("[1,2,3]");
  assert.deepEqual((await c.next()).data, { message: "Unknown event type" });
  c.send("null");
  assert.deepEqual((await c.next()).data, { message: "Unknown event type" });
  c.send('{"type":"connect","data":');
  assert.deepEqual((await c.next()).data, { message: "Invalid JSON" });
  assert.equal((await c.join("dworld")).type, "server-join");
});

Deno.test("binary frames: UTF-8 is handled like text, invalid UTF-8 is an error and the socket stays open", async () => {
  await using s = await startServer();
  const { url } = s;
  await using c = await joined(url);
  c.ws.send(
    new TextEncoder().encode(JSON.stringify({ type: "connect", data: { server: "docs" } })),
  );
  const f = await c.next();
  assert.equal(f.type, "server-join");
  assert.equal(f.data.serverName, "Docs (WIP)");
  c.ws.send(new Uint8Array([0xff, 0xfe, 0xfd]));
  assert.deepEqual(await c.next(), { type: "error", data: { message: "Invalid binary encoding" } });
  assert.equal(c.ws.readyState, WebSocket.OPEN);
});

Deno.test("WebSocket upgrade works on any path", async () => {
  await using s = await startServer();
  const { url } = s;
  for (const path of ["", "/", "/some/path/ws", "/api/version"]) {
    await using c = await Client.open(url + path);
    assert.equal((await c.next()).type, "server-list", path);
  }
});

Deno.test("mock protected server: any well-formed token and user joins; otherwise authentication is required", async () => {
  await using s = await startServer();
  const { url } = s;
  await using c = await joined(url);
  const need = { message: ERRORS.authRequired };
  assert.deepEqual((await c.join("oauth")).data, need);
  assert.deepEqual((await c.join("oauth", { discordToken: "abc" })).data, need);
  assert.deepEqual(
    (await c.join("oauth", { discordToken: "abc", discordUser: { id: "1" } })).data,
    need,
  );
  assert.deepEqual(
    (await c.join("oauth", { discordToken: "", discordUser: { id: "1", username: "x" } })).data,
    need,
  );
  const ok = await c.join("oauth", {
    discordToken: "abc",
    discordUser: { id: "1", username: "x" },
  });
  assert.equal(ok.type, "server-join");
  assert.equal(ok.data.serverName, "OAuth2 Protected Server");
  assert.deepEqual(Object.keys(ok.data.users), ["323456789012345001"]);
});

Deno.test("passworded servers: secure default, legacy password in, password never leaves the server", async () => {
  const servers: ServerMap = {
    "10": { id: "open", name: "Open", default: true },
    "11": { id: "locked", name: "Locked", passworded: true },
    "12": { id: "legacy", name: "Legacy", passworded: true, password: "s3cret" },
  };
  await using s = await startServer({
    callbacks: { getServerData: () => servers, getUserData: () => ({}) },
  });
  const { url, logs } = s;
  await using c = await Client.open(url);
  const list = await c.next();
  assert.equal(c.raw[0].includes("s3cret"), false);
  assert.equal(c.raw[0].includes('password"'), false);
  assert.deepEqual(list.data["12"], {
    id: "legacy",
    name: "Legacy",
    default: false,
    passworded: true,
  });
  const user = { discordToken: "tok", discordUser: { id: "1", username: "x" } };
  // No validator: a token cannot be checked, so it is refused.
  assert.deepEqual((await c.join("locked", user)).data, { message: ERRORS.authRequired });
  assert.deepEqual((await c.join("legacy", { password: "wrong" })).data, {
    message: ERRORS.authRequired,
  });
  assert.deepEqual((await c.join("legacy", { password: "s3cre" })).data, {
    message: ERRORS.authRequired,
  });
  const ok = await c.join("legacy", { password: "s3cret" });
  assert.equal(ok.type, "server-join");
  assert.deepEqual(ok.data.request, { server: "legacy" });
  assert.equal(c.raw.some((r) => r.includes("s3cret")), false);
  assert.equal(logs.some((l) => l.message.includes("s3cret") || l.message.includes("tok")), false);
});

Deno.test("enabled: false hides a server and makes it unjoinable; is_default is honoured", async () => {
  const servers = {
    "20": { id: "a", name: "A" },
    "21": { id: "b", name: "B", is_default: true },
    "22": { id: "hidden", name: "Hidden", enabled: false },
  };
  await using s = await startServer({
    callbacks: { getServerData: () => servers, getUserData: () => ({}) },
  });
  const { url } = s;
  await using c = await Client.open(url);
  const list = await c.next();
  assert.deepEqual(Object.keys(list.data), ["20", "21"]);
  assert.equal(list.data["21"].default, true);
  assert.equal("is_default" in list.data["21"], false);
  assert.equal((await c.join("default")).data.serverName, "B");
  assert.deepEqual((await c.join("hidden")).data, { message: ERRORS.noSuchServer });
});

Deno.test("clientId is in server-join only when known", async () => {
  await using s = await startServer({
    callbacks: { getClientId: (id) => id === DWORLD ? "1234567890" : null },
  });
  const { url } = s;
  await using c = await joined(url);
  assert.equal((await c.join("dworld")).data.clientId, "1234567890");
  assert.equal("clientId" in (await c.join("docs")).data, false);
});

Deno.test("switching servers moves the connection: it only hears the new server", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using c = await joined(url, "dworld");
  const join = await c.join("repos");
  assert.equal(Object.keys(join.data.users).length, 21);
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "old", channel: "1" }),
    0,
  );
  assert.equal(
    server.broadcastMessage({ server: REPOS, uid: "1", message: "new", channel: "1" }),
    1,
  );
  const m = await c.nextOf("message");
  assert.equal(m.server, REPOS);
  assert.equal(m.data.message, "new");
  // A failed join leaves the connection where it was.
  assert.equal((await c.join("nope")).type, "error");
  assert.equal(
    server.broadcastMessage({ server: REPOS, uid: "1", message: "still", channel: "1" }),
    1,
  );
});

Deno.test("frames of one connection are answered in order even when callbacks are slow", async () => {
  let delay = 80;
  await using s = await startServer({
    callbacks: {
      getServerData: () => ({
        "1": { id: "a", name: "A", default: true },
        "2": { id: "b", name: "B" },
      }),
      getUserData: async () => {
        const d = delay;
        delay = 0;
        await new Promise((r) => setTimeout(r, d));
        return {};
      },
    },
    userDataCacheMs: 0,
  });
  const { url } = s;
  await using c = await joined(url);
  c.send({ type: "connect", data: { server: "a" } });
  c.send("garbage");
  c.send({ type: "connect", data: { server: "b" } });
  assert.equal((await c.next()).data.serverName, "A");
  assert.equal((await c.next()).data.message, "Invalid JSON");
  assert.equal((await c.next()).data.serverName, "B");
});
