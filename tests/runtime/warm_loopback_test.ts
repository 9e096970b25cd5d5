// The start-up warm-up joins real clients over a private loopback listener of a private copy of
// the server (its own transport, its own settings), on every runtime; the process then ends on
// its own (nothing of it stays open). Each client comes from a loopback address of its own, so a
// copy of a strict server (origins checked, 2 connections and 1 join a second per address) lets
// them all in. Where Deno may not use loopback without asking, that part is skipped without a
// prompt and stand-ins join in memory instead.
import assert from "node:assert/strict";
import { everyRuntimeAtOnce, outputWithin, ROOT, runtimeCommand } from "../_fixtures/runtimes.ts";

const CHILD = `${ROOT}tests/_fixtures/warm_child.ts`;

async function run(
  cmd: string,
  args: string[],
): Promise<{ allowed: boolean; first: unknown; again: unknown }> {
  // A warm-up that never gives up would hang the child: it is killed and fails here instead.
  const out = await outputWithin(cmd, args, 30_000);
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(out.success, `exit ${out.code}: ${text}\n${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.split("\n").at(-1)!);
}

Deno.test("the warm-up joins over loopback on every runtime, once per process", async (t) => {
  await everyRuntimeAtOnce(t, (r) => r, async (runtime) => {
    const c = await runtimeCommand(runtime, CHILD, runtime === "deno-node" ? ["node"] : []);
    assert.deepEqual(await run(c.cmd, c.args), {
      allowed: true,
      first: { inMemory: 40, loopback: 30 },
      again: { inMemory: 0, loopback: 0 },
    });
  });
});

Deno.test("a copy of a strict server lets every warm-up client in, on every runtime", async (t) => {
  await everyRuntimeAtOnce(t, (r) => r, async (runtime) => {
    const c = await runtimeCommand(runtime, CHILD, [
      runtime === "deno-node" ? "node" : "-",
      "strict",
    ]);
    assert.deepEqual((await run(c.cmd, c.args)).first, { inMemory: 40, loopback: 30 });
  });
});

Deno.test("by default, 200 loopback joins on Deno and Node, 500 on Bun", async (t) => {
  await everyRuntimeAtOnce(t, (r) => r, async (runtime) => {
    const c = await runtimeCommand(runtime, CHILD, [
      runtime === "deno-node" ? "node" : "-",
      "default",
    ]);
    const out = await run(c.cmd, c.args);
    // JavaScriptCore compiles its optimised code later than V8: Bun asks for more.
    assert.deepEqual(out.first, { inMemory: 40, loopback: runtime === "bun" ? 500 : 200 });
  });
});

Deno.test("Deno without network permission for loopback: no loopback part, no prompt", async () => {
  const args = ["run", "--allow-read", "--allow-env", "--allow-net=0.0.0.0:3000", CHILD];
  assert.deepEqual(await run(Deno.execPath(), args), {
    // Asked without prompting (a terminal would otherwise be asked for the port).
    allowed: false,
    first: { inMemory: 40, loopback: 0 },
    again: { inMemory: 0, loopback: 0 },
  });
});

Deno.test("a loopback that accepts but never answers: the warm-up gives up and returns", async () => {
  // node:net replaced by sockets that never connect: every lane waits until the deadline.
  const out = await run(Deno.execPath(), ["run", "-A", CHILD, "-", "stuck"]);
  assert.deepEqual(out, {
    allowed: true,
    first: { inMemory: 40, loopback: 0 },
    again: { inMemory: 0, loopback: 0 },
  });
});
