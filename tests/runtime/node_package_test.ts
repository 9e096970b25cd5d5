// dback installed as a package in a Node project (`npx jsr add @dzone/dback`). Node strips types
// only outside node_modules, so a package of .ts files cannot run there; JSR's npm layer ships
// each module reachable from the exports as .js (types erased, ".ts" specifiers rewritten to
// ".js"), keeps the .ts beside it and every other file as it is, and writes a package.json whose
// exports point at the .js. This builds that layout from the published files (offline: the
// registry is not reachable from tests), installs it under node_modules/@dzone/dback with zod and
// ws beside it, and runs it with Node.
import assert from "node:assert/strict";
import { ensureNode, ROOT, whileListening } from "../_fixtures/runtimes.ts";

// Erases the types of [from, to] pairs read from stdin: the transpiler Node itself uses.
const STRIP = `import { stripTypeScriptTypes } from "node:module";
import fs from "node:fs";
for (const [from, to] of JSON.parse(fs.readFileSync(0, "utf8"))) {
  fs.writeFileSync(to, stripTypeScriptTypes(fs.readFileSync(from, "utf8"), { mode: "strip" }));
}`;

// Literal relative .ts specifiers: static imports and exports, and `import("…")` with a string.
const RELATIVE = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"'\n]+?)\.ts\2/g;

