// The start-up warm-up joins real clients over a private loopback listener of the server's own
// transport, on every runtime that asks for it (all but Bun by default; asked explicitly, Bun
// too); the process then ends on its own (nothing of it stays open). Where Deno may not use
// loopback without asking, that part is skipped without a prompt and the in-memory part stands.
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

Deno.test("by default, 200 loopback joins on Deno and Node, none on Bun", async (t) => {
  await everyRuntimeAtOnce(t, (r) => r, async (runtime) => {
    const c = await runtimeCommand(runtime, CHILD, [
      runtime === "deno-node" ? "node" : "-",
      "default",
    ]);
    const out = await run(c.cmd, c.args);
    // Bun measured worse with them (frames dearer afterwards), so its transport asks for none.
    assert.deepEqual(out.first, { inMemory: 40, loopback: runtime === "bun" ? 0 : 200 });
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
  // The runtime's client replaced by one that never connects: every lane waits until the deadline.
  const out = await run(Deno.execPath(), ["run", "-A", CHILD, "-", "stuck"]);
  assert.deepEqual(out, {
    allowed: true,
    first: { inMemory: 40, loopback: 0 },
    again: { inMemory: 0, loopback: 0 },
  });
});
