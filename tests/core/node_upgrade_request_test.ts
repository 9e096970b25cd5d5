// The Node transport answers upgrades without building a web Request: what the upgrade path reads
// of its light request head (method, URL, header values) must be what the full Request gave, for
// ordinary heads and for the odd ones (duplicated, mixed-case and padded headers, a Host that is
// missing, malformed or only looks valid, an absolute or empty target, a method the Fetch API
// forbids).
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { toRequest, upgradeRequest } from "../../src/transport/_node_http.ts";

const FALLBACK = "127.0.0.1:3000";
const NAMES = [
  "host",
  "Host",
  "origin",
  "upgrade",
  "x-forwarded-for",
  "forwarded",
  "sec-websocket-key",
  "absent",
];

/** A node request head: `headers` as node folds them (first Host wins), and the raw list. */
function head(method: string, url: string, raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k === "host" && k in headers) continue;
    headers[k] = k in headers ? `${headers[k]}, ${raw[i + 1]}` : raw[i + 1];
  }
  return { method, url, headers, rawHeaders: raw } as unknown as IncomingMessage;
}

const BASE = ["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key", "a".repeat(22)];
const CASES: Array<[string, IncomingMessage]> = [
  [
    "ordinary",
    head("GET", "/", ["Host", "dzone.example", ...BASE, "Origin", "https://dzone.example"]),
  ],
  ["path and query", head("GET", "/ws?x=1", ["host", "dzone.example:8080", ...BASE])],
  [
    "duplicated and mixed-case names",
    head("GET", "/", [
      "HOST",
      "a.example",
      "X-Forwarded-For",
      "192.0.2.1",
      "x-forwarded-for",
      "192.0.2.2",
      "Forwarded",
      "for=192.0.2.9",
      "Host",
      "b.example",
      ...BASE,
    ]),
  ],
  [
    "padded values",
    head("GET", "/", ["Host", " dzone.example", "Origin", "\thttps://x.example ", ...BASE]),
  ],
  ["no Host", head("GET", "/", [...BASE])],
  ["malformed Host", head("GET", "/", ["Host", "evil host/x", ...BASE])],
  ["Host that only looks valid", head("GET", "/", ["Host", "dzone.example:99999", ...BASE])],
  ["absolute target", head("GET", "http://other.example/x", ["Host", "dzone.example", ...BASE])],
  ["empty target", head("GET", "", ["Host", "dzone.example", ...BASE])],
  ["IPv6 Host", head("GET", "/", ["Host", "[::1]:3000", ...BASE])],
];

for (const secure of [false, true]) {
  for (const [name, req] of CASES) {
    Deno.test(`node upgrade head (${secure ? "https" : "http"}): ${name} reads as the web Request did`, () => {
      const full = toRequest(req, FALLBACK, secure);
      const light = upgradeRequest(req, FALLBACK, secure);
      assert.equal(light.method, full.method);
      assert.equal(light.url, full.url);
      for (const h of NAMES) {
        assert.equal(light.headers.get(h), full.headers.get(h), h);
        assert.equal(light.headers.has(h), full.headers.has(h), h);
      }
    });
  }
}

Deno.test("node upgrade head: a method the Fetch API forbids throws, as the web Request did", () => {
  for (const method of ["TRACE", "TRACK", "CONNECT"]) {
    const req = head(method, "/", ["Host", "dzone.example", ...BASE]);
    assert.throws(() => toRequest(req, FALLBACK));
    assert.throws(() => upgradeRequest(req, FALLBACK), TypeError, method);
  }
});
