// The `jit_trace.ts` results as the Markdown table bench/README.md embeds between
// `<!-- jit-trace: <file> -->` and `<!-- /jit-trace -->` markers (bench/_doc_tables.ts), checked
// against the file it names like every other table (print it with
// `deno run -A bench/_jit_trace_table.ts FILE`).

/** A `jit_trace.ts` results file (the parts the table shows). */
export interface JitTraceResults {
  date: string;
  runtime: string;
  results: Array<{
    tree: string;
    phases: Array<
      { phase: string; compiles: number; compileMs: number; exits: number; top: [string, number][] }
    >;
  }>;
}

const ENGINE: Record<string, string> = {
  bun: "JavaScriptCore (Bun)",
  deno: "V8 (Deno)",
  node: "V8 (Node)",
};

/**
 * One row per checkout: per phase, optimised compiles (engine-reported ms) and exits from
 * optimised code; then, per checkout, where the first real joins' exits were.
 */
export function jitTraceTable(r: JitTraceResults): string {
  const phases = r.results[0]?.phases.map((p) => p.phase) ?? [];
  const rows = r.results.map((x) =>
    `| ${x.tree} | ${
      x.phases.map((p) => `${p.compiles} (${p.compileMs.toFixed(1)} ms), ${p.exits}`).join(" | ")
    } |`
  );
  const tops = r.results.map((x) => {
    const first = x.phases[1];
    const list = first?.top.map(([fn, k]) => `${fn} ×${k}`).join(", ");
    return `- ${x.tree}, ${first?.phase ?? "—"}: ${list || "none"}`;
  });
  return [
    `| ${r.date.slice(0, 10)}, ${ENGINE[r.runtime] ?? r.runtime}: code | ${
      phases.map((p) => `${p}: optimised compiles (ms), exits`).join(" | ")
    } |`,
    `| --- |${phases.map(() => " ---: |").join("")}`,
    ...rows,
    "",
    "Where the exits of the first joins were (function, reason, how often; the five most):",
    "",
    ...tops,
  ].join("\n");
}

if (import.meta.main) {
  console.log(jitTraceTable(JSON.parse(Deno.readTextFileSync(Deno.args[0]))));
}
