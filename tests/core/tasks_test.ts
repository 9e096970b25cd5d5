// Every `deno task` entry answers --help with its usage and does nothing else: no build, no
// benchmark, no file written in the working tree.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

async function treeState(): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["status", "--porcelain", "--untracked-files=all", "--ignored"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("deno task <name> --help: every task prints its usage and changes nothing", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const tasks = Object.keys(config.tasks);
  assert.ok(tasks.includes("binary") && tasks.includes("bench") && tasks.includes("test"));
  const before = await treeState();
  for (const task of tasks) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["task", task, "--help"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const out = await child.output();
    clearTimeout(timer);
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, `deno task ${task} --help: exit ${out.code}\n${text}`);
    assert.match(text, /^Usage: /m, `deno task ${task} --help printed no usage:\n${text}`);
  }
  assert.equal(await treeState(), before, "a --help run changed the working tree");
});

async function runTestTask(
  path: string,
  log: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; lines: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "test", "--no-check", ...log, path],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  // The summary is the last line on stdout; deno's own "Task …" line goes to stderr.
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  return { code: out.code, lines: text.trimEnd().split("\n") };
}

Deno.test("deno task test: a passing run is a short summary ending in deno's line; a failing one shows the failure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dback-runner-" });
  try {
    const passing = `${dir}/pass_test.ts`;
    const failing = `${dir}/fail_test.ts`;
    await Deno.writeTextFile(
      passing,
      `for (let i = 0; i < 100; i++) Deno.test("noisy " + i, () => console.log("chatter " + i));\n`,
    );
    await Deno.writeTextFile(
      failing,
      `Deno.test("fails on purpose", () => { throw new Error("the expected failure"); });\n`,
    );
    // The runner's own runs write their logs in the temp dir: the repo's out/test.log belongs
    // to the run this test is part of.
    const repoLog = new URL("out/test.log", ROOT);
    const repoLogBefore = await Deno.stat(repoLog).then((s) => s.mtime?.getTime(), () => null);
    const ok = await runTestTask(passing, [`--log=${dir}/pass.log`]);
    assert.equal(ok.code, 0, ok.lines.join("\n"));
    assert.match(await Deno.readTextFile(`${dir}/pass.log`), /chatter 99/);
    assert.ok(ok.lines.length <= 60, `${ok.lines.length} lines:\n${ok.lines.join("\n")}`);
    assert.ok(!ok.lines.some((l) => l.includes("chatter")), "test output is kept in the log");
    assert.match(ok.lines.at(-1)!, /^ok \| 100 passed \| 0 failed/);

    const bad = await runTestTask(failing, [], { DBACK_TEST_LOG: `${dir}/fail.log` });
    assert.equal(bad.code, 1);
    assert.match(await Deno.readTextFile(`${dir}/fail.log`), /the expected failure/);
    assert.equal(
      await Deno.stat(repoLog).then((s) => s.mtime?.getTime(), () => null),
      repoLogBefore,
      "the runner's own runs left out/test.log alone",
    );
    assert.ok(bad.lines.some((l) => l.includes("the expected failure")), bad.lines.join("\n"));
    assert.ok(
      bad.lines.some((l) => /^FAILED \| 0 passed \| 1 failed/.test(l)),
      bad.lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
