import assert from "node:assert/strict";
import { DWORLD, joined, startServer } from "../_fixtures/helpers.ts";

Deno.test("smoke: join dworld and receive a broadcast", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using c = await joined(url, "dworld");
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "x", channel: "2" }),
    1,
  );
  const f = await c.nextOf("message");
  assert.equal(f.data.message, "x");
});
