// The transport picker: the runtime's own by default, an explicit choice for tests, a clear
// error when the choice cannot run here. Nothing above src/transport/ names a runtime.
import assert from "node:assert/strict";
import { WebSocketServer } from "../../mod.ts";
import { joined, startServer } from "../_fixtures/helpers.ts";

Deno.test("transport: Deno's own by default, and the same when named", async () => {
  for (const transport of [undefined, "deno" as const]) {
    await using s = await startServer(transport ? { transport } : {});
    assert.equal(s.server.runtime, "deno");
    await using c = await joined(s.url, "dworld");
    assert.equal(c.frames[0].type, "server-list");
  }
});

Deno.test("transport: a transport that cannot run here is a clear error at construction", () => {
  assert.throws(
    () => new WebSocketServer({ transport: "bun" }),
    (e) => e instanceof Error && e.message === "the bun transport needs the Bun runtime",
  );
  assert.throws(
    () => new WebSocketServer({ transport: "uws" as "bun" }),
    (e) => e instanceof TypeError && /transport: /.test(e.message),
  );
});

Deno.test("transport: the node transport can be chosen on Deno (opt-in), with no Bun handlers", () => {
  const server = new WebSocketServer({ transport: "node", logLevel: "silent" });
  assert.equal(server.runtime, "node");
  assert.equal(server.websocket, undefined, "no Bun handlers");
});
