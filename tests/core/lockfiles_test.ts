// Deno and Bun run the same dependency versions: every npm package bun.lock resolves (dback's
// dependencies for Bun) is resolved to the same version in deno.lock, and both manifests ask
// for the same ranges. docs/development.md says why both lockfiles are committed.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, ROOT));

Deno.test("lockfiles: Deno and Bun resolve the same version of every dependency", async () => {
  // bun.lock is JSON with trailing commas.
  const bun = JSON.parse((await read("bun.lock")).replace(/,(\s*[}\]])/g, "$1")) as {
    packages: Record<string, [string, ...unknown[]]>;
  };
  const deno = JSON.parse(await read("deno.lock")) as { npm: Record<string, unknown> };
  const inDeno = new Set(Object.keys(deno.npm).map((k) => k.replace(/_.*$/, "")));
  const inBun = Object.values(bun.packages).map((p) => p[0]);
  assert.ok(inBun.some((p) => p.startsWith("zod@")), "bun.lock resolves zod");
  const missing = inBun.filter((p) => !inDeno.has(p));
  assert.deepEqual(missing, [], "resolved by Bun at a version deno.lock does not have");
});

Deno.test("lockfiles: deno.json and package.json ask for the same ranges", async () => {
  const imports = JSON.parse(await read("deno.json")).imports as Record<string, string>;
  const deps = JSON.parse(await read("package.json")).dependencies as Record<string, string>;
  const fromDeno = Object.fromEntries(
    Object.entries(imports)
      .filter(([, v]) => v.startsWith("npm:"))
      .map(([k, v]) => [k, v.replace(/^npm:(@?[^@]+)@/, "")]),
  );
  assert.deepEqual(fromDeno, deps);
});
