// Issue 9 item 6: a flood of distinct tokens must not become a flood of
// requests to Discord. Attacks against the shared fake Discord; each asserts
// what the fake saw.
import assert from "node:assert/strict";
import { discordOAuthValidator } from "../../src/discord/_oauth.ts";
import { FakeDiscord } from "../_fixtures/fake_discord.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";

const CLUB = "555000000000000001";
const ADA = { id: "42", username: "ada" };
const GOOD = "good-token-0123456789abcdef";

const tokens = (n: number, tag = "t") =>
  Array.from({ length: n }, (_, i) => `forged-${tag}-${i}-0123456789`);

async function fakeWithAda(): Promise<FakeDiscord> {
  const fake = await FakeDiscord.start();
  fake.oauth.set(GOOD, { user: ADA, guilds: [{ id: CLUB, name: "Club" }] });
  return fake;
}

Deno.test("oauth budget: 300 distinct tokens at once reach Discord at most maxLookupsPerMinute times", async () => {
  await using fake = await fakeWithAda();
  const errors: string[] = [];
  const validate = discordOAuthValidator({
    apiBase: fake.apiBase,
    maxLookupsPerMinute: 20,
    maxConcurrentLookups: 1000,
    onError: (m) => errors.push(m),
  });
  const first = await Promise.all(tokens(300).map((t) => validate(t, ADA, CLUB)));
  assert.ok(first.every((r) => r === false));
  assert.equal(fake.rest.length, 20, "exactly the budget reached Discord");
  // A second wave within the minute gets nothing through, not even a real user.
  const second = await Promise.all(tokens(100, "u").map((t) => validate(t, ADA, CLUB)));
  assert.ok(second.every((r) => r === false));
  assert.equal(await validate(GOOD, ADA, CLUB), false);
  assert.equal(fake.rest.length, 20);
  const budget = errors.filter((m) => m.includes("validation budget spent"));
  assert.ok(budget.length >= 1 && budget.length <= 2, `reports are throttled: ${budget.length}`);
  assert.match(budget[0], /20 lookups in the last minute/);
});

Deno.test("oauth budget: at most maxConcurrentLookups requests are in flight", async () => {
  await using fake = await fakeWithAda();
  fake.restOverride = () => fake.hang();
  const validate = discordOAuthValidator({
    apiBase: fake.apiBase,
    maxConcurrentLookups: 4,
    timeoutMs: 200,
  });
  const all = await Promise.all(tokens(100).map((t) => validate(t, ADA, CLUB)));
  assert.ok(all.every((r) => r === false));
  assert.equal(fake.rest.length, 4);
  assert.ok(fake.restMaxInFlight <= 4, `in flight ${fake.restMaxInFlight}`);
  // The slots come back once those lookups end (here by their deadline).
  fake.restOverride = undefined;
  assert.equal(await validate(GOOD, ADA, CLUB), true);
  assert.equal(fake.rest.length, 6);
});

Deno.test("oauth budget: the defaults hold a sequential flood to 300 lookups a minute", async () => {
  await using fake = await fakeWithAda();
  const validate = discordOAuthValidator({ apiBase: fake.apiBase });
  const flood = tokens(400);
  for (let i = 0; i < flood.length; i += 8) {
    await Promise.all(flood.slice(i, i + 8).map((t) => validate(t, ADA, CLUB)));
  }
  assert.equal(fake.rest.length, 300);
});

Deno.test("oauth budget: cache hits and shared lookups cost no budget", async () => {
  await using fake = await fakeWithAda();
  const validate = discordOAuthValidator({ apiBase: fake.apiBase, maxLookupsPerMinute: 2 });
  const same = await Promise.all(Array.from({ length: 10 }, () => validate(GOOD, ADA, CLUB)));
  assert.ok(same.every((r) => r === true));
  for (let i = 0; i < 10; i++) assert.equal(await validate(GOOD, ADA, CLUB), true);
  assert.equal(fake.rest.length, 2, "one lookup: /users/@me and the guild list");
  assert.equal(await validate("forged-a-0123456789", ADA, CLUB), false);
  assert.equal(fake.rest.length, 3);
  assert.equal(await validate("forged-b-0123456789", ADA, CLUB), false);
  assert.equal(fake.rest.length, 3, "budget of 2 lookups spent");
});

Deno.test("oauth budget: invalid budget options throw a TypeError", () => {
  assert.throws(() => discordOAuthValidator({ maxConcurrentLookups: 0 }), TypeError);
  assert.throws(() => discordOAuthValidator({ maxLookupsPerMinute: 1.5 }), TypeError);
});

Deno.test("oauth budget: refusals reach onError at most once a second, each report with the count since the last", async () => {
  await using fake = await fakeWithAda();
  using time = new FakeTime();
  const errors: string[] = [];
  const validate = discordOAuthValidator({
    apiBase: fake.apiBase,
    maxLookupsPerMinute: 1,
    onError: (m) => errors.push(m),
  });
  const reports = () => errors.filter((m) => m.includes("validation budget spent"));
  assert.equal(await validate(GOOD, ADA, CLUB), true); // the minute's one lookup
  for (const t of tokens(10)) assert.equal(await validate(t, ADA, CLUB), false);
  assert.equal(reports().length, 1, "the first refusal is reported, the next nine are counted");
  assert.match(reports()[0], /refused 1 without asking Discord/);
  await time.tick(999);
  assert.equal(await validate("forged-late-0123456789", ADA, CLUB), false);
  assert.equal(reports().length, 1, "still within the second");
  await time.tick(1);
  assert.equal(await validate("forged-next-0123456789", ADA, CLUB), false);
  assert.equal(reports().length, 2);
  assert.match(
    reports()[1],
    /refused 11 without asking Discord/,
    "the ten held back, and this one",
  );
  assert.ok(fake.rest.length > 0 && fake.rest.length <= 6, "only the one lookup asked Discord");
});
