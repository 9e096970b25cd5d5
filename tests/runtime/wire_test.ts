// The wire-level suite, once per runtime (a server in a child process: Deno, Deno with the Node
// transport, Bun, Node): protocol conversation and error texts, broadcasts and isolation, server
// switching, mounting, static edge cases, rate limit and caps, and the drain on SIGTERM.
import assert from "node:assert/strict";
import { ERRORS } from "../../mod.ts";
import { RUNTIMES, RuntimeServer } from "../_fixtures/runtimes.ts";
import {
  assertNoTraversal,
  Client,
  DOCS,
  DWORLD,
  joined,
  OAUTH,
  rawUpgrade,
  REPOS,
  until,
} from "../_fixtures/helpers.ts";

const chat = (server: string, message = "hello") => ({
  server,
  uid: "123456789012345001",
  message,
  channel: "527964146659229701",
});

for (const rt of RUNTIMES) {
  Deno.test(`${rt}: the protocol conversation, frame by frame, with every error text`, async () => {
    await using srv = await RuntimeServer.start(rt);
    assert.equal(srv.runtime, rt === "deno-node" ? "node" : rt);
    const c = await Client.open(srv.url);
    const list = await c.next();
    assert.equal(list.type, "server-list");
    assert.deepEqual(list.data, {
      [DWORLD]: { id: "dworld", name: "D-World", default: true, passworded: false },
      [DOCS]: { id: "docs", name: "Docs (WIP)", default: false, passworded: false },
      [OAUTH]: { id: "oauth", name: "OAuth2 Protected Server", default: false, passworded: true },
      [REPOS]: { id: "repos", name: "My Repos", default: false, passworded: false },
    });
    c.send({ type: "connect", data: { server: "dworld" } });
    const join = await c.next();
    assert.ok(c.raw[1].startsWith('{"type":"server-join","data":{"users":{'));
    assert.deepEqual(join.data.request, { server: "dworld" });
    assert.equal(join.data.serverName, "D-World");
    assert.equal(Object.keys(join.data.users).length, 4);

    await srv.call("broadcastPresence", {
      server: DWORLD,
      uid: "42",
      status: "online",
      username: "n",
    });
    await srv.call("broadcastMessage", chat(DWORLD));
    await srv.call("broadcastClientIdUpdate", { server: DWORLD, clientId: "1234567890" });
    for (let i = 0; i < 3; i++) await c.next();
    assert.deepEqual(c.raw.slice(2), [
      `{"type":"presence","server":"${DWORLD}","data":{"uid":"42","status":"online","username":"n"}}`,
      `{"type":"message","server":"${DWORLD}","data":{"uid":"123456789012345001","message":"hello","channel":"527964146659229701"}}`,
      `{"type":"update-clientid","server":"${DWORLD}","data":{"clientId":"1234567890"}}`,
    ]);

    const errors: Array<[unknown, string]> = [
      ["not json at all", ERRORS.invalidJson],
      [{ type: "hello", data: {} }, ERRORS.unknownType],
      [{ type: "connect" }, ERRORS.invalidConnect],
      [{ type: "connect", data: "dworld" }, ERRORS.invalidConnect],
      [{ type: "connect", data: { server: { id: "dworld" } } }, ERRORS.invalidServer],
      [{ type: "connect", data: { server: "nope" } }, ERRORS.noSuchServer],
      [{ type: "connect", data: { server: "oauth" } }, ERRORS.authRequired],
      ["[1,2,3]", ERRORS.unknownType],
    ];
    for (const [frame, message] of errors) {
      c.send(frame);
      assert.deepEqual(await c.next(), { type: "error", data: { message } }, JSON.stringify(frame));
    }
    c.ws.send(new Uint8Array([0xff, 0xfe]));
    assert.deepEqual((await c.next()).data, { message: ERRORS.invalidBinary });
    c.ws.send(
      new TextEncoder().encode(JSON.stringify({ type: "connect", data: { server: "docs" } })),
    );
    assert.equal((await c.next()).data.serverName, "Docs (WIP)");
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await c.close();
  });

  Deno.test(`${rt}: broadcasts reach exactly the joined connections of their server; switching moves a client`, async () => {
    await using srv = await RuntimeServer.start(rt, {
      mock: { presenceIntervalMs: 86_400_000, messageIntervalMs: 86_400_000 },
    });
    const a = await joined(srv.url, "dworld");
    const b = await joined(srv.url, "dworld");
    const d = await joined(srv.url, "docs");
    const idle = await joined(srv.url);
    assert.equal(await srv.call("broadcastMessage", chat(DWORLD, "to dworld")), 2);
    assert.equal(await srv.call("broadcastMessage", chat(DOCS, "to docs")), 1);
    assert.equal(await srv.call("broadcastMessage", chat(REPOS, "to nobody")), 0);
    assert.equal((await a.nextOf("message")).data.message, "to dworld");
    assert.equal((await b.nextOf("message")).data.message, "to dworld");
    assert.equal((await d.nextOf("message")).data.message, "to docs");
    // a switches to docs: it only hears docs now.
    assert.equal((await a.join("docs")).type, "server-join");
    assert.equal(await srv.call("broadcastMessage", chat(DWORLD, "dworld 2")), 1);
    assert.equal(await srv.call("broadcastMessage", chat(DOCS, "docs 2")), 2);
    assert.equal((await a.nextOf("message")).data.message, "docs 2");
    assert.equal((await b.nextOf("message")).data.message, "dworld 2");
    assert.equal((await d.nextOf("message")).data.message, "docs 2");
    assert.deepEqual((await a.quiet(100)).filter((f) => f.type === "message"), []);
    assert.deepEqual((await idle.quiet(0)).filter((f) => f.type === "message"), []);
    // A closed client leaves its room.
    await b.close();
    await until(() => srv.logs.some((l) => /disconnected/.test(l.message)));
    assert.equal(await srv.call("broadcastMessage", chat(DWORLD, "after")), 0);
    for (const c of [a, d, idle]) await c.close();
  });

  Deno.test(`${rt}: static files, their edge cases, /api/version, /healthz, /metrics, 405`, async () => {
    const root = await Deno.makeTempDir({ prefix: "dback-bun-static-" });
    const dir = `${root}/site`;
    await Deno.mkdir(`${dir}/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/index.html`, "home");
    await Deno.writeTextFile(`${dir}/sub/index.html`, "sub index");
    await Deno.writeTextFile(`${dir}/a b.txt`, "spaced");
    await Deno.writeFile(`${dir}/big.wasm`, new Uint8Array(3 * 1024 * 1024).fill(7));
    await Deno.writeTextFile(`${root}/secret.txt`, "top secret");
    await Deno.symlink(`${root}/secret.txt`, `${dir}/link-out.txt`);
    try {
      await using srv = await RuntimeServer.start(rt, { options: { staticDir: dir } });
      const get = async (path: string, init?: RequestInit) => {
        const res = await fetch(srv.http + path, init);
        return {
          status: res.status,
          type: res.headers.get("content-type"),
          body: await res.text(),
        };
      };
      assert.deepEqual(await get("/?x=1"), {
        status: 200,
        type: "text/html; charset=utf-8",
        body: "home",
      });
      assert.equal((await get("/sub")).body, "sub index");
      assert.equal((await get("/sub/")).body, "sub index");
      assert.equal((await get("/a%20b.txt")).body, "spaced");
      const big = await fetch(`${srv.http}/big.wasm`);
      assert.equal(big.headers.get("content-type"), "application/wasm");
      assert.equal((await big.arrayBuffer()).byteLength, 3 * 1024 * 1024);
      const head = await fetch(`${srv.http}/a%20b.txt`, { method: "HEAD" });
      assert.equal(head.headers.get("content-length"), "6");
      assert.equal(await head.text(), "");
      assert.equal((await get("/missing.txt")).status, 404);
      await assertNoTraversal(srv.port);
      assert.equal((await get("/index.html%00.txt")).status, 400);
      assert.equal((await get("/%ff")).status, 400);
      assert.equal((await get("/", { method: "POST", body: "x" })).status, 405);
      assert.equal((await get("/api/version")).type, "application/json; charset=utf-8");
      assert.deepEqual(await get("/healthz"), {
        status: 200,
        type: "text/plain; charset=utf-8",
        body: "ok\n",
      });
      assert.match((await get("/metrics")).body, /dback_/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  // Mounting in an app's own server is offered on Bun (Bun.serve + dback's websocket handlers) and
  // Deno (Deno.serve + dback's fetch); the Node transport serves its own node:http server only.
  Deno.test({
    name: `${rt}: mounted in a server the app owns`,
    ignore: rt === "node" || rt === "deno-node",
  }, async () => {
    await using srv = await RuntimeServer.start(rt, { mount: true });
    assert.equal(await (await fetch(`${srv.http}/app/x`)).text(), "my app");
    assert.equal(await (await fetch(`${srv.http}/healthz`)).text(), "ok\n");
    const c = await joined(srv.url, "dworld");
    assert.equal(await srv.call("broadcastMessage", chat(DWORLD, "mounted")), 1);
    assert.equal((await c.nextOf("message")).data.message, "mounted");
    await c.close();
  });

  Deno.test(`${rt}: rate limit closes with 1008, caps answer 503/429 before the upgrade`, async () => {
    await using srv = await RuntimeServer.start(rt, {
      options: { ratePerSecond: 1, rateBurst: 3, rateStrikes: 4, maxConnectionsPerIp: 2 },
    });
    const c = await joined(srv.url);
    for (let i = 0; i < 10; i++) c.send("junk");
    const ev = await c.closed;
    assert.deepEqual(c.frames.slice(1).map((f) => f.data.message), [
      ...Array(3).fill(ERRORS.invalidJson),
      ...Array(4).fill(ERRORS.rateLimited),
    ]);
    assert.equal(ev.code, 1008);
    assert.equal(ev.reason, "Rate limit exceeded");
    await until(() => srv.logs.some((l) => /disconnected/.test(l.message)));
    // The connection dback dropped stays charged to the address (its quarantine): one slot left.
    const a = await rawUpgrade(srv.port);
    const x = await rawUpgrade(srv.port);
    assert.deepEqual([a.status, x.status], [101, 429]);
    for (const s of [a, x]) s.conn.close();
  });

  Deno.test(`${rt}: SIGTERM drains: clients get 1001 and the process exits 0`, async () => {
    await using srv = await RuntimeServer.start(rt, { options: { shutdownTimeoutMs: 2000 } });
    const c = await joined(srv.url, "dworld");
    const status = await srv.terminate();
    const ev = await c.closed;
    assert.equal(ev.code, 1001);
    assert.equal(status.code, 0);
    assert.ok(srv.stopped || srv.logs.some((l) => l.message === "stopped"));
  });
}
