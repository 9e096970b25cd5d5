import { parseClientFrame } from "../../src/_client_frames.ts";
// Thousands of random and adversarial frames at a live server: nothing dies, nothing leaks.
import assert from "node:assert/strict";
import { DWORLD, joined, startServer, until } from "../_fixtures/helpers.ts";
import { mulberry32 } from "../_fixtures/random.ts";

function prng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

function adversarialFrames(random: () => number, count: number): Array<string | Uint8Array> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  const weird: unknown[] = [
    null,
    true,
    0,
    -1,
    1e308,
    NaN,
    "",
    " ",
    "default",
    "dworld",
    "oauth",
    "\u0000",
    "\ud800",
    "𝕯-𝖅𝖔𝖓𝖊",
    [],
    [1, 2],
    {},
    { id: 1 },
    { toString: "x" },
    { __proto__: { polluted: true } },
    "x".repeat(2000),
  ];
  const frames: Array<string | Uint8Array> = [];
  for (let i = 0; i < count; i++) {
    switch (Math.floor(random() * 10)) {
      case 0: { // random bytes
        const b = new Uint8Array(1 + Math.floor(random() * 300));
        for (let j = 0; j < b.length; j++) b[j] = Math.floor(random() * 256);
        frames.push(b);
        break;
      }
      case 1: { // deep nesting
        const depth = 1000 + Math.floor(random() * 9000);
        frames.push(
          random() < 0.5 ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" +
            "}".repeat(depth),
        );
        break;
      }
      case 2: // huge strings, under the frame limit
        frames.push(JSON.stringify({ type: "connect", data: { server: "é".repeat(20_000) } }));
        break;
      case 3: // __proto__ and constructor keys
        frames.push(
          pick([
            '{"__proto__":{"type":"connect"},"data":{"server":"dworld"}}',
            '{"type":"connect","data":{"__proto__":{"server":"oauth"},"server":"x"}}',
            '{"type":"connect","data":{"constructor":{"prototype":{"polluted":1}}}}',
            '{"type":"connect","data":{"server":"oauth","discordUser":{"__proto__":{"id":"1","username":"u"}},"discordToken":"t"}}',
          ]),
        );
        break;
      case 4: // wrong types in every field
        frames.push(JSON.stringify({
          type: pick(["connect", "CONNECT", 1, null, ["connect"], { x: 1 }]),
          data: pick([
            { server: pick(weird) },
            { server: pick(weird), discordToken: pick(weird), discordUser: pick(weird) },
            { server: "oauth", password: pick(weird) },
            pick(weird),
          ]),
        }));
        break;
      case 5: // truncated JSON
        frames.push('{"type":"connect","data":{"server":"dw'.slice(0, Math.floor(random() * 38)));
        break;
      case 6: // valid joins, to keep the join path hot
        frames.push(
          JSON.stringify({
            type: "connect",
            data: { server: pick(["dworld", "docs", "repos", "default"]) },
          }),
        );
        break;
      case 7: // control characters and invalid surrogates as text
        frames.push(
          String.fromCharCode(...Array.from({ length: 50 }, () => Math.floor(random() * 0xffff))),
        );
        break;
      case 8: // numbers where strings go
        frames.push(
          `{"type":"connect","data":{"server":${
            Math.floor(random() * 1e15)
          },"discordToken":5,"discordUser":{"id":7,"username":8}}}`,
        );
        break;
      default: // empty and whitespace
        frames.push(pick(["", " ", "\n", "{}", "[]", '""', "0"]));
    }
  }
  return frames;
}

Deno.test("fuzz: thousands of adversarial frames; the server keeps serving and memory returns", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 1_000_000);
  const random = prng(seed);
  await using s = await startServer({
    logLevel: "silent",
    ratePerSecond: 1_000_000,
    rateBurst: 1_000_000,
    ipFramesPerSecond: 1_000_000,
    ipBytesPerSecond: 1_000_000_000,
    maxFrameBytes: 64 * 1024,
    // Thousands of connects: the join budgets are not what is fuzzed here.
    joinBurst: 1_000_000,
    ipJoinBurst: 1_000_000,
  });
  const { server, url } = s;
  await using warm = await joined(url, "dworld");
  await warm.close();
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, "run the tests with --v8-flags=--expose-gc (deno task test does)");
  gc();
  const heapBefore = Deno.memoryUsage().heapUsed;
  const perConnection = 400;
  const connections = 8;
  for (let n = 0; n < connections; n++) {
    await using c = await joined(url);
    const frames = adversarialFrames(random, perConnection);
    // In chunks the size of the per-connection queue: every bad frame is answered with an
    // error; of connect requests waiting together only the newest is kept (a client cannot
    // grow the server's queue), so each chunk's connects get at least one answer.
    let expected = 1;
    for (let i = 0; i < frames.length; i += 8) {
      const chunk = frames.slice(i, i + 8);
      for (const f of chunk) c.ws.send(f);
      const connects = chunk.filter((f) => typeof f === "string" && parseClientFrame(f).ok).length;
      expected += chunk.length - connects + Math.min(1, connects);
      await until(
        () => c.frames.length >= expected || c.ws.readyState !== WebSocket.OPEN,
        30_000,
        `answers (seed ${seed})`,
      );
      assert.equal(c.ws.readyState, WebSocket.OPEN, `connection survived (seed ${seed})`);
    }
  }
  // Prototype keys in a request are data, not instructions: the join still works as asked.
  await using proto = await joined(url);
  proto.send(
    '{"type":"connect","data":{"server":"docs","__proto__":{"server":"dworld"},' +
      '"constructor":{"prototype":{"server":"dworld"}}}}',
  );
  const answer = await proto.nextOf("server-join");
  assert.equal(answer.data.serverName, "Docs (WIP)");
  assert.equal(({} as Record<string, unknown>).server, undefined);
  await proto.close();
  // A well-behaved client still joins and receives broadcasts.
  await using good = await joined(url, "dworld");
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "still here", channel: "c" }),
    1,
  );
  assert.equal((await good.nextOf("message")).data.message, "still here");
  await good.close();
  await until(() => server.connectionCount === 0);
  await new Promise((r) => setTimeout(r, 100));
  gc();
  const grown = Deno.memoryUsage().heapUsed - heapBefore;
  assert.ok(
    grown < 40 * 1024 * 1024,
    `heap grew by ${Math.round(grown / 1024 / 1024)} MiB (seed ${seed})`,
  );
});

Deno.test("fuzz under default limits: abusive connections are closed, the process and others are fine", async () => {
  const random = prng(42);
  await using s = await startServer({ logLevel: "silent" });
  const { server, url } = s;
  await using bystander = await joined(url, "dworld");
  for (let n = 0; n < 5; n++) {
    await using c = await joined(url);
    for (const f of adversarialFrames(random, 200)) c.ws.send(f);
    c.ws.send("z".repeat(100_000)); // over the 8 KiB frame limit
    await c.closed;
  }
  assert.equal(server.metrics.closedForAbuse, 5);
  await until(() => server.connectionCount === 1);
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "ok", channel: "c" }),
    1,
  );
  assert.equal((await bystander.nextOf("message")).data.message, "ok");
});
