// What the benchmarks that compare checkouts of this repository (join_cpu.ts, jit_trace.ts) share:
// their common flags and how a checkout is named in a results file.
import { ROOT } from "./_paths.ts";
import { machineInfo } from "./_procfs.ts";
import { output, runtimeVersions } from "./_targets.ts";

/** `--tree DIR` (repeatable; default: this checkout), `--clients`, `--reps`, `--users`, `--out`. */
export const CHECKOUT_OPTIONS = {
  tree: { type: "string", multiple: true, default: [] as string[] },
  clients: { type: "string", default: "1000" },
  reps: { type: "string", default: "3" },
  users: { type: "string", default: "100" },
  out: { type: "string" },
} as const;

/** The checkouts named by `--tree`, or this one. */
export function checkouts(trees: string[]): string[] {
  return trees.length > 0 ? trees : [ROOT];
}

/** A checkout's name in a results file: its last path segment (a commit, say), never a path of the machine. */
export function treeLabel(tree: string): string {
  return tree === ROOT ? "this tree" : tree.split("/").filter(Boolean).at(-1) ?? tree;
}

/**
 * Write a results file: the date, this checkout's commit and the machine (with the runtime's
 * version), then `body` (method, options, results).
 */
export function writeResults(
  out: string,
  runtime: "bun" | "node" | "deno",
  body: Record<string, unknown>,
  bun = "bun",
): void {
  const record = {
    date: new Date().toISOString(),
    commit: output("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]),
    machine: machineInfo(runtimeVersions(runtime, bun), `deno ${Deno.version.deno}`),
    ...body,
  };
  Deno.writeTextFileSync(out, JSON.stringify(record, null, 2) + "\n");
}