async function run(node: string, args: string[], cwd: string, stdin?: string) {
  const child = new Deno.Command(node, {
    args,
    cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

async function copyTree(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  await Deno.mkdir(info.isDirectory ? to : to.replace(/\/[^/]*$/, ""), { recursive: true });
  if (!info.isDirectory) return await Deno.copyFile(from, to);
  for await (const e of Deno.readDir(from)) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
}

/** The package as JSR's npm layer would ship it, in `dir`. */
async function jsrNpmPackage(node: string, dir: string): Promise<void> {
  const deno = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const p of deno.publish.include as string[]) {
    const rel = p.replace(/\/$/, "");
    await copyTree(`${ROOT}${rel}`, `${dir}/${rel}`);
  }
  // The module graph from the exports; a computed specifier is not in it (as for JSR).
  const graph = new Set<string>();
  const visit = async (rel: string) => {
    if (graph.has(rel)) return;
    graph.add(rel);
    const code = await Deno.readTextFile(`${ROOT}${rel}`);
    for (const m of code.matchAll(RELATIVE)) {
      const next = new URL(`${m[3]}.ts`, `file:///${rel}`).pathname.slice(1);
      // Doc comments may name files in examples; only existing ones count.
      if (await Deno.stat(`${ROOT}${next}`).then(() => true, () => false)) await visit(next);
    }
  };
  for (const e of Object.values(deno.exports) as string[]) await visit(e.replace(/^\.\//, ""));
  const pairs = [...graph].map((rel) => [`${dir}/${rel}`, `${dir}/${rel.replace(/\.ts$/, ".js")}`]);
  const strip = await run(
    node,
    ["--no-warnings", "--input-type=module", "-e", STRIP],
    dir,
    JSON.stringify(pairs),
  );
  assert.equal(strip.code, 0, strip.stderr);
  for (const [, js] of pairs) {
    const text = await Deno.readTextFile(js);
    await Deno.writeTextFile(js, text.replace(RELATIVE, (_m, a, q, s) => `${a}${q}${s}.js${q}`));
  }
  const exports = Object.fromEntries(
    Object.entries(deno.exports as Record<string, string>).map((
      [k, v],
    ) => [k, v.replace(/\.ts$/, ".js")]),
  );
  await Deno.writeTextFile(
    `${dir}/package.json`,
    JSON.stringify({ name: "@jsr/dzone__dback", version: deno.version, type: "module", exports }),
  );
}

/** A Node project with dback under node_modules/@dzone/dback (built by `make`), zod and ws beside it. */
async function nodeProject(make: (dir: string) => Promise<void>): Promise<string> {
  const project = await Deno.makeTempDir({ prefix: "dback-node-project-" });
  await Deno.writeTextFile(`${project}/package.json`, '{ "type": "module" }');
  await make(`${project}/node_modules/@dzone/dback`);
  const redis = [
    "ioredis",
    "@ioredis",
    "debug",
    "denque",
    "ms",
    "redis-errors",
    "standard-as-callback",
  ];
  for (const dep of ["zod", "ws", ...redis]) {
    await copyTree(`${ROOT}node_modules/${dep}`, `${project}/node_modules/${dep}`);
  }
  return project;
}

const LIBRARY = `import { WebSocketServer } from "@dzone/dback";
const server = new WebSocketServer({ port: 0, hostname: "127.0.0.1", logLevel: "warn" });
await server.start();
const ws = new WebSocket("ws://127.0.0.1:" + server.port);
const first = await new Promise((r) => ws.onmessage = (e) => r(JSON.parse(e.data)));
ws.close();
await server.stop();
console.log(first.type, Object.keys(first.data).join(","));`;

// The one way to run the command from an installed package: a main file of the project's own.
const MAIN = `import process from "node:process";
import { main } from "@dzone/dback/cli";
process.exit(await main(process.argv.slice(2)));`;

Deno.test("node package: .ts files under node_modules do not run (Node strips types only outside it)", async () => {
  const node = await ensureNode();
  const project = await nodeProject(async (dir) => {
    for (const rel of ["mod.ts", "src"]) await copyTree(`${ROOT}${rel}`, `${dir}/${rel}`);
    await Deno.writeTextFile(
      `${dir}/package.json`,
      JSON.stringify({ name: "@dzone/dback", type: "module", exports: { ".": "./mod.ts" } }),
    );
  });
  try {
    await Deno.writeTextFile(`${project}/lib.mjs`, LIBRARY);
    const r = await run(node, ["lib.mjs"], project);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING/);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});

Deno.test("node package: as JSR ships it to npm, the library serves a viewer and the command line runs from a main file", async () => {
  const node = await ensureNode();
  const project = await nodeProject((dir) => jsrNpmPackage(node, dir));
  try {
    await Deno.writeTextFile(`${project}/lib.mjs`, LIBRARY);
    const lib = await run(node, ["lib.mjs"], project);
    assert.equal(lib.code, 0, lib.stderr);
    assert.equal(lib.stdout.trim(), `server-list ${mockServerIds()}`);

    await Deno.writeTextFile(`${project}/main.mjs`, MAIN);
    const plain = await serveOnce(node, project, [], async (port) => {
      // The page comes from the package's public/ folder, found next to the .js modules.
      const page = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
    });
    assert.equal(plain.code, 0, plain.out);
    assert.match(plain.out, /stopped/);

    // --redis loads the ./redis entry through a computed specifier: it must find the .js module
    // (and ioredis beside the package). Redis is unreachable here; the instance serves anyway.
    const redis = await serveOnce(
      node,
      project,
      ["--redis", "redis://127.0.0.1:1"],
      async (port) => {
        assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      },
    );
    assert.equal(redis.code, 0, redis.out);
    assert.match(redis.out, /cluster: redis at redis:\/\/127\.0\.0\.1:1 unreachable/);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});

/** Run `main.mjs` with `args` until it listens, call `check(port)`, then SIGTERM it. */
function serveOnce(
  node: string,
  cwd: string,
  args: string[],
  check: (port: number) => Promise<void>,
): Promise<{ code: number; out: string }> {
  return whileListening(
    node,
    ["main.mjs", "--port", "0", "--host", "127.0.0.1", ...args],
    cwd,
    check,
  );
}

/** The mock world's server ids, as the server list keys them. */
function mockServerIds(): string {
  return ["232769614004748288", "482241773318701056", "123456789012345678", "987654321098765432"]
    .join(",");
}
