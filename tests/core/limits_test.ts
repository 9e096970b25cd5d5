// Limits, slow clients, origins, health and metrics: the server an operator can put online.
import assert from "node:assert/strict";
import { ERRORS } from "../../mod.ts";
import {
  Client,
  DWORLD,
  joined,
  rawSend,
  rawUpgrade,
  startServer,
  until,
} from "../_fixtures/helpers.ts";

/** `rawUpgrade` whose socket `conns` closes at the end of the test, even after a failed assertion. */
async function upgrade(conns: DisposableStack, port: number, headers?: Record<string, string>) {
  const up = await rawUpgrade(port, headers);
  conns.use(up.conn);
  return up;
}

Deno.test("a frame larger than maxFrameBytes closes the connection with 1009; smaller ones are fine", async () => {
  await using s = await startServer({ maxFrameBytes: 1024 });
  const { server, url, logs } = s;
  await using c = await joined(url);
  c.send({ type: "connect", data: { server: "dworld", pad: "x".repeat(900) } });
  assert.equal((await c.next()).type, "server-join");
  c.send("y".repeat(2000));
  const ev = await c.closed;
  assert.equal(ev.code, 1009);
  assert.ok(logs.some((l) => /frame of 2000 bytes exceeds 1024/.test(l.message)));
  // Multi-byte text counts in bytes, not characters.
  await using d = await joined(url);
  d.send("é".repeat(600)); // 1200 bytes
  assert.equal((await d.closed).code, 1009);
  assert.equal(server.metrics.closedForAbuse, 2);
  const text = await (await fetch(`${s.http}/metrics`)).text();
  assert.match(text, /^dback_closed_for_abuse_total 2$/m);
  assert.match(text, /^dback_connections_total 2$/m, "both connections counted, open or not");
});

Deno.test("inbound rate: excess frames get an error frame, repeated abuse closes with 1008", async () => {
  await using s = await startServer({ ratePerSecond: 1, rateBurst: 3, rateStrikes: 4 });
  const { url } = s;
  await using c = await joined(url);
  for (let i = 0; i < 10; i++) c.send("junk");
  const answers: string[] = [];
  const ev = await c.closed;
  for (const f of c.frames.slice(1)) answers.push(f.data.message);
  assert.deepEqual(answers, [
    "Invalid JSON",
    "Invalid JSON",
    "Invalid JSON",
    ERRORS.rateLimited,
    ERRORS.rateLimited,
    ERRORS.rateLimited,
    ERRORS.rateLimited,
  ]);
  assert.equal(ev.code, 1008);
  assert.equal(ev.reason, "Rate limit exceeded");
  // A polite client on the same server is unaffected.
  await using polite = await joined(url, "dworld");
  assert.equal(polite.ws.readyState, WebSocket.OPEN);
});

Deno.test("connection limits: 503 beyond the total, 429 beyond the per-IP limit, before the upgrade", async () => {
  {
    await using s = await startServer({ maxConnections: 2 });
    const { server } = s;
    using conns = new DisposableStack();
    const a = await upgrade(conns, server.port);
    const b = await upgrade(conns, server.port);
    const c = await upgrade(conns, server.port);
    assert.deepEqual([a.status, b.status, c.status], [101, 101, 503]);
    for (const x of [a, b, c]) x.conn.close();
    await until(() => server.connectionCount === 0);
    const d = await upgrade(conns, server.port);
    assert.equal(d.status, 101, "a freed slot is reusable");
    d.conn.close();
    assert.equal(server.metrics.rejected.max_connections, 1);
  }
  {
    await using s = await startServer({ maxConnectionsPerIp: 1 });
    const { server } = s;
    using conns = new DisposableStack();
    const a = await upgrade(conns, server.port);
    const b = await upgrade(conns, server.port);
    assert.deepEqual([a.status, b.status], [101, 429]);
  }
});

Deno.test("allowedOrigins: other origins get 403 before the upgrade; listed ones get in", async () => {
  await using s = await startServer({ allowedOrigins: ["https://dzone.example"] });
  const { server } = s;
  using conns = new DisposableStack();
  const good = await upgrade(conns, server.port, { Origin: "https://dzone.example" });
  const evil = await upgrade(conns, server.port, { Origin: "https://evil.example" });
  const none = await upgrade(conns, server.port);
  assert.deepEqual([good.status, evil.status, none.status], [101, 403, 403]);
  for (const x of [good, evil, none]) x.conn.close();
  assert.equal(server.metrics.rejected.origin, 2);
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  assert.match(text, /^dback_rejected_upgrades_total\{reason="origin"\} 2$/m);
});

