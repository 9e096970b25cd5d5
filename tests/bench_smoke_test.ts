// The benchmark suite still works end to end: `bench/run.ts --smoke` starts
// dback and the raw Deno loop, joins a few clients through several load
// generator processes, publishes, and must report frames delivered by dback.
// It also tries dback on Bun: that row either delivers frames too or says why
// it is unavailable (no bun, no zod for Bun, or dback not yet running on Bun).
// Only Deno is needed, and nothing is asserted about speed, so a loaded
// machine cannot fail it.
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;

Deno.test("bench: smoke mode runs end to end and dback delivers frames", async () => {
  const out = await Deno.makeTempDir({ prefix: "dback-bench-smoke-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}bench/run.ts`, "--smoke", "--out", out],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const result = await child.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, `smoke run failed:\n${stdout}\n${stderr}`);

    const delivered = /^dback delivered frames: (\d+)$/m.exec(stdout);
    assert.ok(delivered, `no delivered-frames line in:\n${stdout}`);
    assert.ok(Number(delivered[1]) > 0, "dback delivered no frames");

    const report = JSON.parse(await Deno.readTextFile(`${out}/smoke.json`));
    const dback = report.rows.find((r: { impl: string }) => r.impl === "dback");
    assert.ok(dback?.main, `dback row missing: ${JSON.stringify(dback)}`);
    assert.equal(dback.main.join.failed, 0);
    assert.ok(dback.main.latency.frames > 0);
    assert.ok(dback.main.flood.frames > 0);
    assert.ok(dback.storm.join.ok > 0);

    const onBun = report.rows.find((r: { impl: string }) => r.impl === "dback-bun");
    assert.ok(onBun, "dback-bun row missing");
    if (onBun.unavailable === undefined) {
      assert.equal(onBun.error, undefined, `dback-bun failed: ${onBun.error}`);
      assert.ok(onBun.main.flood.frames > 0, "dback on Bun delivered no frames");
    } else {
      assert.match(onBun.unavailable, /\S/, "dback-bun unavailable without a reason");
      assert.match(stdout, /dback-bun @ 20 clients: unavailable: /);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
