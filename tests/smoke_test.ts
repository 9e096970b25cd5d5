import assert from "node:assert/strict";
import { DWORLD, joined, startServer } from "./helpers.ts";

Deno.test("smoke: join dworld and receive a broadcast", async () => {
  const { server, url } = await startServer();
  const c = await joined(url, "dworld");
  assert.equal(
    server.broadcastMessage({ server: DWORLD, uid: "1", message: "x", channel: "2" }),
    1,
  );
  const f = await c.nextOf("message");
  assert.equal(f.data.message, "x");
  await c.close();
  await server.stop();
});
