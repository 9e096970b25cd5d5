// What a new user hit (the API/seams issue): CLI papercuts, environment, mock fidelity, the
// public surface, and unit tests for the small counting pieces.
import assert from "node:assert/strict";
import { TokenBucket, utf8Length } from "../src/_limits.ts";
import { Hub } from "../src/_hub.ts";
import { parseCli } from "../src/cli.ts";
import * as dback from "../mod.ts";
import { MockSource, WebSocketServer } from "../mod.ts";
import { Client, REPOS } from "./helpers.ts";

const MAIN = new URL("../examples/main.ts", import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("CLI: --help wins over other flag errors", async () => {
  assert.deepEqual(parseCli(["--port", "abc", "--help"]), { kind: "help" });
  const r = await run(["--bogus", "-h"]);
  assert.equal(r.code, 0);
  assert.match(text(r.stdout), /Usage:/);
});

Deno.test("CLI: --static-dir pointing at a file says so", async () => {
  const file = await Deno.makeTempFile();
  try {
    const r = await run(["--port", "0", "--static-dir", file]);
    assert.equal(r.code, 1);
    assert.match(text(r.stderr), /not a directory \(it is a file\)/);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("CLI: an invalid DBACK_LOG_LEVEL is an error, like the flag", async () => {
  const r = await run(["--port", "0"], { DBACK_LOG_LEVEL: "loud" });
  assert.equal(r.code, 2);
  assert.match(text(r.stderr), /DBACK_LOG_LEVEL must be one of debug, info, warn, error, silent/);
});

Deno.test("CLI: --host :: prints a URL with the address in brackets", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--port", "0", "--host", "::1"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  try {
    while (!/listening on/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert.match(out, /listening on http:\/\/\[::1\]:\d+/);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reader.cancel();
  }
});

Deno.test("library: constructing a server reads no environment and prompts for nothing", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", new URL("./fixtures/construct.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(text(r.stdout).trim(), "ok", text(r.stderr));
});

Deno.test("options: unknown options are an error; port before start() is the configured one", () => {
  assert.throws(
    () => new WebSocketServer({ prot: 3000 } as unknown as dback.ServerOptions),
    /Invalid WebSocketServer options: .*prot/,
  );
  assert.equal(new WebSocketServer({ port: 4321 }).port, 4321);
  assert.equal(new WebSocketServer().port, 3000);
});

Deno.test("mock fidelity: 'My Repos' has the reference's statuses and colours; offline members do not chat", async () => {
  const users = Object.values(new MockSource().getUserData(REPOS));
  const count = (s: string) => users.filter((u) => u.status === s).length;
  assert.deepEqual([count("online"), count("idle"), count("dnd"), count("offline")], [10, 5, 3, 3]);
  assert.equal(users.find((u) => u.username === "me")?.roleColor, "#54a0ff");
  const dbackUser = users.find((u) => u.username === "d-back");
  assert.deepEqual([dbackUser?.status, dbackUser?.roleColor], ["dnd", "#ff6348"]);
  const offline = new Set(users.filter((u) => u.status === "offline").map((u) => u.uid));
  const speakers: string[] = [];
  let i = 0;
  const mock = new MockSource({ random: () => (i++ % 97) / 97 });
  mock.start({ emit: (e) => e.type === "message" && speakers.push(e.event.uid) });
  for (let n = 0; n < 300; n++) mock.tickMessage(REPOS);
  mock.stop();
  assert.equal(speakers.length, 300);
  assert.ok(speakers.every((uid) => !offline.has(uid)), "an offline member spoke");
  await Promise.resolve();
});

// The exact list: a change to the public surface is deliberate and shows up here.
const PUBLIC_SYMBOLS = [
  "Broker",
  "CallbackStats",
  "Callbacks",
  "ChatEvent",
  "ClientIdEvent",
  "DEFAULT_STATIC_DIR",
  "DataSource",
  "Deliver",
  "DiscordOAuthOptions",
  "DiscordUser",
  "DiscordUserValidator",
  "ERRORS",
  "EventOrigin",
  "EventPayloads",
  "EventSink",
  "LogLevel",
  "LogRecord",
  "LogSink",
  "MaybePromise",
  "MetricsSnapshot",
  "MockOptions",
  "MockSource",
  "MountedWebSocket",
  "PresenceEvent",
  "ServerEntry",
  "ServerEvent",
  "ServerGoneEvent",
  "ServerMap",
  "ServerOptions",
  "SourceContext",
  "StartOptions",
  "StaticResult",
  "Status",
  "TransportName",
  "UserEntry",
  "UserMap",
  "VERSION",
  "WebSocketServer",
  "discordOAuthValidator",
  "formatLogRecord",
];

Deno.test("public surface: exactly the listed symbols (types included), no internals", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", new URL("../mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "null",
  }).output();
  const doc = JSON.parse(new TextDecoder().decode(out.stdout));
  const symbols = new Set<string>();
  for (const mod of Object.values(doc.nodes) as Array<{ symbols: Array<{ name: string }> }>) {
    for (const s of mod.symbols) symbols.add(s.name);
  }
  assert.deepEqual([...symbols].sort(), [...PUBLIC_SYMBOLS].sort());
  for (const discord of ["DiscordGatewaySource", "Intents", "FATAL_CLOSE_CODES"]) {
    assert.ok(!symbols.has(discord), `${discord} belongs to ./discord`);
  }
  const names = Object.keys(dback);
  for (const internal of ["constantTimeEqual", "parseClientFrame", "MOCK_CHANNEL", "Metrics"]) {
    assert.ok(!names.includes(internal), internal);
  }
  assert.ok(names.includes("WebSocketServer") && names.includes("MockSource"));
});

