/**
 * `deno task check`: formatting, lint, tables of contents, type checks (code and JSDoc examples),
 * doc lint and a publish dry run. Each step's output is kept to itself unless the step fails (or
 * `--verbose` is given), so a clean run is a few lines.
 *
 * ```sh
 * deno task check              # one line per step
 * deno task check --verbose    # everything the tools print
 * ```
 *
 * @module
 */
import process from "node:process";
import { capture, plain } from "./_quiet.ts";

const USAGE = `Usage: deno task check [--verbose]

Runs every static check CI runs, in order, and stops at the first that fails, printing its output:
formatting, lint, docs tables of contents, type check, JSDoc examples, doc lint, publish dry run.
  --verbose   print every step's output, also on success
  -h, --help  print this help`;

/** The steps, in order: a name and the command. */
export const CHECKS: Array<[string, string[]]> = [
  ["format", ["deno", "fmt", "--check"]],
  ["lint", ["deno", "lint"]],
  [
    "docs tables of contents and module list",
    ["deno", "run", "--allow-read=.", "--allow-run", "tools/toc.ts", "--check"],
  ],
  ["types", ["deno", "check", "mod.ts", "src/", "examples/", "tests/", "bench/", "tools/"]],
  ["JSDoc examples", ["deno", "check", "--doc", "mod.ts", "src/"]],
  [
    "doc lint",
    [
      "deno",
      "doc",
      "--lint",
      "mod.ts",
      "src/cli.ts",
      "src/discord/mod.ts",
      "src/redis/mod.ts",
    ],
  ],
  ["publish dry run", ["deno", "publish", "--dry-run", "--allow-dirty"]],
];

/** Run the checks; `true` when all passed. Prints one line per step, or the failing output. */
export async function runChecks(verbose: boolean): Promise<boolean> {
  for (const [name, cmd] of CHECKS) {
    const started = performance.now();
    const result = await capture(cmd, verbose);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    if (!result.ok) {
      if (!verbose) console.error(result.output.trimEnd());
      console.error(`check failed: ${name} (${cmd.join(" ")}, exit ${result.code})`);
      return false;
    }
    const warnings = plain(result.output).split("\n").filter((l) => /^warning\b/i.test(l)).length;
    console.log(`check ok: ${name} (${secs} s${warnings ? `, ${warnings} warnings` : ""})`);
  }
  return true;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    process.exit(0);
  }
  const unknown = args.find((a) => a !== "--verbose");
  if (unknown !== undefined) {
    console.error(`error: unknown argument ${unknown}\n\n${USAGE}`);
    process.exit(2);
  }
  process.exit(await runChecks(args.includes("--verbose")) ? 0 : 1);
}
