// Joins to passworded servers: how a legacy password is compared, and the per-IP budget of
// Discord login checks.
import assert from "node:assert/strict";
import { ERRORS } from "../../mod.ts";
import { FakeTime } from "../_fixtures/fake_time.ts";
import { joined, startServer } from "../_fixtures/helpers.ts";

const LOCKED = "700000000000000001";

Deno.test("legacy password: compared in constant time (every byte read, wherever the mismatch)", async () => {
  const secret = "s".repeat(64);
  const guesses = {
    first: "x" + "s".repeat(63), // differs at the first byte
    last: "s".repeat(63) + "x", // differs at the last byte
    right: secret,
  };
  // Count the byte reads of the encoded password and guess: a comparison that stops at the
  // first difference reads fewer bytes for `first` than for `last`.
  const watched = new Set<string>([secret, ...Object.values(guesses)]);
  const reads = { n: 0 };
  const encode = TextEncoder.prototype.encode;
  TextEncoder.prototype.encode = function (input?: string) {
    const bytes = encode.call(this, input);
    if (input === undefined || !watched.has(input)) return bytes;
    return new Proxy(bytes, {
      get(target, prop) {
        if (typeof prop === "string" && /^\d+$/.test(prop)) reads.n++;
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
  const { server, url } = await startServer({
    callbacks: {
      getServerData: () => ({
        [LOCKED]: { id: "locked", name: "Locked", passworded: true, password: secret },
        "700000000000000002": { id: "open", name: "Open", default: true },
      }),
      getUserData: () => ({ "1": { username: "a", status: "online" } }),
    },
  });
  try {
    const c = await joined(url);
    const counted: Record<string, number> = {};
    for (const [name, guess] of Object.entries(guesses)) {
      reads.n = 0;
      const answer = await c.join("locked", { password: guess });
      counted[name] = reads.n;
      assert.equal(answer.type, name === "right" ? "server-join" : "error", name);
      if (name !== "right") assert.equal(answer.data.message, ERRORS.authRequired);
    }
    // Both 64-byte arrays read in full, whatever the guess.
    assert.deepEqual(counted, { first: 128, last: 128, right: 128 });
    await c.close();
  } finally {
    TextEncoder.prototype.encode = encode;
    await server.stop();
  }
});

Deno.test("per-IP login checks: a burst of 5, then ipLoginChecksPerMinute; past it no check runs", async () => {
  // A frozen clock: the budget refills only when the test moves time.
  using time = new FakeTime();
  const checked: string[] = [];
  const { server, url, logs } = await startServer({
    ipLoginChecksPerMinute: 2,
    callbacks: {
      getServerData: () => ({
        [LOCKED]: { id: "locked", name: "Locked", passworded: true },
        "700000000000000002": { id: "open", name: "Open", default: true },
      }),
      getUserData: () => ({ "1": { username: "a", status: "online" } }),
      validateDiscordUser: (token) => {
        checked.push(token);
        return false;
      },
    },
  });
  try {
    // Two connections from one IP share the budget.
    const a = await joined(url);
    const b = await joined(url);
    const join = async (c: typeof a, token: string) => {
      const answer = await c.join("locked", {
        discordToken: token,
        discordUser: { id: "1", username: "a" },
      });
      assert.equal(answer.type, "error");
      assert.equal(answer.data.message, ERRORS.authFailed);
    };
    for (let i = 0; i < 4; i++) await join(a, `token-a-${i}`);
    for (let i = 0; i < 4; i++) await join(b, `token-b-${i}`);
    assert.deepEqual(checked, ["token-a-0", "token-a-1", "token-a-2", "token-a-3", "token-b-0"]);
    const refusedLines = logs.filter((l) => l.message.includes("per-IP budget spent"));
    assert.equal(refusedLines.length, 3);
    // 2 per minute: one more check after 30 s, not before.
    await time.tick(29_000);
    await join(b, "token-b-late");
    assert.equal(checked.length, 5);
    await time.tick(1_000);
    await join(b, "token-b-later");
    assert.deepEqual(checked.slice(5), ["token-b-later"]);
    await a.close();
    await b.close();
  } finally {
    await server.stop();
  }
});
