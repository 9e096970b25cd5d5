// The client address and the per-IP table, as units: parsing what runtimes and proxies write,
// the trust walk, IPv6 keys, and a table that stays bounded and forgets only what changes nothing.
import assert from "node:assert/strict";
import { ClientAddresses, formatIp, parseIp, parseRange } from "../../src/_client_address.ts";
import { IpTable } from "../../src/_ip_table.ts";

Deno.test("addresses: IPv4, IPv6, mapped, zones, brackets; ranges", () => {
  assert.equal(formatIp(parseIp("::ffff:192.0.2.1")!), "192.0.2.1");
  assert.equal(formatIp(parseIp("[2001:DB8:0:0:0:0:0:1]")!), "2001:db8::1");
  assert.equal(formatIp(parseIp("fe80::1%lo")!), "fe80::1");
  assert.equal(formatIp(parseIp("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
  for (
    const bad of ["", "unknown", "_hidden", "1.2.3", "1.2.3.256", "1::2::3", "12345::", "a.b.c.d"]
  ) {
    assert.equal(parseIp(bad), null, bad);
  }
  assert.deepEqual(parseRange("10.0.0.0/8")?.bits, 8);
  assert.equal(parseRange("10.0.0.0/33"), null);
  assert.equal(parseRange("::/129"), null);
  assert.equal(parseRange("::ffff:10.0.0.0/104")?.bits, 8);
});

Deno.test("client: only trusted peers' headers count; the rightmost untrusted hop wins", () => {
  const c = new ClientAddresses(["10.0.0.0/8", "::1"], 64);
  const h = (xff: string) => new Headers({ "x-forwarded-for": xff });
  assert.equal(c.resolve("192.0.2.1", h("203.0.113.5")).address, "192.0.2.1");
  assert.equal(
    c.resolve("10.1.1.1", h("203.0.113.5, 198.51.100.1, 10.2.2.2")).address,
    "198.51.100.1",
  );
  // Every hop trusted: the leftmost one.
  assert.equal(c.resolve("10.1.1.1", h("10.3.3.3, 10.2.2.2")).address, "10.3.3.3");
  // An unknown hop: the last known address answers for it.
  assert.equal(c.resolve("10.1.1.1", h("203.0.113.5, unknown, 10.2.2.2")).address, "10.2.2.2");
  // No header: the peer.
  assert.equal(c.resolve("10.1.1.1", new Headers()).address, "10.1.1.1");
  // X-Forwarded-For wins over Forwarded; Forwarded with ports and quotes.
  const both = new Headers({ "x-forwarded-for": "203.0.113.7", forwarded: "for=198.51.100.9" });
  assert.equal(c.resolve("::1", both).address, "203.0.113.7");
  const fwd = new Headers({
    forwarded: 'for=192.0.2.60:8080;proto=https, for="[2001:db8::5]:443"',
  });
  assert.equal(c.resolve("::ffff:10.0.0.1", fwd).address, "2001:db8::5");
  // IPv6 keys: the /64; IPv4 keys: the address.
  assert.equal(c.resolve("2001:db8:1:2:3:4:5:6", new Headers()).key, "2001:db8:1:2::/64");
  assert.equal(
    new ClientAddresses([], 56).resolve("2001:db8:1:2ff::1", new Headers()).key,
    "2001:db8:1:200::/56",
  );
  assert.equal(
    new ClientAddresses([], 128).resolve("2001:db8::1", new Headers()).key,
    "2001:db8::1",
  );
  assert.equal(c.resolve("192.0.2.9", new Headers()).key, "192.0.2.9");
  assert.throws(() => new ClientAddresses(["proxy.local"], 64), /not an IP address/);
});

const budgets = { framesPerSecond: 10, bytesPerSecond: 1000, loginChecksPerMinute: 60 };

Deno.test("ip table: bounded; entries with open connections are never evicted", () => {
  const t = new IpTable(budgets, 100);
  const busy = t.acquire("busy", 0);
  for (let i = 0; i < 1000; i++) {
    t.touch(`k${i}`, 0).logins.take(1, 0); // spent budgets: not expirable yet
  }
  assert.ok(t.size <= 101, `${t.size} entries`);
  assert.ok(t.size >= 100, `${t.size} entries`);
  assert.equal(t.touch("busy", 0), busy, "the entry with a connection survived");
  assert.equal(t.count("busy"), 1);
});

Deno.test("ip table: an idle entry is kept while its budget is spent, forgotten once it is full again", () => {
  const t = new IpTable(budgets, 100);
  const e = t.acquire("a", 0);
  for (let i = 0; i < 5; i++) assert.ok(e.logins.take(1, 0));
  assert.equal(t.takeLogin("a", 0), false, "budget spent");
  t.release("a");
  // A fresh connection does not refill it.
  assert.equal(t.acquire("a", 10), e);
  assert.equal(t.takeLogin("a", 10), false);
  t.release("a");
  // One minute later (60/min, burst 5) it is full: a new key's creation forgets it.
  t.touch("b", 60_000);
  assert.equal(t.size, 1, "a was forgotten");
  assert.notEqual(t.touch("a", 60_000), e);
});

Deno.test("ip table: use order holds when the same key is touched again and again", () => {
  // Touching the newest entry again does not move it (it is already the newest): eviction still
  // takes the oldest idle entry, never the one just used.
  const t = new IpTable(budgets, 2);
  const spent = (k: string) => {
    const e = t.touch(k, 0);
    e.logins.take(1, 0); // not expirable: only eviction can remove it
    return e;
  };
  const a = spent("a");
  const b = spent("b");
  assert.equal(spent("a"), a);
  assert.equal(spent("a"), a);
  spent("c"); // full: the oldest idle entry (b) goes
  assert.equal(t.size, 2);
  assert.equal(t.touch("a", 0), a, "a, used last before c, is kept");
  assert.equal(t.touch("c", 0).key, "c");
  assert.notEqual(t.touch("b", 0), b, "b was evicted: a new entry");
});
