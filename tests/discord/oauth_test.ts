// The built-in Discord OAuth2 validator against the shared fake Discord
// (tests/fake_discord.ts) on 127.0.0.1:0. Real Discord is never contacted.
import assert from "node:assert/strict";
import { type DiscordOAuthOptions, discordOAuthValidator } from "../../src/discord/_oauth.ts";
import { FakeDiscord } from "../_fixtures/fake_discord.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { Client, startServer } from "../_fixtures/helpers.ts";

const GOOD = "good-token-0123456789abcdef";
const OTHER = "other-token-0123456789abcdef";
const ADA = { id: "42", username: "ada" };
const BOB = { id: "43", username: "bob" };
const CLUB = "555000000000000001";
const ELSEWHERE = "555000000000000099";

/** The shared fake with two OAuth2 users: ada (member of CLUB) and bob. */
async function oauthFake(): Promise<FakeDiscord> {
  const fake = await FakeDiscord.start();
  fake.oauth.set(GOOD, {
    user: ADA,
    guilds: [{ id: CLUB, name: "Club" }, { id: "555000000000000002", name: "Other" }],
  });
  fake.oauth.set(OTHER, { user: BOB, guilds: [{ id: "555000000000000002", name: "Other" }] });
  return fake;
}

/** Run `body` with a fresh fake and a validator; diagnostics are collected and checked. */
async function withFake(
  body: (
    fake: FakeDiscord,
    make: (o?: DiscordOAuthOptions) => ReturnType<typeof discordOAuthValidator>,
    errors: string[],
  ) => Promise<void>,
): Promise<void> {
  await using fake = await oauthFake();
  const errors: string[] = [];
  const make = (o: DiscordOAuthOptions = {}) =>
    discordOAuthValidator({ apiBase: fake.apiBase, onError: (m) => errors.push(m), ...o });
  await body(fake, make, errors);
  for (const m of errors) {
    assert.ok(!m.includes(GOOD) && !m.includes(OTHER), `token leaked into: ${m}`);
  }
}

Deno.test("oauth: valid token of a member is allowed", async () => {
  await withFake(async (fake, make, errors) => {
    const validate = make();
    assert.equal(await validate(GOOD, ADA, CLUB), true);
    assert.deepEqual(fake.paths(), ["/users/@me", "/users/@me/guilds"]);
    assert.equal(fake.rest[0].authorization, `Bearer ${GOOD}`);
    assert.equal(fake.rest[1].authorization, `Bearer ${GOOD}`);
    assert.equal(fake.rest[1].query, "?limit=200");
    assert.deepEqual(errors, []);
  });
});

Deno.test("oauth: a token Discord rejects (401) is refused", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    assert.equal(await validate("stolen-or-expired-token", ADA, CLUB), false);
    assert.deepEqual(fake.paths(), ["/users/@me"]);
  });
});

Deno.test("oauth: a token of another user (id mismatch) is refused", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    // OTHER belongs to bob; the client claims to be ada.
    assert.equal(await validate(OTHER, ADA, "555000000000000002"), false);
    assert.deepEqual(fake.paths(), ["/users/@me"]);
  });
});

Deno.test("oauth: a user who is not a member of the server is refused", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    assert.equal(await validate(OTHER, BOB, CLUB), false);
    assert.deepEqual(fake.paths(), ["/users/@me", "/users/@me/guilds"]);
    assert.equal(await validate(GOOD, ADA, ELSEWHERE), false);
  });
});

Deno.test("oauth: guild list pages are followed with `after`", async () => {
  await withFake(async (fake, make) => {
    const many = Array.from({ length: 250 }, (_, i) => ({
      id: String(600000000000000000n + BigInt(i)),
      name: `g${i}`,
    }));
    fake.oauth.get(GOOD)!.guilds = many;
    const validate = make();
    assert.equal(await validate(GOOD, ADA, many[230].id), true);
    assert.deepEqual(fake.paths(), ["/users/@me", "/users/@me/guilds", "/users/@me/guilds"]);
    assert.equal(fake.rest[2].query, `?limit=200&after=${many[199].id}`);
  });
});

