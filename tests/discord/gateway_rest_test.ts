// Issue 13 item 8: GET /gateway/bot when Discord's REST API has a bad day:
// 429 with retry_after or Retry-After, persistent 5xx, no answer at all.
import assert from "node:assert/strict";
import { DEFAULT_API_BASE, fetchGatewayBot, isDiscordApiBase } from "../../src/discord/_rest.ts";
import { FakeDiscord, gatewayClient } from "../_fixtures/fake_discord.ts";

const BOT = "/api/v10/gateway/bot";

Deno.test("gateway 13.8: a 429 from /gateway/bot is retried after retry_after (body)", async () => {
  await using fake = await FakeDiscord.start();
  let first = true;
  fake.restOverride = (_req, url) => {
    if (url.pathname !== BOT || !first) return undefined;
    first = false;
    return Response.json({
      message: "You are being rate limited.",
      retry_after: 0.3,
      global: false,
    }, {
      status: 429,
      headers: { "Retry-After": "5" },
    });
  };
  await using c = gatewayClient(fake, { gatewayUrl: undefined });
  c.client.connect();
  await fake.waitSession(1);
  const hits = fake.rest.filter((h) => h.path === BOT);
  assert.equal(hits.length, 2);
  // A lower bound: the retry must not come before retry_after (0.3 s; the body wins over the header).
  assert.ok(hits[1].at - hits[0].at >= 290, `retried after ${hits[1].at - hits[0].at} ms`);
  assert.ok(hits[1].at - hits[0].at < 4000, "the header's 5 s was not used");
  assert.equal(c.lines(/HTTP 429.*retrying in 300 ms/).length, 1);
});

Deno.test("gateway 13.8: a 429 with only a Retry-After header waits that long", async () => {
  await using fake = await FakeDiscord.start();
  let first = true;
  fake.restOverride = (_req, url) => {
    if (url.pathname !== BOT || !first) return undefined;
    first = false;
    return new Response("slow down", { status: 429, headers: { "Retry-After": "0.25" } });
  };
  await using c = gatewayClient(fake, { gatewayUrl: undefined });
  c.client.connect();
  await fake.waitSession(1);
  const hits = fake.rest.filter((h) => h.path === BOT);
  assert.ok(hits[1].at - hits[0].at >= 240, `retried after ${hits[1].at - hits[0].at} ms`);
});

Deno.test("gateway 13.8: a persistent 500 from a non-Discord API base fails, naming the HTTP error, with no fallback", async () => {
  await using fake = await FakeDiscord.start();
  fake.restOverride = () => new Response("boom", { status: 500 });
  await using c = gatewayClient(fake, {
    gatewayUrl: undefined,
    timing: { restAttempts: 3, restRetryBaseMs: 20 },
  });
  c.client.connect();
  await fake.until(() => c.fatal.length === 1, 5000, "the fatal error");
  const msg = c.fatal[0].message;
  assert.match(msg, /HTTP 500/);
  assert.match(msg, /after 3 attempts/);
  assert.match(msg, /not Discord's, so there is no fallback/);
  assert.doesNotMatch(msg, /gateway\.discord\.gg/);
  assert.equal(fake.rest.length, 3);
  assert.equal(fake.conns.length, 0);
  assert.equal(c.lines(/gateway\.discord\.gg/).length, 0, "the public gateway was not tried");
});

Deno.test("gateway 13.8: /gateway/bot that never answers fails after its attempts, saying so", async () => {
  await using fake = await FakeDiscord.start();
  fake.restOverride = () => fake.hang();
  await using c = gatewayClient(fake, {
    gatewayUrl: undefined,
    timing: { restAttempts: 2, restRetryBaseMs: 20, restTimeoutMs: 100 },
  });
  c.client.connect();
  await fake.until(() => c.fatal.length === 1, 5000, "the fatal error");
  assert.match(c.fatal[0].message, /no answer in time \(after 2 attempts\)/);
});

Deno.test("gateway 13.8: only Discord's own API base may fall back to the public gateway", () => {
  assert.equal(isDiscordApiBase(DEFAULT_API_BASE), true);
  assert.equal(isDiscordApiBase("https://canary.discord.com/api/v10"), true);
  assert.equal(isDiscordApiBase("https://discord.com.evil.example/api"), false);
  assert.equal(isDiscordApiBase("http://discord.com/api/v10"), false);
  assert.equal(isDiscordApiBase("http://127.0.0.1:9999/api/v10"), false);
});

Deno.test("gateway 13.8: fetchGatewayBot reports shards and session_start_limit; a 4xx is not retried", async () => {
  await using fake = await FakeDiscord.start({
    shards: 3,
    sessionStartLimit: { total: 1000, remaining: 5, reset_after: 1234, max_concurrency: 4 },
  });
  const info = await fetchGatewayBot(fetch, fake.apiBase, fake.token);
  assert.equal(info.url, fake.gatewayUrl);
  assert.equal(info.shards, 3);
  assert.deepEqual(info.sessionStartLimit, {
    total: 1000,
    remaining: 5,
    resetAfterMs: 1234,
    maxConcurrency: 4,
  });
  await assert.rejects(fetchGatewayBot(fetch, fake.apiBase, "wrong"), /HTTP 401/);
  assert.equal(fake.rest.length, 2, "the 401 was asked once");
});

Deno.test("gateway 13.8: with Discord's own API base, a failing /gateway/bot falls back to the public gateway", async () => {
  await using fake = await FakeDiscord.start();
  const asked: string[] = [];
  const tried: string[] = [];
  // No traffic leaves the machine: fetch is a stub and so is the WebSocket constructor.
  const RealWebSocket = globalThis.WebSocket;
  globalThis.WebSocket = class {
    constructor(url: string | URL) {
      tried.push(String(url));
      throw new Error("blocked by the test");
    }
  } as unknown as typeof WebSocket;
  try {
    await using c = gatewayClient(fake, {
      gatewayUrl: undefined,
      apiBase: DEFAULT_API_BASE,
      fetch: (input) => {
        asked.push(String(input));
        return Promise.resolve(new Response("down", { status: 503 }));
      },
      timing: { restAttempts: 2, restRetryBaseMs: 10 },
    });
    c.client.connect();
    await fake.until(() => c.fatal.length === 1, 3000, "the stubbed connect");
    assert.deepEqual(asked, [`${DEFAULT_API_BASE}/gateway/bot`, `${DEFAULT_API_BASE}/gateway/bot`]);
    assert.equal(tried.length, 1);
    assert.match(tried[0], /^wss:\/\/gateway\.discord\.gg\/\?v=10&encoding=json$/);
    assert.equal(
      c.lines(/HTTP 503 \(after 2 attempts\); using wss:\/\/gateway\.discord\.gg/).length,
      1,
    );
  } finally {
    globalThis.WebSocket = RealWebSocket;
  }
});
