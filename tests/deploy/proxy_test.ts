// The client address: forged forwarding headers from untrusted peers, IPv6 /64 grouping,
// and a login budget that survives reconnecting. Distinct users are distinct loopback
// source addresses; the IPv6 /64 is put on lo by the test (as root) and removed after.
import assert from "node:assert/strict";
import { startServer } from "../_fixtures/helpers.ts";
import { RUNTIMES, serveOn } from "./_runtimes.ts";
import { wsFrom } from "./_ws_from.ts";

for (const rt of RUNTIMES) {
  Deno.test(`${rt}: 40 direct connections from one address, each with a forged X-Forwarded-For: at most 32 admitted`, async () => {
    // Trusting a proxy elsewhere must not make the headers of other peers count.
    await using t = await serveOn(rt, { trustProxy: ["127.0.0.1"] });
    const socks = [];
    for (let i = 0; i < 40; i++) {
      socks.push(
        await wsFrom({
          host: "127.0.0.1",
          port: t.port,
          localAddress: "127.0.0.20",
          headers: {
            "X-Forwarded-For": `203.0.113.${i}`,
            Forwarded: `for=198.51.100.${i}`,
          },
        }),
      );
    }
    const admitted = socks.filter((s) => s.status === 101).length;
    assert.equal(admitted, 32);
    assert.equal(socks.filter((s) => s.status === 429).length, 8);
    // The log names the real peer, never a forged address.
    assert.ok(t.logs.some((l) => l.message.includes("connected from 127.0.0.20")));
    assert.ok(!t.logs.some((l) => /203\.0\.113|198\.51\.100/.test(l.message)));
    for (const s of socks) s.close();
  });
}

Deno.test("a trusted proxy's X-Forwarded-For names the client: the rightmost untrusted address", async () => {
  await using t = await startServer({
    trustProxy: ["127.0.0.1", "127.0.0.2"],
    maxConnectionsPerIp: 1,
  });
  const from = (xff: string) =>
    wsFrom({ host: "127.0.0.1", port: t.server.port, headers: { "X-Forwarded-For": xff } });
  // The client forged 10.9.9.9 in front; the proxies appended what they saw.
  const a = await from("10.9.9.9, 192.0.2.7, 127.0.0.2");
  assert.equal(a.status, 101);
  // Same client (192.0.2.7) again: its one place is taken.
  const b = await from("10.9.9.8, 192.0.2.7");
  assert.equal(b.status, 429);
  // A different client through the same proxy gets in.
  const c = await from("192.0.2.8");
  assert.equal(c.status, 101);
  assert.ok(t.logs.some((l) => l.message.includes("connected from 192.0.2.7")));
  // RFC 7239 Forwarded, when there is no X-Forwarded-For.
  const d = await wsFrom({
    host: "127.0.0.1",
    port: t.server.port,
    headers: { Forwarded: 'for="[2001:db8::9]:4711";proto=https' },
  });
  assert.equal(d.status, 101);
  assert.ok(t.logs.some((l) => l.message.includes("connected from 2001:db8::9")));
  for (const s of [a, b, c, d]) s.close();
});

async function ip(...args: string[]): Promise<boolean> {
  const r = await new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).output();
  return r.success;
}

for (const rt of RUNTIMES) {
  Deno.test(`${rt}: 200 connections from one IPv6 /64 (16 addresses on lo): grouped under one cap of 32`, async () => {
    // A random ULA /64 of our own, so parallel runs do not collide.
    const r = crypto.getRandomValues(new Uint16Array(3));
    const prefix = `fd7a:${r[0].toString(16)}:${r[1].toString(16)}:${r[2].toString(16)}`;
    // Addresses that differ in the interface half (and so would each have a /128 cap).
    const addrs = Array.from(
      { length: 16 },
      (_, i) => `${prefix}:${(i + 1).toString(16)}00::${i + 1}`,
    );
    const added: string[] = [];
    try {
      for (const a of addrs) {
        assert.ok(
          await ip("-6", "addr", "add", `${a}/128`, "dev", "lo", "nodad"),
          `ip addr add ${a}`,
        );
        added.push(a);
      }
      await using t = await serveOn(rt, { hostname: "::1", maxConnections: 1000 });
      const socks = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) => wsFrom({ host: "::1", port: t.port, localAddress: addrs[i % 16] }),
        ),
      );
      assert.equal(socks.filter((s) => s.status === 101).length, 32);
      assert.equal(socks.filter((s) => s.status === 429).length, 168);
      assert.ok(t.logs.some((l) => l.message.includes(`connected from ${prefix}:`)));
      for (const s of socks) s.close();
      // With /128 grouping each address has its own cap (13 each, under 32): all get in.
      await using u = await serveOn(rt, { hostname: "::1", ipv6Prefix: 128, maxConnections: 1000 });
      const each = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) => wsFrom({ host: "::1", port: u.port, localAddress: addrs[i % 16] }),
        ),
      );
      assert.equal(each.filter((s) => s.status === 101).length, 200);
      for (const s of each) s.close();
    } finally {
      for (const a of added) await ip("-6", "addr", "del", `${a}/128`, "dev", "lo");
    }
  });
}

for (const rt of RUNTIMES) {
  Deno.test(`${rt}: login budget: 30 fresh connections from one address, one login each: at most the budget reaches the validator`, async () => {
    await using t = await serveOn(rt, {}, {
      servers: { "111111111111111111": { id: "vip", name: "VIP", passworded: true } },
      denyLogins: true,
    });
    const login = async (from: string, i: number) => {
      const ws = await wsFrom({ host: "127.0.0.1", port: t.port, localAddress: from });
      assert.equal(ws.status, 101);
      await ws.next(); // server-list
      ws.send(JSON.stringify({
        type: "connect",
        data: {
          server: "vip",
          discordToken: `token-${i}`,
          discordUser: { id: `${i + 1}`, username: "u" },
        },
      }));
      await ws.next(); // the refusal
      ws.close();
      await ws.closed;
    };
    const started = performance.now();
    for (let i = 0; i < 30; i++) await login("127.0.0.30", i);
    const minutes = (performance.now() - started) / 60_000;
    const checks = await t.validations();
    // Burst 5, then 20 per minute: what the clock allowed, rounded up.
    const budget = 5 + Math.ceil(20 * minutes);
    assert.ok(checks >= 5, `the first logins must be checked (${checks})`);
    assert.ok(checks <= budget, `${checks} login checks reached the validator (budget ${budget})`);
    // Another address has its own budget.
    await login("127.0.0.31", 99);
    assert.equal(await t.validations(), checks + 1);
  });
}
