// The five hooks: sync and async, registered both ways, and contained when they fail.
import assert from "node:assert/strict";
import { type Callbacks, ERRORS, type ServerMap, type UserMap } from "../../mod.ts";
import { Client, joined, startServer } from "../_fixtures/helpers.ts";

const SERVERS: ServerMap = {
  "100": { id: "main", name: "Main", default: true },
  "101": { id: "vip", name: "VIP", passworded: true },
};
const USERS: UserMap = {
  "7": { uid: "7", username: "ada", status: "online", roleColor: "#123456" },
  "8": { username: "bob", status: "dnd" },
};

for (const mode of ["sync", "async"] as const) {
  Deno.test(`${mode} data callbacks feed server-list and server-join`, async () => {
    const wrap = <T>(v: T) => mode === "sync" ? v : Promise.resolve(v);
    const asked: string[] = [];
    await using s = await startServer({
      callbacks: {
        getServerData: () => wrap(SERVERS),
        getUserData: (id) => {
          asked.push(id);
          return wrap(USERS) as UserMap;
        },
        getClientId: () => wrap("555"),
      },
    });
    const { url } = s;
    await using c = await Client.open(url);
    assert.deepEqual(Object.keys((await c.next()).data), ["100", "101"]);
    const j = await c.join("main");
    assert.deepEqual(asked, ["100"]);
    assert.deepEqual(j.data.users, {
      "7": { uid: "7", username: "ada", status: "online", roleColor: "#123456" },
      "8": { uid: "8", username: "bob", status: "dnd", roleColor: "#ffffff" },
    });
    assert.equal(j.data.clientId, "555");
  });
}

Deno.test("the reference-style on… methods fill the same callback map", async () => {
  await using s = await startServer();
  const { server, url, http } = s;
  server
    .onGetServerData(() => SERVERS)
    .onGetUserData(() => USERS)
    .onGetClientId(() => "999")
    .onValidateDiscordUser((token) => token === "good")
    .onStaticRequest((path) => path === "/hello" ? ["text/plain", "hi"] : null);
  assert.equal(typeof server.callbacks.getServerData, "function");
  await using c = await Client.open(url);
  assert.deepEqual(Object.keys((await c.next()).data), ["100", "101"]);
  const user = { id: "1", username: "u" };
  assert.deepEqual((await c.join("vip", { discordToken: "bad", discordUser: user })).data, {
    message: ERRORS.authFailed,
  });
  const ok = await c.join("vip", { discordToken: "good", discordUser: user });
  assert.equal(ok.type, "server-join");
  assert.equal(ok.data.clientId, "999");
  const res = await fetch(`${http}/hello`);
  assert.equal(await res.text(), "hi");
});

Deno.test("validateDiscordUser receives the token, the claimed user (id and username only) and the Discord id", async () => {
  const seen: unknown[] = [];
  await using s = await startServer({
    callbacks: {
      getServerData: () => SERVERS,
      getUserData: () => ({}),
      validateDiscordUser: async (token, user, serverId) => {
        seen.push([token, user, serverId]);
        await new Promise((r) => setTimeout(r, 5));
        return true;
      },
    },
  });
  const { url } = s;
  await using c = await joined(url);
  const user = { id: "1", username: "u", avatar: null };
  assert.equal((await c.join("vip", { discordToken: "t", discordUser: user })).type, "server-join");
  assert.deepEqual(seen, [["t", { id: "1", username: "u" }, "101"]]);
});

const failures: Array<[string, Callbacks["getUserData"]]> = [
  ["throws", () => {
    throw new Error("database down");
  }],
  ["rejects", () => Promise.reject(new Error("database down"))],
  ["returns null", () => null as unknown as UserMap],
  ["returns a string", () => "users" as unknown as UserMap],
];

