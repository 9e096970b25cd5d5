// What docs/runtimes.md says of silent connections on Deno: a connection that never completes its
// request head is not closed by the server, because Deno.serve has no header timeout and calls no
// dback code before the head is complete. Checked here past every timeout dback has (all set
// short); if a Deno upgrade adds a header timeout, this fails and says which page to update.
import assert from "node:assert/strict";
import { startServer } from "../_fixtures/helpers.ts";

/** The first bytes the peer sends (`null` when it closes), or `"silent"` after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "silent"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quiet = new Promise<"silent">((r) => timer = setTimeout(() => r("silent"), ms));
  return Promise.race([p, quiet]).finally(() => clearTimeout(timer));
}

Deno.test("Deno: a connection with half a request head stays open past every dback timeout", async () => {
  const { server } = await startServer({
    openTimeoutMs: 100,
    joinTimeoutMs: 100,
    idleTimeoutSeconds: 1,
    callbackTimeoutMs: 100,
    shutdownTimeoutMs: 500,
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    const buf = new Uint8Array(4096);
    const reply = conn.read(buf).then((n) =>
      n === null ? null : new TextDecoder().decode(buf.subarray(0, n))
    );
    // Three seconds: 30 times the open and join timeouts, three idle timeouts.
    assert.equal(
      await within(reply, 3000),
      "silent",
      "the server closed or answered a half-sent request head: update docs/runtimes.md",
    );
    assert.equal(server.connectionCount, 0, "dback never saw it");
    // The same connection is alive: the end of the head gets the answer.
    await conn.write(new TextEncoder().encode("\r\n"));
    const answer = await within(reply, 10_000);
    assert.ok(typeof answer === "string" && answer.startsWith("HTTP/1.1 200"), `${answer}`);
  } finally {
    conn.close();
    await server.stop();
  }
});