Deno.test("oauth: isMember replaces the guild list", async () => {
  await withFake(async (fake, make, errors) => {
    const asked: string[] = [];
    const validate = make({
      isMember: (userId, serverId) => {
        asked.push(`${userId}@${serverId}`);
        return Promise.resolve(serverId === ELSEWHERE);
      },
    });
    // The guild list says CLUB, the hook says ELSEWHERE: the hook wins.
    assert.equal(await validate(GOOD, ADA, ELSEWHERE), true);
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.deepEqual(asked, [`42@${ELSEWHERE}`, `42@${CLUB}`]);
    assert.ok(!fake.paths().includes("/users/@me/guilds"));

    // A throwing hook refuses, and says why.
    const throwing = make({
      isMember: () => {
        throw new Error("member cache offline");
      },
    });
    assert.equal(await throwing(GOOD, ADA, CLUB), false);
    assert.ok(
      errors.some((m) => m.includes("isMember threw (member cache offline)")),
      errors.join(),
    );

    // A non-boolean answer refuses too.
    const sloppy = make({ isMember: () => "yes" as unknown as boolean });
    assert.equal(await sloppy(GOOD, ADA, CLUB), false);
  });
});

Deno.test("oauth: a hanging isMember is cut off by timeoutMs", async () => {
  await withFake(async (_fake, make, errors) => {
    using time = new FakeTime({ timers: true });
    let reached!: () => void;
    const asked = new Promise<void>((r) => reached = r);
    const validate = make({
      timeoutMs: 100,
      isMember: () => {
        reached();
        return new Promise<boolean>(() => {}); // never answers
      },
    });
    let verdict: boolean | undefined;
    const pending = validate(GOOD, ADA, CLUB).then((v) => verdict = v);
    await asked;
    await time.tick(99);
    assert.equal(verdict, undefined, "still waiting 1 ms before the deadline");
    await time.tick(1);
    await pending;
    assert.equal(verdict, false);
    assert.ok(errors.some((m) => m.includes("isMember gave no answer within 100 ms")));
  });
});

Deno.test("oauth: a route 429 backs off that token only, for retry_after", async () => {
  await withFake(async (fake, make, errors) => {
    using time = new FakeTime();
    const validate = make();
    fake.restOverride = (req, url) =>
      url.pathname.endsWith("/users/@me") && req.headers.get("authorization") === `Bearer ${GOOD}`
        ? Response.json(
          { message: "You are being rate limited.", retry_after: 0.3, global: false },
          {
            status: 429,
            headers: { "Retry-After": "1" },
          },
        )
        : undefined;
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.equal(fake.rest.length, 1);
    // Within the window: that token is refused at once, Discord is not asked.
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.equal(fake.rest.length, 1);
    // Another token is not locked out: Discord's buckets are per token.
    assert.equal(await validate(OTHER, BOB, "555000000000000002"), true);
    assert.equal(fake.rest.length, 3);
    assert.ok(
      errors.some((m) => m.includes("rate limited") && m.includes("300 ms")),
      errors.join(),
    );
    fake.restOverride = undefined;
    // Just before retry_after, still refused without asking; after it (the body's 0.3 s wins
    // over the header's 1 s) Discord is asked again.
    await time.tick(299);
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.equal(fake.rest.length, 3);
    await time.tick(1);
    assert.equal(await validate(GOOD, ADA, CLUB), true);
    assert.equal(fake.rest.length, 5);
  });
});

Deno.test("oauth: a 429 on the guild list blocks that route; Retry-After header is used", async () => {
  await withFake(async (fake, make) => {
    using time = new FakeTime();
    const validate = make();
    fake.restOverride = (_req, url) =>
      url.pathname.endsWith("/guilds")
        ? new Response("slow down", { status: 429, headers: { "Retry-After": "0.2" } })
        : undefined;
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.equal(fake.rest.length, 2);
    // Guild route blocked: not even /users/@me is asked.
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.equal(fake.rest.length, 2);
    // isMember does not need the blocked route.
    const hooked = make({ isMember: () => true });
    fake.restOverride = undefined;
    assert.equal(await hooked(GOOD, ADA, CLUB), true);
    await time.tick(199);
    assert.equal(await validate(GOOD, ADA, CLUB), false, "the route is blocked for 0.2 s");
    await time.tick(1);
    assert.equal(await validate(GOOD, ADA, CLUB), true);
  });
});

