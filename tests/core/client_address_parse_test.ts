// The address parser runs on every upgrade, so it is written as one pass over the characters. This
// checks it against a reference built from other parsers (node:net's isIPv4/isIPv6, the URL
// parser's IPv6 form, a decimal check of each octet): a table of valid and invalid inputs, then
// generated strings, must parse to the same address or both be refused.
import assert from "node:assert/strict";
import { isIPv4, isIPv6 } from "node:net";
import { ClientAddresses, formatIp, parseIp } from "../../src/_client_address.ts";
import { xorshift32 } from "../_fixtures/random.ts";

/** A dotted quad in decimal (leading zeros allowed), as canonical text; null when it is not one. */
function decimalQuad(s: string): string | null {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^[0-9]{1,3}$/.test(p))) return null;
  const text = parts.map(Number).join(".");
  return isIPv4(text) ? text : null;
}

/**
 * The reference, written apart from the parser: what `parseIp` must give for `input`, as text
 * (dotted for IPv4 and IPv4-mapped IPv6, RFC 5952 otherwise), or null. Validity comes from
 * node:net (after the embedded dotted quad is made canonical), IPv6's bytes from the URL parser.
 */
function reference(input: string): string | null {
  let s = input.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) return decimalQuad(s);
  if (s.includes(".")) {
    const at = s.lastIndexOf(":") + 1;
    const quad = decimalQuad(s.slice(at));
    if (!quad) return null;
    s = s.slice(0, at) + quad;
  }
  if (!isIPv6(s)) return null;
  const host = new URL(`http://[${s}]/`).hostname;
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(host);
  if (!mapped) return host.slice(1, -1);
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

const same = (input: string) => {
  const got = parseIp(input);
  assert.equal(got && formatIp(got), reference(input), JSON.stringify(input));
};

