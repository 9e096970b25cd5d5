// Origin checks: what a refused origin looks like in the log, and which origins are admitted.
import assert from "node:assert/strict";
import { rawUpgrade, startServer } from "../_fixtures/helpers.ts";

Deno.test("logs: a hostile Origin is escaped and cut; a refused origin is named", async () => {
  const { server, logs } = await startServer({ allowedOrigins: ["https://d-zone.example"] });
  try {
    const hostile = "https://x" + "a".repeat(5000) + "\u009b\u2028 INFO [c9] forged";
    const up = await rawUpgrade(server.port, { Origin: hostile });
    assert.equal(up.status, 403);
    up.conn.close();
    const line = logs.find((l) => l.message.includes("refused: origin"));
    assert.ok(line, "the refusal is logged");
    assert.ok(line.message.length < 300, `${line.message.length} characters`);
    assert.ok(!/[\u0080-\u009f\u2028\n]/.test(line.message), "no raw control characters");
  } finally {
    await server.stop();
  }
});

Deno.test("origins: the server's own page may connect when allowedOrigins is set; malformed origins are refused at construction", async () => {
  const { server } = await startServer({ allowedOrigins: ["https://d-zone.example"] });
  try {
    const own = await rawUpgrade(server.port, { Origin: `http://127.0.0.1:${server.port}` });
    assert.equal(own.status, 101);
    own.conn.close();
    const listed = await rawUpgrade(server.port, { Origin: "https://d-zone.example" });
    assert.equal(listed.status, 101);
    listed.conn.close();
  } finally {
    await server.stop();
  }
  for (const bad of ["https://d-zone.example/", "d-zone.example", "https://x.example/path"]) {
    await assert.rejects(
      () => startServer({ allowedOrigins: [bad] }),
      /allowedOrigins.*not an origin/,
      bad,
    );
  }
});
