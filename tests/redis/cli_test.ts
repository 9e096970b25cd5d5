// The --redis flags, and the promise that without --redis the Redis client
// is never loaded (a single instance stays zod-only).
import assert from "node:assert/strict";
import { parseCli, USAGE } from "../../src/cli.ts";
import { Instance } from "../_fixtures/_redis.ts";

Deno.test("--redis flags parse, and their mistakes are named", () => {
  const ok = parseCli([
    "--redis",
    "redis://127.0.0.1:6379",
    "--redis-namespace",
    "x",
    "--redis-lease-ms",
    "900",
  ]);
  if (ok.kind !== "run" || ok.redis?.url !== "redis://127.0.0.1:6379" || ok.redis.leaseMs !== 900) {
    throw new Error(JSON.stringify(ok));
  }
  const bad = [
    [["--redis", "localhost:6379"], "--redis must be"],
    [["--redis-namespace", "x"], "need --redis"],
    [["--redis", "redis://h:1", "--redis-lease-ms", "10"], "--redis-lease-ms must be at least"],
    [["--redis", "redis://h:1", "--redis-namespace", "a b"], "--redis-namespace must be"],
  ] as const;
  for (const [args, text] of bad) {
    const r = parseCli([...args]);
    if (r.kind !== "error" || !r.message.includes(text)) {
      throw new Error(`${args}: ${JSON.stringify(r)}`);
    }
  }
  if (!USAGE.includes("--redis <url>")) throw new Error("--help does not list --redis");
});

Deno.test("without --redis the Redis client module is never loaded; with it, it is", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dback-noredis-" });
  try {
    const marker = `${dir}/loaded`;
    // A stand-in for the client that leaves a mark when it is imported.
    await Deno.writeTextFile(
      `${dir}/fake_ioredis.ts`,
      `Deno.writeTextFileSync(${JSON.stringify(marker)}, "loaded");\nexport class Redis {}\n`,
    );
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ imports: { zod: "npm:zod@^4", ioredis: `./fake_ioredis.ts` } }),
    );
    const config = ["--config", `${dir}/deno.json`, "--no-lock"];
    const single = await Instance.start([], config);
    await single.stop();
    const loaded = await Deno.stat(marker).then(() => true, () => false);
    if (loaded) throw new Error("a single instance loaded the Redis client");
    // The same check sees the load when --redis is given (so it can fail).
    const p = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...config,
        new URL("../../examples/main.ts", import.meta.url).pathname,
        "--port",
        "0",
        "--redis",
        "redis://127.0.0.1:1",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 20_000;
    while (!(await Deno.stat(marker).then(() => true, () => false)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      p.kill("SIGKILL");
    } catch { /* exited */ }
    await p.status;
    if (!(await Deno.stat(marker).then(() => true, () => false))) {
      throw new Error("--redis did not load the client: the check is blind");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The npm packages a program's code (not its types) reaches: what `deno run` downloads. */
async function npmCodeDeps(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: new URL("../../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  type Dep = { specifier: string; code?: { specifier: string } };
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: Array<{ specifier: string; dependencies?: Dep[] }>;
    redirects: Record<string, string>;
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const npm = new Set<string>();
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length > 0) {
    const spec = todo.pop()!;
    const resolved = info.redirects[spec] ?? spec;
    if (seen.has(resolved)) continue;
    seen.add(resolved);
    if (resolved.startsWith("npm:")) {
      npm.add(resolved.replace(/^npm:\/?/, "").replace(/@[^@/]*$/, ""));
      continue;
    }
    for (const dep of bySpecifier.get(resolved)?.dependencies ?? []) {
      if (dep.code) todo.push(dep.code.specifier);
    }
  }
  return [...npm].sort();
}

Deno.test("without --redis nothing fetches the Redis client: the commands' code reaches only zod on npm", async () => {
  for (const entry of ["examples/main.ts", "examples/discord.ts"]) {
    assert.deepEqual(await npmCodeDeps(entry), ["zod"], entry);
  }
  // The ./redis entry itself does reach it (so the walk above would see it).
  assert.deepEqual(await npmCodeDeps("src/redis/mod.ts"), ["ioredis", "zod"]);
});
