/**
 * `deno task test`: the static checks, then whatever the tests need on this machine (Bun from npm,
 * Debian packages when root: see `tools/_install.ts`), then every test and JSDoc example. On
 * success it prints a short summary; the full output is in `out/test.log` (or the file `--log=PATH`
 * or `DBACK_TEST_LOG` names), and on failure the failing tests' output is printed. The last line is `deno test`'s own summary
 * (`ok | N passed | M failed`), which CI reads.
 *
 * ```sh
 * deno task test                          # everything CI runs
 * deno task test --no-check tests/core/   # only some tests, no static checks
 * deno task test --verbose                # everything as it comes
 * ```
 *
 * @module
 */
import process from "node:process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runChecks } from "./check.ts";
import { ensureTool, type ToolName, TOOLS } from "./_install.ts";
import { capture, plain } from "./_quiet.ts";

const USAGE = `Usage: deno task test [--verbose] [--no-check] [--log=PATH] [path ...]

Runs the static checks (deno task check), installs what the tests need when it is missing (Bun
from npm; redis-server, nginx, chromium from Debian when root), then runs the tests and JSDoc
examples (default: mod.ts src/ tests/). Prints a summary; the full output goes to out/test.log.
  --no-check  skip the static checks
  --log=PATH  write the full output to PATH instead (or set DBACK_TEST_LOG)
  --verbose   print everything as it comes
  -h, --help  print this help`;

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}
const logFlag = args.find((a) => a.startsWith("--log="));
const flags = new Set(args.filter((a) => a.startsWith("-") && a !== logFlag));
for (const f of flags) {
  if (f !== "--verbose" && f !== "--no-check") {
    console.error(`error: unknown flag ${f}\n\n${USAGE}`);
    process.exit(2);
  }
}
const verbose = flags.has("--verbose");
const paths = args.filter((a) => !a.startsWith("-"));

if (!flags.has("--no-check") && !(await runChecks(verbose))) process.exit(1);

// Tools first, so a missing one is installed once, not raced by parallel fixtures.
for (const name of Object.keys(TOOLS) as ToolName[]) {
  try {
    if (await ensureTool(name) === "installed") console.log(`installed ${name}`);
  } catch (err) {
    console.log(`warning: ${(err as Error).message}; the tests that need it will fail`);
  }
}

const cmd = [
  "deno",
  "test",
  "-A",
  "--v8-flags=--expose-gc",
  ...(paths.length === 0 ? ["--doc", "mod.ts", "src/", "tests/"] : paths),
];
// A run of the runner itself (its own test) passes a log of its own, so it does not overwrite the
// log of the run that started it.
const logName = logFlag?.slice("--log=".length) || process.env.DBACK_TEST_LOG || "out/test.log";
const logPath = logName === "out/test.log"
  ? fileURLToPath(new URL("../out/test.log", import.meta.url))
  : logName;
if (!verbose) console.log(`running ${cmd.join(" ")} (full output: ${logName})`);
const result = await capture(cmd, verbose);
await mkdir(dirname(resolve(logPath)), { recursive: true });
await writeFile(logPath, plain(result.output));

const lines = plain(result.output).trimEnd().split("\n");
const summary = lines.findLast((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
if (!verbose) {
  if (!result.ok) {
    // deno test lists what failed after an " ERRORS " line; a crash has no such line.
    const at = lines.findIndex((l) => l.trim() === "ERRORS");
    console.log((at >= 0 ? lines.slice(at) : lines.slice(-200)).join("\n"));
  } else {
    const files = lines.filter((l) => /^running \d+ tests? from /.test(l)).length;
    console.log(`${files} test files and doc example sets`);
    if (summary) console.log(summary);
  }
}
process.exit(result.ok ? 0 : result.code || 1);
