// Attacks performed for real (raw TCP or WebSocket, bounded in count and time), each asserting
// the bound the docs state: phantom upgrades, slow-client churn, work-queue floods, loop starvation.
import assert from "node:assert/strict";
import { ERRORS, type UserMap } from "../../mod.ts";
import {
  type Client,
  joined,
  rawSend,
  rawUpgrade,
  resetUpgrade,
  startServer,
  until,
} from "../_fixtures/helpers.ts";

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
    const errors = () => c.frames.filter((f) => f.type === "error").length;
    const stats = () => server.metrics.callbacks.getUserData;
    for (let i = 0; i < 15; i++) c.send({ type: "connect", data: { server: "slow" } });
    // Each run ends in a timeout and an error frame; the next queued run starts right after one
    // ends, so when the second error arrives a third run would already have been counted.
    await until(() => errors() >= 2, 15_000, "two runs to time out");
    // The first call runs; of the 14 waiting behind it only the newest is kept.
    assert.equal(calls, 2, `getUserData ran ${calls} times`);
    for (let i = 0; i < 15; i++) c.send({ type: "connect", data: { server: "slow" } });
    await c.close();
    const after = calls;
    // Every started run has ended (timed out) and the server saw the close: anything still
    // queued would be running now.
    await until(
      () => server.connectionCount === 0 && stats().errors === calls,
      15_000,
      "the runs in flight to end after the client left",
    );
    assert.equal(after, 3, "the second flood's first connect ran while the client was there");
    assert.equal(calls, after, "the connect queued behind it is skipped once the client is gone");

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

Deno.test("per-IP budget: 40 connections each under its own limits cannot starve the loop: every /healthz is answered while they fire, and the attackers get closed", async () => {
  const { server, http } = await startServer({ logLevel: "silent", maxConnectionsPerIp: 64 });
  const nested = "[".repeat(3500) + "]".repeat(3500); // ~7 KB, under maxFrameBytes
  const attackers: Client[] = [];
  try {
    for (let i = 0; i < 40; i++) attackers.push(await joined(server.url.replace("http", "ws")));
    const latencies: number[] = [];
    const answers: string[] = [];
    let firing = true;
    let sent = 0;
    const fire = (async () => {
      // Until half the attackers are closed (or a generous cap): the outcome, not a clock, ends it.
      for (let round = 0; round < 400; round++) {
        const open = attackers.filter((a) => a.ws.readyState === WebSocket.OPEN);
        if (open.length <= 20) break;
        for (const a of open) a.ws.send(nested), sent++;
        await new Promise((r) => setTimeout(r, 110)); // ~9 frames/s each: under the per-connection rate
      }
      firing = false;
    })();
    let answeredWhileFiring = 0;
    while (firing) {
      const t = performance.now();
      const res = await fetch(`${http}/healthz`, { signal: AbortSignal.timeout(30_000) });
      answers.push(`${res.status} ${(await res.text()).trim()}`);
      latencies.push(performance.now() - t);
      if (firing) answeredWhileFiring++;
      await new Promise((r) => setTimeout(r, 50));
    }
    await fire;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)];
    // A figure for the log, not a bound: this box is shared.
    console.log(
      `healthz under attack: ${answers.length} answers, p99 ${
        p99?.toFixed(1)
      } ms; ${sent} frames sent`,
    );
    assert.ok(sent > 40, `the attackers fired more than one round (${sent} frames)`);
    assert.ok(answeredWhileFiring >= 1, "a /healthz answer came while the attackers were firing");
    assert.deepEqual(answers.filter((a) => a !== "200 ok"), [], "every /healthz was answered ok");
    const closed = attackers.filter((a) => a.ws.readyState !== WebSocket.OPEN).length;
    assert.ok(closed >= 20, `only ${closed} of 40 attackers closed`);
    assert.ok(server.metrics.closedForAbuse >= 20);
  } finally {
    await Promise.all(attackers.map((a) => a.close()));
    await server.stop();
  }
});