Deno.test("ipv4 parser: the table of accepted and refused forms", () => {
  const accepted: [string, string][] = [
    ["0.0.0.0", "0.0.0.0"],
    ["127.0.0.1", "127.0.0.1"],
    ["255.255.255.255", "255.255.255.255"],
    ["010.001.000.009", "10.1.0.9"], // leading zeros: decimal, as before
    [" 192.0.2.1\t", "192.0.2.1"],
    ["[192.0.2.1]", "192.0.2.1"],
    ["192.0.2.1%eth0", "192.0.2.1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["::FFFF:010.0.0.255", "10.0.0.255"],
    ["::192.0.2.1", "::c000:201"],
    ["64:ff9b::192.0.2.1", "64:ff9b::c000:201"],
  ];
  for (const [input, text] of accepted) {
    const b = parseIp(input);
    assert.ok(b, input);
    assert.equal(formatIp(b), text, input);
    same(input);
  }
  const refused = [
    "",
    ".",
    "1.2.3",
    "1.2.3.4.",
    ".1.2.3.4",
    "1.2.3.4.5",
    "1..2.3",
    "1.2.3.256",
    "256.0.0.0",
    "1.2.3.999",
    "1.2.3.0255",
    "0001.2.3.4",
    "1.2.3.-4",
    "1.2.3.+4",
    "1.2.3.4 5",
    "1.2.3.4\n5",
    "1.2.3.４",
    "1.2.3.a",
    "1.2.3.0x1",
    "1e2.0.0.1",
    "::ffff:1.2.3",
    "::ffff:1.2.3.256",
    "::ffff:1.2.3.4.5",
    "1.2.3.4::",
  ];
  for (const input of refused) {
    assert.equal(parseIp(input), null, JSON.stringify(input));
    same(input);
  }
});

Deno.test("ipv4 parser: generated strings parse exactly as the reference does", () => {
  // A fixed-seed generator: the same strings every run.
  const next = xorshift32(0x2545f491);
  const alphabet = "0123456789012345678901234567890123456789....::af %[]x-";
  let accepted = 0;
  for (let i = 0; i < 30_000; i++) {
    const len = 1 + Math.floor(next() * 18);
    let s = "";
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
    if (parseIp(s)) accepted++;
    same(s);
  }
  // Dotted quads built to be near the edges (0-300 per octet, some zero-padded).
  for (let i = 0; i < 20_000; i++) {
    const octet = () => {
      const n = Math.floor(next() * 300);
      return next() < 0.2 ? String(n).padStart(3, "0") : String(n);
    };
    const s = `${octet()}.${octet()}.${octet()}.${octet()}`;
    if (parseIp(s)) accepted++;
    same(s);
    same(`::ffff:${s}`);
  }
  // IPv6 built near the edges: 2-9 groups of 0-5 hex digits (so "::" and too long groups both
  // occur), in either case, sometimes ending in a dotted quad.
  let accepted6 = 0;
  for (let i = 0; i < 20_000; i++) {
    const groups = Array.from({ length: 2 + Math.floor(next() * 8) }, () => {
      let g = "";
      for (let n = Math.floor(next() * 6); n > 0; n--) {
        g += "0123456789abcdefABCDEF0000"[Math.floor(next() * 26)];
      }
      return g;
    });
    if (next() < 0.2) {
      groups[groups.length - 1] = `${Math.floor(next() * 260)}.0.2.${Math.floor(next() * 260)}`;
    }
    const s = groups.join(":");
    if (parseIp(s)?.length === 16) accepted6++;
    same(s);
  }
  // Both sides of the comparison were exercised: some accepted, many refused.
  assert.ok(accepted > 1000, `accepted ${accepted}`);
  assert.ok(accepted6 > 500, `accepted ${accepted6} IPv6`);
});

Deno.test("client key: an IPv4 client's key is its address; IPv6 keys keep their prefix", () => {
  const c = new ClientAddresses([], 64);
  const full = new ClientAddresses([], 128);
  // [resolver, peer, address, key]
  const cases: [ClientAddresses, string, string, string][] = [
    [c, "010.0.0.1", "10.0.0.1", "10.0.0.1"],
    [c, "::ffff:10.0.0.1", "10.0.0.1", "10.0.0.1"],
    [c, "2001:db8:1:2:3::4", "2001:db8:1:2:3::4", "2001:db8:1:2::/64"],
    [full, "2001:db8::4", "2001:db8::4", "2001:db8::4"],
    [c, "not-an-ip", "not-an-ip", "not-an-ip"],
  ];
  for (const [resolver, peer, address, key] of cases) {
    assert.deepEqual(resolver.resolve(peer, new Headers()), { address, key }, peer);
  }
});

Deno.test("client address: a direct peer's answer ignores headers and is a fresh object; a trusted proxy's headers count every time", () => {
  const c = new ClientAddresses(["10.0.0.0/8"], 64);
  const none = new Headers();
  const xff = new Headers({ "x-forwarded-for": "203.0.113.5" });
  // A direct peer: the same answer each time, as a fresh object the caller may keep.
  const first = c.resolve("192.0.2.1", none);
  first.address = "changed";
  const second = c.resolve("192.0.2.1", xff);
  assert.deepEqual(second, { address: "192.0.2.1", key: "192.0.2.1" });
  second.key = "changed";
  assert.deepEqual(c.resolve("192.0.2.1", none), { address: "192.0.2.1", key: "192.0.2.1" });
  assert.deepEqual(c.resolve("192.000.2.1", none), { address: "192.0.2.1", key: "192.0.2.1" });
  // A trusted proxy: first without headers, then with: the header counts the second time.
  assert.equal(c.resolve("10.0.0.1", none).address, "10.0.0.1");
  assert.equal(c.resolve("10.0.0.1", xff).address, "203.0.113.5");
  assert.equal(c.resolve("10.0.0.1", none).address, "10.0.0.1");
  assert.equal(
    c.resolve("10.0.0.1", new Headers({ forwarded: "for=198.51.100.9" })).address,
    "198.51.100.9",
  );
  // Many distinct peers: every answer right.
  for (let i = 0; i < 10_000; i++) {
    const peer = `2001:db8:${(0x100 + (i >> 8)).toString(16)}:${
      (0x100 + (i & 255)).toString(16)
    }::1`;
    const want = `2001:db8:${(0x100 + (i >> 8)).toString(16)}:${
      (0x100 + (i & 255)).toString(16)
    }::/64`;
    assert.equal(c.resolve(peer, xff).key, want);
    assert.equal(c.resolve(peer, none).key, want);
  }
  assert.equal(c.resolve("192.0.2.1", none).address, "192.0.2.1");
  assert.equal(c.resolve("10.0.0.1", xff).address, "203.0.113.5");
});

Deno.test("client address: with no trusted proxy every peer gets the full parse's answer (IPv4 fast path)", () => {
  // The direct-peer IPv4 case answers without parsing to bytes: it must agree with
  // formatting the parsed bytes, for canonical, zero-padded, out-of-range and junk strings alike.
  const c = new ClientAddresses([], 64);
  const none = new Headers();
  const expected = (s: string) => {
    const b = parseIp(s);
    if (!b) return { address: s, key: s };
    const address = formatIp(b);
    return b.length === 4 ? { address, key: address } : c.resolve(s, none);
  };
  const next = xorshift32(0x1b873593);
  let canonical = 0;
  for (let i = 0; i < 40_000; i++) {
    const octet = () => {
      const r = next();
      const n = Math.floor(next() * 300);
      return r < 0.1 ? String(n).padStart(3, "0") : r < 0.15 ? `0${n}` : r < 0.17 ? "" : String(n);
    };
    const parts = [octet(), octet(), octet(), octet()];
    if (next() < 0.05) parts.push(octet());
    if (next() < 0.05) parts.pop();
    const s = parts.join(next() < 0.02 ? ":" : ".");
    const got = c.resolve(s, none);
    assert.deepEqual(got, expected(s), JSON.stringify(s));
    if (got.address === s && parseIp(s)?.length === 4) canonical++;
  }
  for (const s of ["0.0.0.0", "255.255.255.255", "00.1.2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.04"]) {
    assert.deepEqual(c.resolve(s, none), expected(s), JSON.stringify(s));
  }
  assert.ok(canonical > 10_000, `canonical ${canonical}`);
});