Deno.test("join timeout: a connection that never joins is closed with 1008; a joined one stays", async () => {
  // Long enough that the joining client wins on a loaded machine; the idle one waits it out.
  await using s = await startServer({ joinTimeoutMs: 2000 });
  const { url } = s;
  await using active = await joined(url, "dworld");
  await using idle = await joined(url);
  const ev = await idle.closed;
  assert.equal(ev.code, 1008);
  assert.equal(ev.reason, "Join timeout");
  assert.deepEqual(await active.quiet(200), []);
  assert.equal(active.ws.readyState, WebSocket.OPEN);
});

Deno.test("idle dead peers are detected by ping/pong (idleTimeout)", async () => {
  await using s = await startServer({ idleTimeoutSeconds: 1, joinTimeoutMs: 0 });
  const { server } = s;
  using conns = new DisposableStack();
  const dead = await upgrade(conns, server.port);
  assert.equal(dead.status, 101);
  assert.equal(server.connectionCount, 1);
  // The raw peer never answers pings: the server must give up on it by itself.
  await until(() => server.connectionCount === 0, 8000, "dead peer to be dropped");
});

async function slowClientScenario(
  options: { highWaterBytes: number; slowClientGraceMs: number; maxBufferedBytes: number },
  burst: number,
) {
  await using s = await startServer(options);
  const { server, url, logs } = s;
  using conns = new DisposableStack();
  const slow = await upgrade(conns, server.port);
  await rawSend(slow.conn, JSON.stringify({ type: "connect", data: { server: "dworld" } }));
  await using fast = await joined(url, "dworld");
  await until(() => server.metrics.joins === 2);
  const chunk = "x".repeat(32 * 1024);
  let sent = 0;
  let received = 0;
  fast.ws.addEventListener("message", () => received++);
  // Bursts with pauses: a reading client keeps up, one that never reads falls behind for good.
  const deadline = Date.now() + 15_000;
  while (server.metrics.droppedSlowClients === 0 && Date.now() < deadline) {
    for (let i = 0; i < burst; i++) {
      server.broadcastMessage({ server: DWORLD, uid: "1", message: chunk, channel: "c" });
      sent++;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(server.metrics.droppedSlowClients, 1, "exactly the stalled client was dropped");
  await until(() => received >= sent, 20_000, "fast client to receive every frame");
  assert.equal(received, sent);
  assert.equal(fast.ws.readyState, WebSocket.OPEN);
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "m", channel: "c" }),
    1,
    "the dropped client no longer counts for broadcasts",
  );
  // What the stalled client eventually reads ends with a 1013 close frame.
  const bytes: Uint8Array[] = [];
  const reading = (async () => {
    for await (const b of slow.conn.readable) bytes.push(b);
  })();
  // Closing the socket after a failed assertion ends this read with an error: not a second failure.
  reading.catch(() => {});
  // Dropped is not forgotten: the socket counts against the caps until it is really gone.
  assert.equal(server.connectionCount, 2, "the dropped socket still counts");
  const closeFrameSeen = () => {
    const tail = bytes.length ? bytes[bytes.length - 1].slice(-64) : new Uint8Array();
    const i = tail.lastIndexOf(0x88);
    return i >= 0 && ((tail[i + 2] << 8) | tail[i + 3]) === 1013;
  };
  await until(closeFrameSeen, 10_000, "the 1013 close frame to reach the slow client");
  slow.conn.close();
  await Promise.race([reading.catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
  await until(() => server.connectionCount === 1, 10_000, "slow socket to be released");
  return { logs, sent };
}

Deno.test("a client that stops reading is dropped with 1013 once behind for the grace period; others get everything", async () => {
  const { logs } = await slowClientScenario(
    { highWaterBytes: 256 * 1024, slowClientGraceMs: 300, maxBufferedBytes: 256 * 1024 * 1024 },
    4,
  );
  assert.ok(
    logs.some((l) =>
      l.level === "warn" && /dropping slow client: \d+ bytes unsent for \d+ ms/.test(l.message)
    ),
  );
});

Deno.test("a client that stops reading is dropped at once at the hard buffer limit", async () => {
  const { logs } = await slowClientScenario(
    { highWaterBytes: 64 * 1024, slowClientGraceMs: 600_000, maxBufferedBytes: 2 * 1024 * 1024 },
    4,
  );
  assert.ok(
    logs.some((l) => /dropping slow client: \d+ bytes unsent \(hard limit\)/.test(l.message)),
  );
});

Deno.test("healthz is 200 while serving and 503 while draining; upgrades are refused while draining", async () => {
  await using s = await startServer({ shutdownTimeoutMs: 600 });
  const { server, http } = s;
  using conns = new DisposableStack();
  const ok = await fetch(`${http}/healthz`);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "ok\n");
  // A peer that never answers the close handshake keeps the server draining for a while.
  const stuck = await upgrade(conns, server.port);
  const stopping = server.stop();
  const draining = await fetch(`${http}/healthz`);
  assert.equal(draining.status, 503);
  assert.equal(await draining.text(), "draining\n");
  const late = await upgrade(conns, server.port);
  assert.equal(late.status, 503);
  late.conn.close();
  await stopping;
  stuck.conn.close();
});