// One bad entry no longer makes the whole server unavailable: it is skipped and named once.
const badEntries: Array<[string, Callbacks["getUserData"]]> = [
  ["garbage", () => ({ "1": { username: 5, status: "sleeping" } }) as unknown as UserMap],
  ["a bad colour", () => ({ "1": { username: "x", status: "online", roleColor: "red" } })],
];
for (const [what, bad] of badEntries) {
  Deno.test(`getUserData with an entry of ${what}: the entry is skipped with a warning naming it, the rest is served`, async () => {
    await using s = await startServer({
      callbacks: {
        getServerData: () => SERVERS,
        getUserData: (id) => ({ ...bad!(id), "2": { username: "ok", status: "idle" } }),
      },
    });
    await using c = await joined(s.url);
    const join = await c.join("main");
    assert.equal(join.type, "server-join");
    assert.deepEqual(Object.keys(join.data.users), ["2"]);
    const line = s.logs.find((l) =>
      l.message.includes("getUserData(100): skipped 1 malformed entry")
    );
    assert.ok(line, "a warning names the callback and the entry");
    assert.equal(line.level, "warn");
    assert.match(line.message, /"1": /);
  });
}
for (const [what, getUserData] of failures) {
  Deno.test(`getUserData that ${what}: error frame, log line naming it, connection and server keep working`, async () => {
    let broken = true;
    await using s = await startServer({
      callbacks: {
        getServerData: () => SERVERS,
        getUserData: (id) => broken ? getUserData!(id) : USERS,
      },
    });
    const { url, logs } = s;
    await using c = await joined(url);
    await using other = await joined(url);
    assert.deepEqual((await c.join("main")).data, { message: ERRORS.serverUnavailable });
    const line = logs.find((l) => l.message.includes("getUserData"));
    assert.ok(line, "a log line names the callback");
    assert.equal(line.level, "error");
    broken = false;
    assert.equal((await c.join("main")).type, "server-join");
    assert.equal((await other.join("main")).type, "server-join");
  });
}

Deno.test("getServerData that fails: the client gets an error frame instead of a list, and can retry", async () => {
  let calls = 0;
  await using s = await startServer({
    callbacks: {
      getServerData: () => {
        if (calls++ === 0) throw new Error("boom");
        return SERVERS;
      },
      getUserData: () => USERS,
    },
  });
  const { url, logs } = s;
  await using c = await Client.open(url);
  assert.deepEqual(await c.next(), {
    type: "error",
    data: { message: ERRORS.serverListUnavailable },
  });
  assert.ok(logs.some((l) => l.message === "callback getServerData threw: boom"));
  assert.equal((await c.join("main")).type, "server-join");
});

Deno.test("a hanging callback hits its deadline; others are unaffected", async () => {
  await using s = await startServer({
    callbackTimeoutMs: 150,
    callbacks: {
      getServerData: () => SERVERS,
      getUserData: () => new Promise<UserMap>(() => {}),
      getClientId: () => "1",
    },
    userDataCacheMs: 0,
  });
  const { url, logs } = s;
  await using a = await joined(url);
  await using b = await joined(url);
  const started = Date.now();
  a.send({ type: "connect", data: { server: "main" } });
  // While a waits, b is served (its list already came; it can still talk).
  b.send("x");
  assert.equal((await b.next()).data.message, "Invalid JSON");
  assert.deepEqual((await a.next()).data, { message: ERRORS.serverUnavailable });
  assert.ok(Date.now() - started >= 140);
  assert.ok(logs.some((l) => l.message.startsWith("callback getUserData timed out")));
  assert.equal(a.ws.readyState, WebSocket.OPEN);
});

Deno.test("a validator that throws or answers non-boolean refuses (fails closed)", async () => {
  let answer: () => unknown = () => {
    throw new Error("oops");
  };
  await using s = await startServer({
    callbacks: {
      getServerData: () => SERVERS,
      getUserData: () => ({}),
      validateDiscordUser: () => answer() as boolean,
    },
  });
  const { url } = s;
  await using c = await joined(url);
  const creds = { discordToken: "t", discordUser: { id: "1", username: "u" } };
  assert.deepEqual((await c.join("vip", creds)).data, { message: ERRORS.authFailed });
  answer = () => "yes";
  assert.deepEqual((await c.join("vip", creds)).data, { message: ERRORS.authFailed });
  answer = () => 1;
  assert.deepEqual((await c.join("vip", creds)).data, { message: ERRORS.authFailed });
  answer = () => true;
  assert.equal((await c.join("vip", creds)).type, "server-join");
});