Deno.test("oauth: a per-user 429 (X-RateLimit-Scope: user) only blocks that token", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    fake.restOverride = (req) =>
      req.headers.get("authorization") === `Bearer ${OTHER}`
        ? Response.json({ retry_after: 5, global: false }, {
          status: 429,
          headers: { "X-RateLimit-Scope": "user" },
        })
        : undefined;
    assert.equal(await validate(OTHER, BOB, "555000000000000002"), false);
    assert.equal(await validate(OTHER, BOB, "555000000000000002"), false);
    assert.equal(fake.rest.length, 1);
    assert.equal(await validate(GOOD, ADA, CLUB), true);
  });
});

Deno.test("oauth: a global 429 blocks every token and route", async () => {
  for (
    const answer of [
      () => Response.json({ retry_after: 5, global: true }, { status: 429 }),
      () =>
        Response.json({ retry_after: 5 }, {
          status: 429,
          headers: { "X-RateLimit-Global": "true" },
        }),
      () =>
        Response.json({ retry_after: 5 }, {
          status: 429,
          headers: { "X-RateLimit-Scope": "global" },
        }),
    ]
  ) {
    await withFake(async (fake, make) => {
      const validate = make({ isMember: () => true });
      fake.restOverride = answer;
      assert.equal(await validate(GOOD, ADA, CLUB), false);
      fake.restOverride = undefined;
      assert.equal(await validate(OTHER, BOB, CLUB), false);
      assert.equal(await validate("third-token-0123456789", ADA, CLUB), false);
      assert.equal(fake.rest.length, 1);
    });
  }
});

Deno.test("oauth: Discord that never answers times out and refuses", async () => {
  await withFake(async (fake, make, errors) => {
    using time = new FakeTime({ timers: true });
    let reached!: () => void;
    const asked = new Promise<void>((r) => reached = r);
    fake.restOverride = () => {
      reached();
      return fake.hang();
    };
    const validate = make({ timeoutMs: 100 });
    let verdict: boolean | undefined;
    const pending = validate(GOOD, ADA, CLUB).then((v) => verdict = v);
    await asked;
    await time.tick(99);
    assert.equal(verdict, undefined, "still waiting 1 ms before the deadline");
    await time.tick(1);
    await pending;
    assert.equal(verdict, false);
    assert.ok(errors.some((m) => m.includes("no answer within 100 ms")), errors.join());
  });
});

Deno.test("oauth: a network failure (closed port) refuses", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const errors: string[] = [];
  const validate = discordOAuthValidator({
    apiBase: `http://127.0.0.1:${port}/api/v10`,
    onError: (m) => errors.push(m),
  });
  assert.equal(await validate(GOOD, ADA, CLUB), false);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /request failed/);
  assert.ok(!errors[0].includes(GOOD));
});

Deno.test("oauth: malformed bodies and server errors refuse and are not cached", async () => {
  await withFake(async (fake, make, errors) => {
    const validate = make();
    fake.restOverride = (_req, url) =>
      url.pathname.endsWith("/users/@me") ? Response.json({ username: "no id" }) : undefined;
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    fake.restOverride = (_req, url) =>
      url.pathname.endsWith("/guilds") ? new Response("<html>oops</html>") : undefined;
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    fake.restOverride = (_req, url) =>
      url.pathname.endsWith("/guilds") ? Response.json({ guilds: [CLUB] }) : undefined;
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    fake.restOverride = () => new Response("bad gateway", { status: 502 });
    assert.equal(await validate(GOOD, ADA, CLUB), false);
    assert.equal(errors.length, 4, errors.join("\n"));
    assert.match(errors[0], /\/users\/@me: malformed body/);
    assert.match(errors[1], /unreadable body/);
    assert.match(errors[2], /\/users\/@me\/guilds: malformed body/);
    assert.match(errors[3], /answered 502/);
    // None of these failures were cached: the next call asks Discord and succeeds.
    fake.restOverride = undefined;
    const before = fake.rest.length;
    assert.equal(await validate(GOOD, ADA, CLUB), true);
    assert.equal(fake.rest.length, before + 2);
  });
});

