// The wire-level suite against a server running under Bun (tests/_fixtures/bun_fixture.ts in a child
// process): protocol conversation and error texts, broadcasts and isolation, server switching,
// mounting, static edge cases, limits and attacks, and the drain on SIGTERM.
import assert from "node:assert/strict";
import { ERRORS } from "../../mod.ts";
import { BunServer } from "../_fixtures/_bun.ts";
import {
  Client,
  DOCS,
  DWORLD,
  joined,
  OAUTH,
  rawGet,
  rawSend,
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

Deno.test("bun: the protocol conversation, frame by frame, with every error text", async () => {
  await using bun = await BunServer.start();
  assert.equal(bun.runtime, "bun");
  const c = await Client.open(bun.url);
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

  await bun.call("broadcastPresence", {
    server: DWORLD,
    uid: "42",
    status: "online",
    username: "n",
  });
  await bun.call("broadcastMessage", chat(DWORLD));
  await bun.call("broadcastClientIdUpdate", { server: DWORLD, clientId: "1234567890" });
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

Deno.test("bun: broadcasts reach exactly the joined connections of their server; switching moves a client", async () => {
  await using bun = await BunServer.start({
    mock: { presenceIntervalMs: 86_400_000, messageIntervalMs: 86_400_000 },
  });
  const a = await joined(bun.url, "dworld");
  const b = await joined(bun.url, "dworld");
  const d = await joined(bun.url, "docs");
  const idle = await joined(bun.url);
  assert.equal(await bun.call("broadcastMessage", chat(DWORLD, "to dworld")), 2);
  assert.equal(await bun.call("broadcastMessage", chat(DOCS, "to docs")), 1);
  assert.equal(await bun.call("broadcastMessage", chat(REPOS, "to nobody")), 0);
  assert.equal((await a.nextOf("message")).data.message, "to dworld");
  assert.equal((await b.nextOf("message")).data.message, "to dworld");
  assert.equal((await d.nextOf("message")).data.message, "to docs");
  // a switches to docs: it only hears docs now.
  assert.equal((await a.join("docs")).type, "server-join");
  assert.equal(await bun.call("broadcastMessage", chat(DWORLD, "dworld 2")), 1);
  assert.equal(await bun.call("broadcastMessage", chat(DOCS, "docs 2")), 2);
  assert.equal((await a.nextOf("message")).data.message, "docs 2");
  assert.equal((await b.nextOf("message")).data.message, "dworld 2");
  assert.equal((await d.nextOf("message")).data.message, "docs 2");
  assert.deepEqual((await a.quiet(100)).filter((f) => f.type === "message"), []);
  assert.deepEqual((await idle.quiet(0)).filter((f) => f.type === "message"), []);
  // A closed client leaves its room.
  await b.close();
  await until(() => bun.logs.some((l) => /disconnected/.test(l.message)));
  assert.equal(await bun.call("broadcastMessage", chat(DWORLD, "after")), 0);
  for (const c of [a, d, idle]) await c.close();
});

Deno.test("bun: static files, their edge cases, /api/version, /healthz, /metrics, 405", async () => {
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
    await using bun = await BunServer.start({ options: { staticDir: dir } });
    const get = async (path: string, init?: RequestInit) => {
      const res = await fetch(bun.http + path, init);
      return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
    };
    assert.deepEqual(await get("/?x=1"), {
      status: 200,
      type: "text/html; charset=utf-8",
      body: "home",
    });
    assert.equal((await get("/sub")).body, "sub index");
    assert.equal((await get("/sub/")).body, "sub index");
    assert.equal((await get("/a%20b.txt")).body, "spaced");
    const big = await fetch(`${bun.http}/big.wasm`);
    assert.equal(big.headers.get("content-type"), "application/wasm");
    assert.equal((await big.arrayBuffer()).byteLength, 3 * 1024 * 1024);
    const head = await fetch(`${bun.http}/a%20b.txt`, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), "6");
    assert.equal(await head.text(), "");
    assert.equal((await get("/missing.txt")).status, 404);
    for (
      const path of [
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub/..%2F..%2Fsecret.txt",
        "/..%5csecret.txt",
        "/link-out.txt",
      ]
    ) {
      const text = await rawGet(bun.port, path);
      assert.match(text, /^HTTP\/1\.1 403/, path);
      assert.equal(text.includes("top secret"), false, path);
    }
    assert.equal((await get("/index.html%00.txt")).status, 400);
    assert.equal((await get("/%ff")).status, 400);
    assert.equal((await get("/", { method: "POST", body: "x" })).status, 405);
    assert.equal((await get("/api/version")).type, "application/json;charset=utf-8");
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

Deno.test("bun: mounted in a Bun.serve the app owns, with dback's websocket handlers", async () => {
  await using bun = await BunServer.start({ mount: true });
  assert.equal(await (await fetch(`${bun.http}/app/x`)).text(), "my app");
  assert.equal(await (await fetch(`${bun.http}/healthz`)).text(), "ok\n");
  const c = await joined(bun.url, "dworld");
  assert.equal(await bun.call("broadcastMessage", chat(DWORLD, "mounted")), 1);
  assert.equal((await c.nextOf("message")).data.message, "mounted");
  await c.close();
});

Deno.test("bun: oversized and fragmented-oversized messages close with 1009 before they are buffered", async () => {
  await using bun = await BunServer.start({ options: { maxFrameBytes: 1024 } });
  const c = await joined(bun.url, "dworld");
  c.send("y".repeat(2000));
  assert.equal((await c.closed).code, 1009);
  const ok = await joined(bun.url);
  ok.send({ type: "connect", data: { server: "dworld", pad: "x".repeat(900) } });
  assert.equal((await ok.next()).type, "server-join");
  await ok.close();

  // Raw TCP: a message sent as many small continuation frames, never finished.
  const before = await bun.call<number>("rss");
  const attackers = 20;
  for (let n = 0; n < attackers; n++) {
    const { status, conn } = await rawUpgrade(bun.port);
    assert.equal(status, 101);
    // 4 KiB pieces (16-bit length), masked with a zero mask: the payload goes as is.
    const piece = new Uint8Array(4 + 4 + 4096).fill(0x61);
    piece.set([0x01, 0x80 | 126, 0x10, 0x00, 0, 0, 0, 0]); // first: text, not FIN
    const cont = piece.slice();
    cont.set([0x00, 0x80 | 126, 0x10, 0x00, 0, 0, 0, 0]); // continuation, not FIN
    const sink = (async () => {
      const bytes: number[] = [];
      try {
        for await (const b of conn.readable) bytes.push(...b);
      } catch { /* reset */ }
      return bytes;
    })();
    try {
      await conn.write(piece);
      // 1 MiB per attacker, 20 MiB in all: buffered, it would show in the RSS bound below.
      for (let i = 0; i < 256; i++) await conn.write(cont);
    } catch { /* the server hung up mid-attack: that is the point */ }
    const got = await sink;
    const i = got.indexOf(0x88);
    assert.ok(i >= 0, "a close frame came back");
    assert.equal((got[i + 2] << 8) | got[i + 3], 1009);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  // A single frame header announcing 1 GiB is refused too, without waiting for its payload.
  {
    const { conn } = await rawUpgrade(bun.port);
    const header = new Uint8Array([0x81, 0x80 | 127, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0]);
    await conn.write(header);
    const got: number[] = [];
    for await (const b of conn.readable) got.push(...b);
    const i = got.indexOf(0x88);
    assert.equal((got[i + 2] << 8) | got[i + 3], 1009);
  }
  const after = await bun.call<number>("rss");
  assert.ok(after - before < 8 * 1024 * 1024, `RSS grew by ${after - before} bytes`);
  for (let i = 0; i < 100 && (await bun.call<number>("count")) > 0; i++) {
    await new Promise((r) => setTimeout(r, 30));
  }
  assert.equal(await bun.call("count"), 0, "every attacker's slot is free");
});

Deno.test("bun: rate limit closes with 1008, caps answer 503/429 before the upgrade", async () => {
  await using bun = await BunServer.start({
    options: { ratePerSecond: 1, rateBurst: 3, rateStrikes: 4, maxConnectionsPerIp: 2 },
  });
  const c = await joined(bun.url);
  for (let i = 0; i < 10; i++) c.send("junk");
  const ev = await c.closed;
  assert.deepEqual(c.frames.slice(1).map((f) => f.data.message), [
    ...Array(3).fill(ERRORS.invalidJson),
    ...Array(4).fill(ERRORS.rateLimited),
  ]);
  assert.equal(ev.code, 1008);
  assert.equal(ev.reason, "Rate limit exceeded");
  await until(() => bun.logs.some((l) => /disconnected/.test(l.message)));
  const a = await rawUpgrade(bun.port);
  const b = await rawUpgrade(bun.port);
  const x = await rawUpgrade(bun.port);
  assert.deepEqual([a.status, b.status, x.status], [101, 101, 429]);
  for (const s of [a, b, x]) s.conn.close();
});

async function stalledReader(options: {
  highWaterBytes: number;
  slowClientGraceMs: number;
  maxBufferedBytes: number;
}): Promise<BunServer> {
  const bun = await BunServer.start({
    options,
    mock: { presenceIntervalMs: 86_400_000, messageIntervalMs: 86_400_000 },
  });
  const slow = await rawUpgrade(bun.port);
  await rawSend(slow.conn, JSON.stringify({ type: "connect", data: { server: "dworld" } }));
  const fast = await joined(bun.url, "dworld");
  let received = 0;
  fast.ws.addEventListener("message", () => received++);
  const event = chat(DWORLD, "x".repeat(32 * 1024));
  let sent = 0;
  const deadline = Date.now() + 15_000;
  let count = 2;
  while (count === 2 && Date.now() < deadline) {
    await bun.call("flood", { count: 4, event });
    sent += 4;
    await new Promise((r) => setTimeout(r, 10));
    count = await bun.call<number>("count");
  }
  assert.equal(count, 1, "the stalled client was terminated and freed its slot");
  await until(() => received >= sent, 20_000, "the reading client to receive every frame");
  assert.equal(received, sent);
  assert.equal(fast.ws.readyState, WebSocket.OPEN);
  assert.equal(await bun.call("broadcastMessage", chat(DWORLD, "m")), 1);
  slow.conn.close();
  await fast.close();
  return bun;
}

Deno.test("bun: a client that stops reading is terminated after the grace period; a reading one gets every frame", async () => {
  await using bun = await stalledReader({
    highWaterBytes: 256 * 1024,
    slowClientGraceMs: 300,
    maxBufferedBytes: 64 * 1024 * 1024,
  });
  assert.ok(
    bun.logs.some((l) => /dropping slow client: \d+ bytes unsent for \d+ ms/.test(l.message)),
  );
});

Deno.test("bun: a client that stops reading is closed at the hard buffer limit", async () => {
  await using bun = await stalledReader({
    highWaterBytes: 64 * 1024,
    slowClientGraceMs: 600_000,
    maxBufferedBytes: 1024 * 1024,
  });
  assert.ok(!bun.logs.some((l) => /unsent for \d+ ms/.test(l.message)), "not by the grace period");
});

Deno.test("bun: SIGTERM drains: clients get 1001 and the process exits 0", async () => {
  await using bun = await BunServer.start({ options: { shutdownTimeoutMs: 2000 } });
  const c = await joined(bun.url, "dworld");
  const status = await bun.terminate();
  const ev = await c.closed;
  assert.equal(ev.code, 1001);
  assert.equal(status.code, 0);
  assert.ok(bun.stopped || bun.logs.some((l) => l.message === "stopped"));
});
