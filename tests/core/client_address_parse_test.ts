// The address parser runs on every upgrade, so it is written as one pass over the characters. This
// checks it against the earlier regex-and-split version (kept here as the reference): a table of
// valid and invalid inputs, then generated strings, must parse to the same bytes or both be refused.
import assert from "node:assert/strict";
import { ClientAddresses, formatIp, parseIp } from "../../src/_client_address.ts";

function refIpv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function refIpv6(s: string): Uint8Array | null {
  let head = s;
  let v4: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    v4 = refIpv4(s.slice(lastColon + 1));
    if (!v4) return null;
    head = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const group = (part: string) => part === "" ? [] : part.split(":");
  const left = group(halves[0]);
  const right = halves.length === 2 ? group(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const words = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(words[i])) return null;
    const n = parseInt(words[i], 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  }
  if (v4) out.set(v4, 12);
  return out;
}

const MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255];

function refParseIp(text: string): Uint8Array | null {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) return refIpv4(s);
  const b = refIpv6(s);
  if (b && MAPPED.every((v, i) => b[i] === v)) return b.slice(12);
  return b;
}

const same = (input: string) => {
  const got = parseIp(input);
  const want = refParseIp(input);
  assert.deepEqual(got && [...got], want && [...want], JSON.stringify(input));
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
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
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
  // Both sides of the comparison were exercised: some accepted, many refused.
  assert.ok(accepted > 1000, `accepted ${accepted}`);
});

Deno.test("client key: an IPv4 client's key is its address; IPv6 keys keep their prefix", () => {
  const c = new ClientAddresses([], 64);
  assert.deepEqual(c.resolve("010.0.0.1", new Headers()), { address: "10.0.0.1", key: "10.0.0.1" });
  assert.deepEqual(c.resolve("::ffff:10.0.0.1", new Headers()), {
    address: "10.0.0.1",
    key: "10.0.0.1",
  });
  assert.deepEqual(c.resolve("2001:db8:1:2:3::4", new Headers()), {
    address: "2001:db8:1:2:3::4",
    key: "2001:db8:1:2::/64",
  });
  const full = new ClientAddresses([], 128);
  assert.deepEqual(full.resolve("2001:db8::4", new Headers()), {
    address: "2001:db8::4",
    key: "2001:db8::4",
  });
  assert.deepEqual(c.resolve("not-an-ip", new Headers()), {
    address: "not-an-ip",
    key: "not-an-ip",
  });
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
  let seed = 0x1b873593;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
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
