// Attacks from the hardening issue, each performed for real (raw TCP or WebSocket, bounded in
// count and time), each asserting the bound the README states.
import assert from "node:assert/strict";
import net from "node:net";
import { ERRORS, type UserMap } from "../mod.ts";
import { type Client, joined, rawSend, rawUpgrade, startServer, until } from "./helpers.ts";

const UPGRADE =
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/** Send an upgrade request, then reset the TCP connection (RST, SO_LINGER 0) before the 101. */
async function resetUpgrade(port: number): Promise<void> {
  const s = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("error", reject);
  });
  await new Promise<void>((resolve) => s.write(UPGRADE, () => resolve()));
  await new Promise((r) => setTimeout(r, 5));
  s.resetAndDestroy();
}

Deno.test("phantom upgrades: 60 reset upgrades are forgotten; the gauge returns to 0 and the IP is not locked out", async () => {
  const { server, url, http } = await startServer({ openTimeoutMs: 400, maxConnectionsPerIp: 32 });
  try {
    for (let i = 0; i < 60; i++) await resetUpgrade(server.port);
    await until(() => server.connectionCount === 0, 8000, "phantoms to be forgotten");
    const metrics = await (await fetch(`${http}/metrics`)).text();
    assert.match(metrics, /^dback_connections 0$/m);
    const c = await joined(url, "dworld"); // not refused with 429
    await c.close();
  } finally {
    await server.stop();
  }
});

async function cliServer(): Promise<{ child: Deno.ChildProcess; port: number; stderr: string[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "examples/main.ts", "--port", "0", "--host", "127.0.0.1"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr: string[] = [];
  (async () => {
    for await (const b of child.stderr.pipeThrough(new TextDecoderStream())) stderr.push(b);
  })();
  let out = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 20_000;
  let port = 0;
  while (!port && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    port = Number(out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1] ?? 0);
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  assert.ok(port, `the CLI did not start: ${out}`);
  return { child, port, stderr };
}

Deno.test("SIGTERM with a phantom and a peer that never answers the close: exit 0 by the drain deadline; a second SIGTERM exits at once", async () => {
  {
    const { child, port } = await cliServer();
    await resetUpgrade(port);
    const stuck = await rawUpgrade(port); // never reads, never answers the close handshake
    assert.equal(stuck.status, 101);
    const started = Date.now();
    child.kill("SIGTERM");
    const status = await child.status;
    stuck.conn.close();
    assert.equal(status.code, 0);
    // Drain deadline (5 s) plus the HTTP shutdown allowance (1 s), with room for a busy machine.
    assert.ok(Date.now() - started < 15_000, "stop() returned by its deadline");
  }
  {
    const { child, port, stderr } = await cliServer();
    const stuck = await rawUpgrade(port);
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGTERM");
    const status = await child.status;
    stuck.conn.close();
    assert.equal(status.code, 1);
    assert.match(stderr.join(""), /second signal/);
  }
});

function bigUsers(n: number): UserMap {
  const users: UserMap = {};
  for (let i = 0; i < n; i++) {
    users[`${100000 + i}`] = { username: `user-${i}`, status: "online", roleColor: "#336699" };
  }
  return users;
}

Deno.test("slow-client churn: non-reading clients re-sending connect cannot grow memory past caps × maxBufferedBytes", async () => {
  const users = bigUsers(5000); // a ~500 KB server-join
  const maxBuffered = 2 * 1024 * 1024;
  const perIp = 12;
  const { server } = await startServer({
    logLevel: "silent",
    callbacks: {
      getServerData: () => ({ "9": { id: "big", name: "Big", default: true } }),
      getUserData: () => users,
    },
    maxConnectionsPerIp: perIp,
    highWaterBytes: 1024 * 1024,
    maxBufferedBytes: maxBuffered,
    slowClientGraceMs: 200,
  });
  const socks: Deno.TcpConn[] = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    gc?.();
    const before = Deno.memoryUsage().rss;
    let refused = 0;
    let peak = 0;
    const end = Date.now() + 8000;
    const connect = JSON.stringify({ type: "connect", data: { server: "big" } });
    while (Date.now() < end) {
      // Replace what was dropped (old TCP sockets kept open), as the attack did.
      const up = await rawUpgrade(server.port);
      if (up.status === 101) socks.push(up.conn);
      else {
        refused++;
        up.conn.close();
      }
      for (const s of socks) await rawSend(s, connect).catch(() => {});
      await new Promise((r) => setTimeout(r, 120));
      peak = Math.max(peak, Deno.memoryUsage().rss - before);
      assert.ok(server.connectionCount <= perIp, "dropped sockets still count against the cap");
    }
    assert.ok(refused > 0, "the per-IP cap refused replacements");
    const bound = perIp * maxBuffered + 96 * 1024 * 1024;
    assert.ok(
      peak < bound,
      `RSS grew ${Math.round(peak / 1048576)} MiB; bound ${Math.round(bound / 1048576)} MiB`,
    );
    console.log(`churn: peak RSS growth ${Math.round(peak / 1048576)} MiB, ${refused} refused`);
  } finally {
    for (const s of socks) {
      try {
        s.close();
      } catch { /* closed */ }
    }
    await server.stop();
  }
});

