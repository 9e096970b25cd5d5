// Deno and Bun run the same dependency versions. Deno reads deno.json's imports and scopes, Bun (and
// Node) package.json and bun.lock: each dependency is pinned to one exact version in both manifests,
// and bun.lock resolves exactly that version; the packages below them pin their own dependencies.
// Only zod is a plain dependency: the Redis client and ws are scoped to the modules that load them,
// so a first `deno task start` downloads zod alone. docs/development.md says why.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, ROOT));

Deno.test("dependencies: one exact version per package in deno.json, package.json and bun.lock", async () => {
  const config = JSON.parse(await read("deno.json"));
  const imports = config.imports as Record<string, string>;
  const scoped = Object.values(config.scopes ?? {}) as Record<string, string>[];
  const manifest = JSON.parse(await read("package.json"));
  const fromDeno: Record<string, string> = {};
  for (const map of [imports, ...scoped]) {
    for (const [name, target] of Object.entries(map)) {
      if (!target.startsWith("npm:")) continue;
      const version = target.replace(/^npm:(@?[^@]+)@/, "");
      assert.equal(fromDeno[name] ?? version, version, `${name}: one version in deno.json`);
      fromDeno[name] = version;
    }
  }
  const deps: Record<string, string> = {
    ...manifest.dependencies,
    ...manifest.optionalDependencies,
  };
  assert.deepEqual(fromDeno, deps, "deno.json and package.json ask for the same versions");
  // Deno installs every package of the top-level imports (and package.json's dependencies) on
  // the first `deno task`: only zod belongs there.
  assert.deepEqual(Object.keys(imports).filter((k) => imports[k].startsWith("npm:")), ["zod"]);
  assert.deepEqual(Object.keys(manifest.dependencies), ["zod"]);
  for (const [name, version] of Object.entries(deps)) {
    assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned to one version, not a range`);
  }
  // bun.lock is JSON with trailing commas.
  const bun = JSON.parse((await read("bun.lock")).replace(/,(\s*[}\]])/g, "$1")) as {
    packages: Record<string, [string, string, { dependencies?: Record<string, string> }]>;
  };
  for (const [name, version] of Object.entries(deps)) {
    assert.equal(bun.packages[name]?.[0], `${name}@${version}`, `bun.lock resolves ${name}`);
  }
  // What ioredis depends on, it pins itself: the same on every runtime.
  for (const [dep, range] of Object.entries(bun.packages.ioredis[2].dependencies ?? {})) {
    assert.match(range, /^\d+\.\d+\.\d+$/, `ioredis pins ${dep}`);
  }
});

Deno.test("dependencies: the run-time ws specifier on Deno names deno.json's version", async () => {
  const config = JSON.parse(await read("deno.json"));
  const wanted = config.scopes["./src/transport/"].ws as string;
  const source = await read("src/transport/_node.ts");
  const [, version] = source.match(/\["npm:ws", "([^"]+)"\]\.join\("@"\)/) ?? [];
  assert.equal(`npm:ws@${version}`, wanted);
});