Deno.test("staticRequest: tuple with string or bytes, Response, fall-through, garbage → 500", async () => {
  await using srv = await startServer({
    callbacks: {
      staticRequest: async (path) => {
        await Promise.resolve();
        if (path === "/s") return ["text/plain; charset=utf-8", "string body"];
        if (path === "/b") return ["application/octet-stream", new Uint8Array([1, 2, 3])];
        if (path === "/r") return new Response("teapot", { status: 418 });
        if (path === "/bad") return { nope: true } as unknown as Response;
        if (path === "/throw") throw new Error("hook exploded");
        return undefined;
      },
    },
  });
  const { http, logs } = srv;
  const s = await fetch(`${http}/s?query=ignored`);
  assert.equal(s.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await s.text(), "string body");
  const b = await fetch(`${http}/b`);
  assert.deepEqual(new Uint8Array(await b.arrayBuffer()), new Uint8Array([1, 2, 3]));
  const r = await fetch(`${http}/r`);
  assert.equal(r.status, 418);
  assert.equal(await r.text(), "teapot");
  const fall = await fetch(`${http}/`);
  assert.equal(fall.status, 200);
  assert.match(await fall.text(), /<html/i);
  const bad = await fetch(`${http}/bad`);
  assert.equal(bad.status, 500);
  await bad.body?.cancel();
  const thrown = await fetch(`${http}/throw`);
  assert.equal(thrown.status, 500);
  await thrown.body?.cancel();
  assert.ok(logs.some((l) => l.message === "callback staticRequest threw: hook exploded"));
});

Deno.test("concurrent joins share one getUserData call; a presence broadcast patches the cached map without a new call", async () => {
  let calls = 0;
  const users: UserMap = { "1": { username: "a", status: "online" } };
  await using s = await startServer({
    callbacks: {
      getServerData: () => SERVERS,
      getUserData: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 30));
        return users;
      },
    },
    userDataCacheMs: 60_000,
  });
  const { server, url } = s;
  await using stack = new AsyncDisposableStack();
  const clients = (await Promise.all(Array.from({ length: 10 }, () => joined(url))))
    .map((c) => stack.use(c));
  const joins = await Promise.all(clients.map((c) => c.join("main")));
  assert.ok(joins.every((j) => j.type === "server-join"));
  assert.equal(calls, 1);
  server.broadcastPresence({ server: "100", uid: "1", status: "idle" });
  server.broadcastPresence({ server: "100", uid: "2", status: "dnd", username: "new" });
  server.broadcastPresence({ server: "100", uid: "3", status: "online" }); // unknown, no name: skipped
  await using late = await joined(url);
  const map = (await late.join("main")).data.users;
  assert.deepEqual(map, {
    "1": { uid: "1", username: "a", status: "idle", roleColor: "#ffffff" },
    "2": { uid: "2", username: "new", status: "dnd", roleColor: "#ffffff" },
  });
  assert.equal(calls, 1, "the map was patched, not asked for again");
  server.broadcastPresence({ server: "100", uid: "2", status: "offline", delete: true });
  await using later = await joined(url);
  assert.deepEqual(Object.keys((await later.join("main")).data.users), ["1"]);
});

Deno.test("getClientId: with no hook and no source method, joins ask nothing; a hook registered later is asked", async () => {
  const { defaultBase, withCallbacks } = await import("../../src/sources/_callbacks.ts");
  const { MockSource } = await import("../../mod.ts");
  const hooks: Callbacks = {};
  const source = withCallbacks(defaultBase(new MockSource(), hooks), hooks);
  const method = () => source.getClientId;
  assert.equal(method(), undefined, "a method that can only answer 'none'");
  hooks.getClientId = (id) => `id-of-${id}`;
  assert.equal(await method()?.("100"), "id-of-100");
});
