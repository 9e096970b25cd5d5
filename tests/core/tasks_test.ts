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