Deno.test("oauth: answers are cached for their TTL, per token, user and server", async () => {
  await withFake(async (fake, make) => {
    using time = new FakeTime();
    const validate = make({ cacheTtlMs: 60_000, negativeCacheTtlMs: 10_000 });
    assert.equal(await validate(GOOD, ADA, CLUB), true);
    assert.equal(fake.rest.length, 2);
    await time.tick(59_999);
    assert.equal(await validate(GOOD, ADA, CLUB), true);
    assert.equal(fake.rest.length, 2, "a hit within the TTL asks nobody");
    // Negative answers are cached too, for their own, shorter TTL.
    assert.equal(await validate("bad-token-xyz", ADA, CLUB), false);
    assert.equal(await validate("bad-token-xyz", ADA, CLUB), false);
    assert.equal(fake.rest.length, 3);
    // Another server is another key.
    assert.equal(await validate(GOOD, ADA, ELSEWHERE), false);
    assert.equal(fake.rest.length, 5);
    await time.tick(1);
    assert.equal(await validate(GOOD, ADA, CLUB), true);
    assert.equal(fake.rest.length, 7, "the positive entry expired at its TTL");
    // The negative entry was written at 59.999 s: it lives until 69.999 s.
    await time.tick(9_998);
    assert.equal(await validate("bad-token-xyz", ADA, CLUB), false);
    assert.equal(fake.rest.length, 7, "the negative entry lives 10 s");
    await time.tick(1);
    assert.equal(await validate("bad-token-xyz", ADA, CLUB), false);
    assert.equal(fake.rest.length, 8, "and not longer");
    // A revoked token is noticed once the positive entry expires.
    fake.oauth.delete(GOOD);
    assert.equal(await validate(GOOD, ADA, CLUB), true, "still cached");
    await time.tick(60_000);
    assert.equal(await validate(GOOD, ADA, CLUB), false);
  });
});

Deno.test("oauth: concurrent identical lookups share one request", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    const results = await Promise.all(Array.from({ length: 20 }, () => validate(GOOD, ADA, CLUB)));
    assert.ok(results.every((r) => r === true));
    assert.deepEqual(fake.paths(), ["/users/@me", "/users/@me/guilds"]);
  });
});

Deno.test("oauth: the cache is bounded and evicts the oldest entry", async () => {
  await withFake(async (fake, make) => {
    const validate = make({ isMember: () => true, maxCacheEntries: 2 });
    await validate(GOOD, ADA, "1");
    await validate(GOOD, ADA, "2");
    await validate(GOOD, ADA, "2");
    assert.equal(fake.rest.length, 2);
    await validate(GOOD, ADA, "3"); // evicts "1"
    await validate(GOOD, ADA, "2");
    assert.equal(fake.rest.length, 3);
    await validate(GOOD, ADA, "1");
    assert.equal(fake.rest.length, 4);
  });
});

Deno.test("oauth: malformed input is refused without asking Discord", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    assert.equal(await validate("", ADA, CLUB), false);
    assert.equal(await validate("two words", ADA, CLUB), false);
    assert.equal(await validate("line\nbreak", ADA, CLUB), false);
    assert.equal(await validate(GOOD, { id: "", username: "x" }, CLUB), false);
    assert.equal(fake.rest.length, 0);
  });
});

Deno.test("oauth: invalid options throw a TypeError", () => {
  assert.throws(() => discordOAuthValidator({ apiBase: "not a url" }), TypeError);
  assert.throws(() => discordOAuthValidator({ apiBase: "ftp://example.com" }), TypeError);
  assert.throws(() => discordOAuthValidator({ timeoutMs: 0 }), TypeError);
  assert.throws(() => discordOAuthValidator({ cacheTtlMs: -1 }), TypeError);
  assert.throws(() => discordOAuthValidator({ maxCacheEntries: 0 }), TypeError);
  assert.throws(
    () => discordOAuthValidator({ isMember: true as unknown as () => boolean }),
    TypeError,
  );
});

