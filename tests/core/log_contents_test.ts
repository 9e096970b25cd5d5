// "What is logged" (docs/operating.md): never message contents. A server at debug level delivers a
// chat line to a viewer and none of its log lines contains it.
import assert from "node:assert/strict";
import { DWORLD, joined, startServer } from "../_fixtures/helpers.ts";

Deno.test("logs: a broadcast chat line reaches the viewer and no log line, at debug", async () => {
  await using s = await startServer();
  await using viewer = await joined(s.url, "dworld");
  const secret = `chat-${crypto.randomUUID()}`;
  s.server.broadcastMessage({ server: DWORLD, uid: "1", message: secret, channel: "2" });
  const frame = await viewer.nextOf("message");
  assert.equal(frame.data.message, secret);
  assert.ok(s.logs.some((l) => l.message.includes("joined")), "the join was logged");
  assert.deepEqual(s.logs.filter((l) => l.message.includes(secret)), []);
});