Deno.test("metrics: Prometheus text with connections, joins per server, frames, broadcasts, callback stats", async () => {
  await using s = await startServer({
    callbacks: {
      getServerData: () => ({ "5": { id: "m", name: "M", default: true } }),
      getUserData: () => {
        throw new Error("nope");
      },
    },
  });
  const { server, url, http } = s;
  await using c = await joined(url);
  await c.join("m"); // fails: callback error
  server.onGetUserData(() => ({}));
  await c.join("m");
  server.broadcastMessage({ server: "5", uid: "1", message: "hi", channel: "c" });
  await c.nextOf("message");
  const res = await fetch(`${http}/metrics`);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (
    const line of [
      "dback_up 1",
      "dback_connections 1",
      'dback_joined_connections{server="5"} 1',
      "dback_frames_in_total 2",
      "dback_frames_out_total 4",
      'dback_broadcasts_total{type="message"} 1',
      "dback_error_frames_total 1",
      "dback_joins_total 1",
      'dback_callback_calls_total{callback="getUserData"} 2',
      'dback_callback_errors_total{callback="getUserData"} 1',
      "# TYPE dback_callback_seconds_total counter",
      "dback_dropped_slow_clients_total 0",
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing: ${line}\n${text}`);
  }
});

Deno.test("logs: one line per connect, join and leave, with level and connection id; no debug by default", async () => {
  const lines: string[] = [];
  await using s = await startServer({
    logLevel: "info",
    logSink: (r) => lines.push(`${r.level} ${r.conn ?? "-"} ${r.message}`),
  });
  const { url } = s;
  await using c = await joined(url, "docs");
  await c.close();
  await until(() => lines.some((l) => l.includes("disconnected")));
  assert.deepEqual(lines.filter((l) => / c\d+ /.test(l)), [
    "info c1 connected from 127.0.0.1",
    "info c1 joined docs (482241773318701056)",
    "info c1 disconnected from 482241773318701056",
  ]);
  assert.equal(lines.some((l) => l.startsWith("debug")), false);
});

Deno.test("log level silent writes nothing", async () => {
  const lines: unknown[] = [];
  await using s = await startServer({ logLevel: "silent", logSink: (r) => lines.push(r) });
  const { server, url } = s;
  await using c = await joined(url, "docs");
  await c.close();
  await server.stop();
  assert.deepEqual(lines, []);
});

Deno.test("a client is never let in to a server by a hung validator: deadline → refused", async () => {
  await using s = await startServer({
    callbackTimeoutMs: 100,
    callbacks: {
      getServerData: () => ({ "9": { id: "p", name: "P", passworded: true } }),
      getUserData: () => ({}),
      validateDiscordUser: () => new Promise<boolean>(() => {}),
    },
  });
  const { url } = s;
  await using c = await Client.open(url);
  await c.next();
  const r = await c.join("p", { discordToken: "t", discordUser: { id: "1", username: "u" } });
  assert.deepEqual(r.data, { message: ERRORS.authFailed });
});

Deno.test("client-chosen text cannot forge log lines", async () => {
  await using s = await startServer();
  const { url, logs } = s;
  await using c = await joined(url);
  await c.join("nope\n2026-01-01T00:00:00.000Z ERROR forged");
  assert.ok(logs.some((l) => l.message.startsWith("join refused: no server")));
  assert.equal(logs.some((l) => l.message.includes("\n")), false);
});