Deno.test("oauth: a throwing onError sink does not break validation", async () => {
  await withFake(async (fake, make) => {
    fake.restOverride = () => new Response("down", { status: 503 });
    const validate = make({
      onError: () => {
        throw new Error("sink broken");
      },
    });
    assert.equal(await validate(GOOD, ADA, CLUB), false);
  });
});

Deno.test("oauth: end to end through a real WebSocketServer", async () => {
  const fake = await oauthFake();
  const { server, logs, url } = await startServer({
    callbacks: {
      getServerData: () => ({ [CLUB]: { id: "club", name: "The Club", passworded: true } }),
      getUserData: () => ({ "42": { uid: "42", username: "ada", status: "online" } }),
      validateDiscordUser: discordOAuthValidator({ apiBase: fake.apiBase }),
    },
  });
  const clients: Client[] = [];
  try {
    const good = await Client.open(url);
    clients.push(good);
    assert.equal((await good.next()).type, "server-list");
    const joinedFrame = await good.join("club", { discordToken: GOOD, discordUser: ADA });
    assert.equal(joinedFrame.type, "server-join", JSON.stringify(joinedFrame));
    assert.equal(joinedFrame.data.serverName, "The Club");
    assert.deepEqual(Object.keys(joinedFrame.data.users), ["42"]);
    assert.ok(!JSON.stringify(joinedFrame).includes(GOOD));

    const bad = await Client.open(url);
    clients.push(bad);
    assert.equal((await bad.next()).type, "server-list");
    const badToken = "forged-token-ffffffffffffffff";
    const refused = await bad.join("club", { discordToken: badToken, discordUser: ADA });
    assert.equal(refused.type, "error");
    assert.equal(
      refused.data.message,
      "Discord authentication failed. Please try logging in again.",
    );

    // An impostor with a real token of someone else is refused too.
    const impostor = await bad.join("club", { discordToken: OTHER, discordUser: ADA });
    assert.equal(impostor.type, "error");

    assert.deepEqual(fake.paths(), ["/users/@me", "/users/@me/guilds", "/users/@me", "/users/@me"]);
    const logText = JSON.stringify(logs);
    for (const secret of [GOOD, OTHER, badToken]) {
      assert.ok(!logText.includes(secret), `token found in logs`);
    }
    // The lines the tokens were checked against are there: the login and both refusals.
    const messages = logs.map((l) => l.message);
    assert.ok(messages.includes("authenticated for club via discord"), messages.join("\n"));
    const refusals = messages.filter((m) =>
      m.startsWith("join refused: club needs authentication")
    );
    assert.equal(refusals.length, 2, messages.join("\n"));
  } finally {
    for (const c of clients) await c.close();
    await server.stop();
    await fake.stop();
  }
});

Deno.test("oauth: answers are cached by the SHA-256 of the token, plus the user and the server", async () => {
  await withFake(async (fake, make) => {
    const validate = make();
    const subtle = crypto.subtle;
    const original = subtle.digest;
    const digested: string[] = [];
    subtle.digest = function (algorithm: AlgorithmIdentifier, data: BufferSource) {
      const bytes = data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const name = typeof algorithm === "string" ? algorithm : algorithm.name;
      digested.push(`${name}:${new TextDecoder().decode(bytes)}`);
      return original.call(subtle, algorithm, data);
    };
    try {
      assert.equal(await validate(GOOD, ADA, CLUB), true);
      assert.equal(await validate(GOOD, ADA, CLUB), true);
      assert.equal(fake.rest.length, 2, "the second call was a cache hit");
      // Each call hashed the token with SHA-256 before looking anything up.
      assert.deepEqual(digested, [`SHA-256:${GOOD}`, `SHA-256:${GOOD}`]);
      // Same token, another user or another server: another key, another lookup.
      assert.equal(await validate(GOOD, BOB, CLUB), false);
      assert.equal(await validate(GOOD, ADA, ELSEWHERE), false);
      assert.equal(fake.rest.length, 5);
    } finally {
      subtle.digest = original;
    }
  });
});