Deno.test("await using: the server stops when the scope ends", async () => {
  let port = 0;
  {
    await using server = new WebSocketServer({
      port: 0,
      hostname: "127.0.0.1",
      logLevel: "silent",
    });
    await server.start();
    port = server.port;
    const c = await Client.open(`ws://127.0.0.1:${port}`);
    await c.next();
    await c.close();
  }
  await assert.rejects(() => fetch(`http://127.0.0.1:${port}/healthz`));
});

Deno.test("unit: token bucket refills at its rate and never past its burst", () => {
  const b = new TokenBucket(10, 3, 0);
  assert.equal(
    [b.take(1, 0), b.take(1, 0), b.take(1, 0), b.take(1, 0)].join(),
    "true,true,true,false",
  );
  assert.equal(b.take(1, 50), false, "half a token after 50 ms");
  assert.equal(b.take(1, 100), true, "one token after 100 ms");
  assert.equal(b.full(10_000), true);
  assert.equal(b.take(4, 10_000), false, "never more than the burst");
  assert.equal(b.take(3, 10_000), true);
});

Deno.test("unit: utf8Length matches TextEncoder, surrogates included", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a😀b", "\ud800", "\udc00x", "x\ud83d", "日本語"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
  }
});

Deno.test("unit: hub rooms, moves, activity events and fan-out counts", () => {
  const events: string[] = [];
  const hub = new Hub((id, active) => events.push(`${id}:${active}`));
  const got: string[] = [];
  const sub = (name: string, ok = true) => ({
    deliver: (f: string, bytes: number) => {
      got.push(`${name}<${f}:${bytes}`);
      return ok;
    },
  });
  const a = sub("a"), b = sub("b"), dead = sub("dead", false);
  hub.join(a, "1");
  hub.join(b, "1");
  hub.join(dead, "1");
  assert.equal(hub.publish("1", "é"), 2, "only delivered frames count");
  assert.deepEqual(got, ["a<é:2", "b<é:2", "dead<é:2"]);
  hub.join(a, "2");
  assert.equal(hub.roomOf(a), "2");
  hub.leave(b);
  hub.leave(dead);
  hub.leave(a);
  assert.equal(hub.publish("1", "x"), 0);
  assert.deepEqual(events, ["1:true", "2:true", "1:false", "2:false"]);
});
