// The library surface: construction, options, the exported symbols, and the server's lifecycle.
import assert from "node:assert/strict";
import * as dback from "../../mod.ts";
import { WebSocketServer } from "../../mod.ts";
import { Client, startServer } from "../_fixtures/helpers.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("library: constructing a server reads no environment and prompts for nothing", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", new URL("../_fixtures/construct.ts", import.meta.url).pathname],
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
    args: ["doc", "--json", new URL("../../mod.ts", import.meta.url).pathname],
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

Deno.test("start(): a missing staticDir is an error, not a silent 404 for everything", async () => {
  await assert.rejects(
    () => startServer({ staticDir: "/nonexistent/dback-static" }),
    /staticDir \/nonexistent\/dback-static/,
  );
});
