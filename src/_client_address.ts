/**
 * Who the client is: the address every per-IP limit, log line and metric
 * uses. Behind a trusted reverse proxy it is read from `X-Forwarded-For`
 * (or, without it, RFC 7239 `Forwarded: for=`) — the rightmost address that
 * is not itself a trusted proxy; from any other peer those headers are
 * ignored, so nobody can choose their own address. IPv6 clients are grouped
 * by prefix (a /64 is one subscriber's network), IPv4 clients by address.
 *
 * @module
 */

/** An address as bytes: 4 for IPv4, 16 for IPv6 (an IPv4-mapped IPv6 address is IPv4). */
type Bytes = Uint8Array;

/** A parsed `address/bits` range. */
interface Range {
  bytes: Bytes;
  bits: number;
}

// Called on every upgrade: one pass over the characters, no regex and no split. Accepts exactly
// four dot-separated groups of 1-3 ASCII digits, each at most 255 (leading zeros allowed).
function parseIpv4(s: string): Bytes | null {
  const out = new Uint8Array(4);
  let part = 0, n = 0, digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return null;
      out[part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      n = n * 10 + c - 48;
      digits++;
    } else {
      return null;
    }
    if (n > 255) return null;
  }
  if (digits === 0 || part !== 3) return null;
  out[3] = n;
  return out;
}

// Whether `s` is an IPv4 address exactly as `formatIp` writes it (four groups of 1-3 digits, no
// leading zero, each at most 255): then it is its own address and key, with nothing to build.
// What a runtime reports for a direct IPv4 peer, on every upgrade.
function isCanonicalIpv4(s: string): boolean {
  let part = 0, n = 0, digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return false;
      part++;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3 && !(digits === 1 && n === 0)) {
      n = n * 10 + c - 48;
      digits++;
      if (n > 255) return false;
    } else {
      return false;
    }
  }
  return digits > 0 && part === 3;
}

function parseIpv6(s: string): Bytes | null {
  let head = s;
  let v4: Bytes | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    v4 = parseIpv4(s.slice(lastColon + 1));
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

/**
 * Parse an IP address as a runtime or a proxy writes it: IPv4, IPv6 (with or
 * without brackets, a `%zone` is dropped), IPv4-mapped IPv6 (as IPv4).
 * `null` when it is not an address.
 */
export function parseIp(text: string): Bytes | null {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) return parseIpv4(s);
  const b = parseIpv6(s);
  if (b && MAPPED.every((v, i) => b[i] === v)) return b.slice(12);
  return b;
}

/** Text form: dotted IPv4, or IPv6 with the longest zero run compressed (RFC 5952). */
export function formatIp(b: Bytes): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i] << 8) | b[i + 1]);
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** `addr` or `addr/bits`; `null` when malformed. */
export function parseRange(text: string): Range | null {
  const [addr, bitsText, extra] = text.trim().split("/");
  if (extra !== undefined) return null;
  const bytes = parseIp(addr);
  if (!bytes) return null;
  const max = bytes.length * 8;
  if (bitsText === undefined) return { bytes, bits: max };
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  const written = Number(bitsText);
  // An IPv4-mapped range (::ffff:10.0.0.0/104) counts its bits from the IPv4 part.
  const bits = addr.includes(":") && bytes.length === 4 ? written - 96 : written;
  if (bits < 0 || bits > max) return null;
  return { bytes, bits };
}

function inRange(b: Bytes, r: Range): boolean {
  if (b.length !== r.bytes.length) return false;
  const full = r.bits >> 3;
  for (let i = 0; i < full; i++) if (b[i] !== r.bytes[i]) return false;
  const rest = r.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (b[full] & mask) === (r.bytes[full] & mask);
}

/** The addresses in a `Forwarded` header's `for=` parameters, left to right. */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(",")) {
    for (const pair of element.split(";")) {
      const eq = pair.indexOf("=");
      if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== "for") continue;
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
      // "[2001:db8::1]:4711" and "192.0.2.1:80": the port is not part of the address.
      if (v.startsWith("[")) v = v.slice(0, v.indexOf("]") + 1);
      else if (v.split(":").length === 2) v = v.slice(0, v.indexOf(":"));
      out.push(v);
    }
  }
  return out;
}

/** Where a connection comes from, as the limits and logs see it. */
export interface Client {
  /** The client's address (the proxy's peer when trusted, else the TCP peer). */
  address: string;
  /** The key its per-IP limits count under: the address, or its IPv6 prefix (`2001:db8:1:2::/64`). */
  key: string;
}

/**
 * Finds the client address of a request and its per-IP key.
 *
 * @example
 * ```ts
 * import { ClientAddresses } from "./_client_address.ts";
 * const proxy = new ClientAddresses(["127.0.0.1", "10.0.0.0/8"], 64);
 * const h = new Headers({ "x-forwarded-for": "203.0.113.9, 198.51.100.7, 10.1.2.3" });
 * if (proxy.resolve("127.0.0.1", h).address !== "198.51.100.7") throw new Error("rightmost untrusted");
 * if (proxy.resolve("192.0.2.1", h).address !== "192.0.2.1") throw new Error("untrusted peer: ignored");
 * const v6 = proxy.resolve("2001:db8:1:2:aaaa::1", new Headers());
 * if (v6.key !== "2001:db8:1:2::/64") throw new Error(v6.key);
 * ```
 */
export class ClientAddresses {
  #trusted: Range[];
  #prefix: number;

  /** `trustProxy`: addresses or CIDR ranges (must be valid); `ipv6Prefix`: bits, 1-128. */
  constructor(trustProxy: readonly string[], ipv6Prefix: number) {
    this.#trusted = trustProxy.map((t) => {
      const r = parseRange(t);
      if (!r) throw new TypeError(`${JSON.stringify(t)} is not an IP address or CIDR range`);
      return r;
    });
    this.#prefix = ipv6Prefix;
  }

  #isTrusted(b: Bytes): boolean {
    return this.#trusted.some((r) => inRange(b, r));
  }

  /** The client behind TCP peer `peer`, given the request's headers. */
  resolve(peer: string, headers: Headers): Client {
    if (this.#trusted.length === 0 && isCanonicalIpv4(peer)) return { address: peer, key: peer };
    let chosen = parseIp(peer);
    if (!chosen) return { address: peer, key: peer };
    if (this.#trusted.length && this.#isTrusted(chosen)) {
      const xff = headers.get("x-forwarded-for");
      const fwd = xff === null ? headers.get("forwarded") : null;
      const hops = xff !== null
        ? xff.split(",").map((s) => s.trim())
        : fwd !== null
        ? forwardedFor(fwd)
        : [];
      // Walk from the nearest hop outwards; stop at the first one we do not trust.
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = parseIp(hops[i]);
        // An unknown or obfuscated hop ("unknown", "_hidden"): the last known one answers for it.
        if (!hop) break;
        chosen = hop;
        if (!this.#isTrusted(hop)) break;
      }
    }
    const address = formatIp(chosen);
    return { address, key: this.#key(chosen, address) };
  }

  /** `address` is `formatIp(b)`, already built. */
  #key(b: Bytes, address: string): string {
    if (b.length === 4 || this.#prefix >= 128) return address;
    const masked = new Uint8Array(16);
    const full = this.#prefix >> 3;
    masked.set(b.subarray(0, full));
    const rest = this.#prefix & 7;
    if (rest) masked[full] = b[full] & ((0xff << (8 - rest)) & 0xff);
    return `${formatIp(masked)}/${this.#prefix}`;
  }
}
