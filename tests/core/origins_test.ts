// Origin checks: what a refused origin looks like in the log, and which origins are admitted.
import assert from "node:assert/strict";
import { rawUpgrade, startServer } from "../_fixtures/helpers.ts";

Deno.test("logs: a hostile Origin is escaped and cut to 100 characters; a refused origin is named", async () => {
  const { server, logs } = await startServer({ allowedOrigins: ["https://d-zone.example"] });
  try {
    const long = "https://x" + "a".repeat(5000) + "\u009b\u2028 INFO [c9] forged";
    const short = "https://y\u009b\u2028 INFO [c9] forged";
    for (const hostile of [long, short]) {
      const up = await rawUpgrade(server.port, { Origin: hostile });
      assert.equal(up.status, 403);
      up.conn.close();
    }
    const lines = logs.filter((l) => l.message.includes("refused: origin"));
    assert.equal(lines.length, 2, "each refusal is logged");
    // The origin is logged as a JSON string: parse it back to see exactly what was kept.
    const logged = lines.map((l) => {
      assert.ok(!/[\u0080-\u009f\u2028\n]/.test(l.message), "no raw control characters");
      const quoted = l.message.match(/\(origin (".*")\)/)?.[1];
      assert.ok(quoted, l.message);
      return JSON.parse(quoted) as string;
    });
    assert.equal(logged[0], long.slice(0, 100) + "…", "cut to its first 100 characters");
    // Header values are bytes: the server reads the UTF-8 of `short` as Latin-1 characters.
    const asHeader = String.fromCharCode(...new TextEncoder().encode(short));
    assert.equal(logged[1], asHeader, "a short origin is kept whole, escaped");
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

Deno.test("logs: the connected line names the origin with no origin list configured; warn writes none", async () => {
  for (const logLevel of ["info", "warn"] as const) {
    const { server, logs } = await startServer({ logLevel });
    try {
      const up = await rawUpgrade(server.port, { Origin: "https://page.example" });
      assert.equal(up.status, 101);
      up.conn.close();
      const lines = logs.filter((l) => l.message.startsWith("connected from"));
      if (logLevel === "warn") assert.equal(lines.length, 0);
      else assert.match(lines[0]?.message ?? "", /\(origin "https:\/\/page\.example"\)$/);
    } finally {
      await server.stop();
    }
  }
});