Deno.test("work queue: a connect flood against a hanging hook is cut to the newest; nothing runs after the client leaves; discordUser is trimmed", async () => {
  let calls = 0;
  const seen: unknown[] = [];
  const { server, url } = await startServer({
    logLevel: "silent",
    callbackTimeoutMs: 300,
    callbacks: {
      getServerData: () => ({
        "1": { id: "slow", name: "Slow", default: true },
        "2": { id: "locked", name: "Locked", passworded: true },
      }),
      getUserData: () => {
        calls++;
        return new Promise<UserMap>(() => {}); // never answers
      },
      validateDiscordUser: (_token, user) => {
        seen.push(user);
        return false;
      },
    },
  });
  try {
    const c = await joined(url);
    for (let i = 0; i < 15; i++) c.send({ type: "connect", data: { server: "slow" } });
    await new Promise((r) => setTimeout(r, 1000));
    // The first call runs; of the 14 waiting behind it only the newest is kept.
    assert.ok(calls <= 2, `getUserData ran ${calls} times`);
    for (let i = 0; i < 15; i++) c.send({ type: "connect", data: { server: "slow" } });
    await c.close();
    const after = calls;
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(calls - after <= 1, "queued work is skipped once the connection is gone");

    const d = await joined(url);
    const padding = "p".repeat(3000);
    const answer = await d.join("locked", {
      discordToken: "tok",
      discordUser: { id: "42", username: "ada", padding, nested: { deep: padding } },
    });
    assert.equal(answer.data.message, ERRORS.authFailed);
    assert.deepEqual(seen, [{ id: "42", username: "ada" }]);
    await d.close();
  } finally {
    await server.stop();
  }
});

Deno.test("per-IP budget: 40 connections each under its own limits cannot starve the loop; the attackers get closed", async () => {
  const { server, http } = await startServer({ logLevel: "silent", maxConnectionsPerIp: 64 });
  const nested = "[".repeat(3500) + "]".repeat(3500); // ~7 KB, under maxFrameBytes
  const attackers: Client[] = [];
  try {
    for (let i = 0; i < 40; i++) attackers.push(await joined(server.url.replace("http", "ws")));
    const latencies: number[] = [];
    const end = Date.now() + 4000;
    const firing = (async () => {
      while (Date.now() < end) {
        for (const a of attackers) if (a.ws.readyState === WebSocket.OPEN) a.ws.send(nested);
        await new Promise((r) => setTimeout(r, 110)); // ~9 frames/s each: under the per-connection rate
      }
    })();
    while (Date.now() < end) {
      const t = performance.now();
      await (await fetch(`${http}/healthz`)).text();
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
    await firing;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)];
    console.log(`healthz under attack: p99 ${p99.toFixed(1)} ms over ${latencies.length} requests`);
    assert.ok(p99 < 1000, `healthz p99 ${p99} ms`);
    const closed = attackers.filter((a) => a.ws.readyState !== WebSocket.OPEN).length;
    assert.ok(closed >= 20, `only ${closed} of 40 attackers closed`);
    assert.ok(server.metrics.closedForAbuse >= 20);
  } finally {
    await Promise.all(attackers.map((a) => a.close()));
    await server.stop();
  }
});

Deno.test("logs: a hostile Origin is escaped and cut; a refused origin is named", async () => {
  const { server, logs } = await startServer({ allowedOrigins: ["https://d-zone.example"] });
  try {
    const hostile = "https://x" + "a".repeat(5000) + "\u009b\u2028 INFO [c9] forged";
    const up = await rawUpgrade(server.port, { Origin: hostile });
    assert.equal(up.status, 403);
    up.conn.close();
    const line = logs.find((l) => l.message.includes("refused: origin"));
    assert.ok(line, "the refusal is logged");
    assert.ok(line.message.length < 300, `${line.message.length} characters`);
    assert.ok(!/[\u0080-\u009f\u2028\n]/.test(line.message), "no raw control characters");
  } finally {
    await server.stop();
  }
});

Deno.test("origins: the server's own page may connect when allowedOrigins is set; malformed origins are refused at construction", async () => {
  const { server } = await startServer({ allowedOrigins: ["https://d-zone.example"] });
  try {
    const own = await rawUpgrade(server.port, { Origin: `http://127.0.0.1:${server.port}` });
    assert.equal(own.status, 101);
    own.conn.close();
    const listed = await rawUpgrade(server.port, { Origin: "https://d-zone.example" });
    assert.equal(listed.status, 101);
    listed.conn.close();
  } finally {
    await server.stop();
  }
  for (const bad of ["https://d-zone.example/", "d-zone.example", "https://x.example/path"]) {
    await assert.rejects(
      () => startServer({ allowedOrigins: [bad] }),
      /allowedOrigins.*not an origin/,
      bad,
    );
  }
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
    await c.close();
  } finally {
    await demo.server.stop();
  }
});

Deno.test("HTTP: /metrics and /healthz answer GET and HEAD only", async () => {
  const { server, http } = await startServer();
  try {
    for (const path of ["/metrics", "/healthz", "/api/version"]) {
      const post = await fetch(`${http}${path}`, { method: "POST", body: "x" });
      assert.equal(post.status, 405, path);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
      const head = await fetch(`${http}${path}`, { method: "HEAD" });
      assert.equal(head.status, 200, path);
      assert.equal(await head.text(), "");
    }
  } finally {
    await server.stop();
  }
});

Deno.test("start(): a missing staticDir is an error, not a silent 404 for everything", async () => {
  await assert.rejects(
    () => startServer({ staticDir: "/nonexistent/dback-static" }),
    /staticDir \/nonexistent\/dback-static/,
  );
});
