// Broadcasts reach exactly the connections joined to that Discord server; mock activity is per server.
import assert from "node:assert/strict";
import { MockSource } from "../../mod.ts";
import { Client, DOCS, DWORLD, joined, REPOS, startServer, until } from "../_fixtures/helpers.ts";

Deno.test("each broadcast reaches exactly the connections joined to its server, and says how many", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using clients = new AsyncDisposableStack();
  const world = (await Promise.all([
    joined(url, "dworld"),
    joined(url, "dworld"),
    joined(url, "dworld"),
  ])).map((c) => clients.use(c));
  const docs = (await Promise.all([joined(url, "docs"), joined(url, "docs")]))
    .map((c) => clients.use(c));
  await using lobby = await joined(url); // connected, never joined
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "w", channel: "c" }),
    3,
  );
  assert.equal(server.broadcastPresence({ server: DOCS, uid: "1", status: "dnd" }), 2);
  assert.equal(server.broadcastClientIdUpdate({ server: REPOS, clientId: "9" }), 0);
  assert.equal(server.broadcastMessage({ server: "999", uid: "1", message: "x", channel: "c" }), 0);
  for (const c of world) {
    const f = await c.next();
    assert.deepEqual(f, {
      type: "message",
      server: DWORLD,
      data: { uid: "1", message: "w", channel: "c" },
    });
  }
  for (const c of docs) {
    assert.deepEqual(await c.next(), {
      type: "presence",
      server: DOCS,
      data: { uid: "1", status: "dnd" },
    });
  }
  for (const c of [...world, ...docs, lobby]) assert.deepEqual(await c.quiet(50), []);
});

Deno.test("broadcast input is validated: a clear TypeError, nothing sent", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using c = await joined(url, "dworld");
  assert.throws(
    () => server.broadcastPresence({ server: DWORLD, uid: "1", status: "away" as "idle" }),
    TypeError,
  );
  assert.throws(
    () => server.broadcastPresence({ server: DWORLD, uid: "1", status: "idle", roleColor: "red" }),
    /broadcastPresence: roleColor/,
  );
  assert.throws(
    () => server.broadcastMessage({ server: DWORLD, uid: "1" } as never),
    /broadcastMessage/,
  );
  assert.throws(() => server.broadcastClientIdUpdate({ server: "", clientId: "1" }), TypeError);
  assert.deepEqual(await c.quiet(50), []);
});

Deno.test("a connection that closes mid-broadcast is not an error for anyone else", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using a = await joined(url, "dworld");
  await using b = await joined(url, "dworld");
  a.ws.close();
  // Without waiting for the close to arrive, broadcast repeatedly.
  let total = 0;
  for (let i = 0; i < 20; i++) {
    total += server.broadcastMessage({ server: DWORLD, uid: "1", message: `m${i}`, channel: "c" });
  }
  assert.ok(total >= 20);
  for (let i = 0; i < 20; i++) assert.equal((await b.next()).data.message, `m${i}`);
  await a.closed;
  await until(() =>
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "z", channel: "c" }) === 1
  );
});

Deno.test("mock activity: presence and chat per joined server, at the configured intervals, from that server's users", async () => {
  await using s = await startServer({
    source: new MockSource({ presenceIntervalMs: 40, messageIntervalMs: 60 }),
  });
  const { url } = s;
  await using c = await joined(url, "docs");
  const seen = { presence: 0, message: 0 };
  const started = Date.now();
  while (seen.presence < 3 || seen.message < 3) {
    const f = await c.next();
    assert.equal(f.server, DOCS);
    assert.equal(f.data.uid, "223456789012345001");
    if (f.type === "message") {
      assert.equal(f.data.channel, "527964146659229701");
      assert.ok(
        ["hello", "how are you?", "this is a test message", "D-Zone rocks!", "what's up?"]
          .includes(f.data.message),
      );
    } else {
      assert.equal(f.type, "presence");
      assert.ok(["online", "idle", "dnd", "offline"].includes(f.data.status));
    }
    seen[f.type as "presence" | "message"]++;
  }
  // Three of each at 40 ms / 60 ms take at least ~180 ms.
  assert.ok(Date.now() - started >= 150);
});

Deno.test("mock activity runs only for servers with viewers and moves with a switching client", async () => {
  const mock = new MockSource({ presenceIntervalMs: 30, messageIntervalMs: 30 });
  await using s = await startServer({ source: mock });
  const { url } = s;
  assert.deepEqual(mock.watched, []);
  await using c = await joined(url, "dworld");
  assert.deepEqual(mock.watched, [DWORLD]);
  await c.nextOf("presence");
  await c.join("repos");
  assert.deepEqual(mock.watched, [REPOS]);
  await c.quiet(20); // drop anything sent before the switch landed
  for (let i = 0; i < 6; i++) {
    const f = await c.next();
    assert.equal(f.server, REPOS);
    assert.ok(f.data.uid.startsWith("4234567890123450"));
  }
  await c.close();
  await until(() => mock.watched.length === 0, 3000, "ticker to stop");
});

Deno.test("mock presence changes are kept: a later joiner sees the new status", async () => {
  const mock = new MockSource({ presenceIntervalMs: 1e9, messageIntervalMs: 1e9 });
  await using s = await startServer({ source: mock });
  const { url } = s;
  await using a = await joined(url, "docs");
  mock.tickPresence(DOCS);
  const p = await a.nextOf("presence");
  await using b = await joined(url);
  const j = await b.join("docs");
  assert.equal(j.data.users["223456789012345001"].status, p.data.status);
});

Deno.test("one broadcast is serialised once: every client receives identical bytes", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using stack = new AsyncDisposableStack();
  const clients = (await Promise.all(Array.from({ length: 5 }, () => joined(url, "dworld"))))
    .map((c) => stack.use(c));
  server.broadcastMessage({ server: DWORLD, uid: "1", message: 'é ✓ "q"', channel: "c" });
  await Promise.all(clients.map((c) => c.nextOf("message")));
  const bodies = new Set(clients.map((c) => c.raw[c.raw.length - 1]));
  assert.equal(bodies.size, 1);
});

Deno.test("a never-joined client gets no broadcasts", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using c = await Client.open(url);
  await c.next();
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "m", channel: "c" }),
    0,
  );
  assert.deepEqual(await c.quiet(30), []);
});
