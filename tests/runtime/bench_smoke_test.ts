// The benchmark suite still works end to end: `bench/run.ts --smoke` starts
// dback and the raw Deno loop, joins a few clients through several load
// generator processes, publishes, and must report frames delivered by dback.
// It also runs dback on Bun and on Node.js (installed first, as every Bun and Node
// test does): those rows must deliver frames too, so a crash of dback there fails
// the test instead of passing as "unavailable". Nothing is asserted about speed, so a loaded
// machine cannot fail it. The second test feeds made-up figures to the report
// and checks the Bun and Node target verdicts and the "not measured" reasons.
import assert from "node:assert/strict";
import { parseOptions } from "../../bench/_options.ts";
import type { Measured } from "../../bench/_session.ts";
import { render, type Row } from "../../bench/report.ts";
import type { MainResult } from "../../bench/scenarios/main.ts";
import { ensureBun, ensureNode, outputWithin } from "../_fixtures/runtimes.ts";

const root = new URL("../..", import.meta.url).pathname;

Deno.test("bench: smoke mode runs end to end and dback delivers frames, on Deno, Bun and Node", async () => {
  await ensureBun();
  await ensureNode();
  const out = await Deno.makeTempDir({ prefix: "dback-bench-smoke-" });
  try {
    const result = await outputWithin(
      Deno.execPath(),
      ["run", "-A", `${root}bench/run.ts`, "--smoke", "--out", out],
      120_000,
      root,
    );
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
    assert.equal(onBun.unavailable, undefined, `dback-bun unavailable: ${onBun.unavailable}`);
    assert.equal(onBun.error, undefined, `dback-bun failed: ${onBun.error}`);
    assert.equal(onBun.main.join.failed, 0);
    assert.ok(onBun.main.flood.frames > 0, "dback on Bun delivered no frames");

    const onNode = report.rows.find((r: { impl: string }) => r.impl === "dback-node");
    assert.ok(onNode, "dback-node row missing");
    assert.equal(onNode.unavailable, undefined, `dback-node unavailable: ${onNode.unavailable}`);
    assert.equal(onNode.error, undefined, `dback-node failed: ${onNode.error}`);
    assert.equal(onNode.main.join.failed, 0);
    assert.ok(onNode.main.flood.frames > 0, "dback on Node delivered no frames");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

/** A measured window with only the figures the Bun table reads; the rest NaN. */
function window(framesPerS: number, cpuPerFrameUs: number): Measured {
  const load = { serverPct: 1, genMaxPct: 1, boxPct: 1, genSaturated: false, boxSaturated: false };
  return {
    frames: 1,
    expected: 1,
    complete: true,
    wallS: 1,
    framesPerS,
    serverCpuS: NaN,
    cpuPerFrameUs,
    latency: { p50: NaN, p99: NaN, max: NaN },
    load,
    rssStartKiB: NaN,
    rssPeakKiB: NaN,
    rssEndKiB: NaN,
  };
}

function row(impl: string, cpuUs: number, kib: number, floodPerS: number): Row {
  const join = { ok: 1, failed: 0, wallMs: 1, joinsPerS: 1, p50: 1, p99: 1, max: 1, errors: {} };
  const cpu = window(NaN, cpuUs);
  const main: MainResult = {
    join,
    rssBeforeKiB: 0,
    rssAfterKiB: kib,
    rssPerConnKiB: kib,
    latency: cpu,
    cpu: [cpu],
    cpuPerFrameUs: cpuUs,
    cpuRate: 1,
    flood: window(floodPerS, cpuUs),
  };
  return { impl, n: 1000, main };
}

Deno.test("bench: the Bun table says which targets dback on Bun meets, with ratios", () => {
  const o = parseOptions(["--clients", "1000", "--servers", "dback,dback-bun,bun"]);
  const line = (rows: Row[]) =>
    render(o, rows).text.split("\n").find((l) => l.startsWith("dback-bun") && l.includes("cpu "));
  const met = line([
    row("dback", 9, 33, 100_000),
    row("dback-bun", 5.5, 5, 160_000),
    row("bun", 5, 4, 1e6),
  ]);
  assert.match(met ?? "", /1\.10×.*1\.60×\s+cpu met, mem met, flood met$/);
  const missed = line([
    row("dback", 9, 33, 100_000),
    row("dback-bun", 6, 7, 140_000),
    row("bun", 5, 4, 1e6),
  ]);
  assert.match(missed ?? "", /1\.20×.*cpu missed, mem missed, flood missed$/);

  const gone = render(o, [row("dback", 9, 33, 1), {
    impl: "dback-bun",
    n: 1000,
    unavailable: "no bun",
  }]);
  assert.match(gone.text, /^dback-bun\s+unavailable/m);
  assert.match(gone.md, /- dback-bun @ 1000 clients: unavailable: no bun/);
});

Deno.test("bench: the Node table says whether dback's Node transport is within 1.1x of bare ws", () => {
  const o = parseOptions(["--clients", "1000", "--servers", "dback-node,dback-deno-node,node-ws"]);
  const line = (impl: string, rows: Row[]) =>
    render(o, rows).text.split("\n").find((l) => l.startsWith(`${impl} `) && l.includes("cpu "));
  const rows = [
    row("dback-node", 10.5, 11, 1),
    row("dback-deno-node", 12, 30, 1),
    row("node-ws", 10, 10, 1),
  ];
  assert.match(line("dback-node", rows) ?? "", /1\.05×.*1\.10×.*cpu met, mem met$/);
  assert.match(line("dback-deno-node", rows) ?? "", /1\.20×.*3\.00×.*cpu missed, mem missed$/);
  const alone = render(o, [row("dback-node", 10, 10, 1)]).text;
  assert.match(alone, /^dback-node .*cpu \?, mem \?$/m, "no verdict without the bare peer");
});

Deno.test("bench: an unknown option is refused, not run with the defaults", async () => {
  assert.throws(() => parseOptions(["--help"]), /unknown option --help/);
  assert.throws(() => parseOptions(["--run", "3"]), /unknown option --run/);
  const o = parseOptions(["--runs=3", "--join-reps", "9", "--warmup", "0", "--quick"]);
  assert.deepEqual([o.runs, o.joinReps, o.warmupJoins], [3, 9, 0]);
  // The driver itself says so and exits 2 before it starts anything.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../bench/run.ts", import.meta.url).pathname, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /error: unknown option --help/);
});

Deno.test("bench: join_cpu.ts records the start, the joins and the CPU per frame of each server", async () => {
  const out = `${await Deno.makeTempDir({ prefix: "dback-join-cpu-" })}/r.json`;
  try {
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}bench/join_cpu.ts`,
        "--servers",
        "dback,raw-deno",
        "--clients",
        "50",
        "--reps",
        "1",
        "--rounds",
        "1",
        "--frame-windows",
        "2",
        "--out",
        out,
      ],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    const r = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual(r.results.map((x: { server: string }) => x.server), ["dback", "raw-deno"]);
    for (const x of r.results) {
      assert.ok(x.startMs > 0 && x.startCpuMs > 0, `${x.server}: start ${x.startMs} ms`);
      assert.ok(x.cold.total > 0 && x.warm.total > 0, `${x.server}: CPU per join`);
      // One counted window per start (the first is not counted), each a positive figure.
      assert.equal(x.framesUs.length, 1);
      assert.equal(x.framesUs[0].length, 1);
      assert.ok(x.frameUs > 0, `${x.server}: ${x.frameUs} µs per frame`);
    }
  } finally {
    await Deno.remove(out.slice(0, out.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("bench: jit_trace.ts cuts the engine's traces into phases, on Bun and on Deno", async (t) => {
  await ensureBun();
  for (const runtime of ["bun", "deno"]) {
    await t.step(runtime, async () => {
      const out = `${await Deno.makeTempDir({ prefix: "dback-jit-trace-" })}/r.json`;
      try {
        const result = await outputWithin(
          Deno.execPath(),
          [
            "run",
            "-A",
            `${root}bench/jit_trace.ts`,
            ...["--runtime", runtime, "--clients", "100", "--reps", "1", "--rounds", "1"],
            ...["--out", out],
          ],
          120_000,
          root,
        );
        assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
        const r = JSON.parse(await Deno.readTextFile(out));
        assert.equal(r.runtime, runtime);
        const [warm, first] = r.results[0].phases;
        assert.deepEqual(r.results[0].phases.map((p: { phase: string }) => p.phase), [
          "warm-up (to READY)",
          "first 100 joins",
        ]);
        // The warm-up exists to get the join path optimised before READY: the trace must show it.
        assert.ok(warm.compiles > 20 && warm.compileMs > 0, JSON.stringify(warm));
        assert.equal(typeof first.exits, "number");
        assert.ok(Array.isArray(first.top));
      } finally {
        await Deno.remove(out.slice(0, out.lastIndexOf("/")), { recursive: true });
      }
    });
  }
});
