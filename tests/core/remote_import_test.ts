// dback imported from a registry (JSR), where deno.json's import map and scopes do not apply: a
// copy of the published files is served over http on loopback, its literal bare imports rewritten
// to full ones the way `deno publish` rewrites them, and only the run-time specifiers left as they
// are. From there, on Deno with an empty module cache: a start reaches only zod on npm, `--redis`
// loads the Redis client and publishes through Redis, and `transport: "node"` loads ws and serves a viewer.
import assert from "node:assert/strict";
import { RedisServer } from "../_fixtures/_redis.ts";

const ROOT = new URL("../../", import.meta.url);

/** Which full specifier a bare one in `file` (relative to the root) becomes, per deno.json. */
function unfurler(config: {
  imports: Record<string, string>;
  scopes?: Record<string, Record<string, string>>;
}): (file: string, bare: string) => string | undefined {
  return (file, bare) => {
    for (const [scope, map] of Object.entries(config.scopes ?? {})) {
      if (`./${file}`.startsWith(scope) && map[bare]) return map[bare];
    }
    return config.imports[bare];
  };
}

async function copyPublished(dir: string): Promise<void> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const unfurl = unfurler(config);
  const walk = async (rel: string): Promise<void> => {
    const info = await Deno.stat(new URL(rel, ROOT));
    if (info.isDirectory) {
      await Deno.mkdir(`${dir}/${rel}`, { recursive: true });
      for await (const e of Deno.readDir(new URL(rel, ROOT))) await walk(`${rel}/${e.name}`);
      return;
    }
    if (!rel.endsWith(".ts")) return;
    const text = await Deno.readTextFile(new URL(rel, ROOT));
    // Literal specifiers only (static imports, `import type`, `import("…")` with a string): what a
    // publish can see. Relative ones stay relative.
    const out = text.replace(
      /((?:from|import)\s*\(?\s*)"([^".\/][^"]*)"/g,
      (all, head: string, spec: string) => {
        if (spec.includes(":")) return all;
        const full = unfurl(rel, spec);
        return full ? `${head}"${full}"` : all;
      },
    );
    await Deno.writeTextFile(`${dir}/${rel}`, out);
  };
  for (const rel of ["mod.ts", "src", "examples"]) await walk(rel);
}

async function withPublished(
  fn: (base: string, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dback-remote-" });
  const files = `${dir}/files`;
  await Deno.mkdir(files);
  await copyPublished(files);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("no", { status: 400 });
    try {
      return new Response(await Deno.readFile(`${files}${path}`), {
        headers: { "content-type": "application/typescript" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  // An empty module cache, but this machine's npm cache: the tests talk to loopback only, and
  // a dead proxy makes any other fetch fail loudly instead of going out.
  const denoDir = `${dir}/deno_dir`;
  await Deno.mkdir(denoDir);
  const npmCache = JSON.parse(
    new TextDecoder().decode(
      (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
        .output()).stdout,
    ),
  ).npmCache as string;
  await Deno.symlink(npmCache, `${denoDir}/npm`);
  const env = {
    DENO_DIR: denoDir,
    HTTPS_PROXY: "http://127.0.0.1:9",
    HTTP_PROXY: "http://127.0.0.1:9",
    NO_PROXY: "127.0.0.1,localhost",
    NO_COLOR: "1",
  };
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, env);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Run a Deno program until `done(output)` says so; its whole output. */
async function runUntil(
  args: string[],
  env: Record<string, string>,
  done: (out: string) => boolean | Promise<boolean>,
): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of s) out += decoder.decode(chunk, { stream: true });
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  const status = child.status;
  let exited = false;
  status.then(() => exited = true);
  try {
    // The outcome ends the wait; the cap only keeps a hung child from hanging the suite.
    for (let i = 0; i < 1200 && !exited; i++) {
      if (await done(out)) return out;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (exited) {
      await reading;
      if (await done(out)) return out;
    }
    throw new Error(`not done (exited: ${exited}):\n${out}`);
  } finally {
    if (!exited) child.kill("SIGKILL");
    await status;
    await reading;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("from a registry: a start reaches only zod; --redis reaches Redis; transport node serves a viewer", async () => {
  await withPublished(async (base, env) => {
    // What a first start fetches: the code graph reaches zod and no other npm package.
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", `${base}/examples/main.ts`],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(info.code, 0, new TextDecoder().decode(info.stderr));
    type Dep = { code?: { specifier: string } };
    const graph = JSON.parse(new TextDecoder().decode(info.stdout)) as {
      roots: string[];
      modules: Array<{ specifier: string; dependencies?: Dep[] }>;
      redirects: Record<string, string>;
    };
    // The code graph only (not types): what `deno run` fetches before it starts.
    const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
    const npmSet = new Set<string>();
    const seen = new Set<string>();
    const todo = [...graph.roots];
    while (todo.length > 0) {
      const spec = todo.pop()!;
      const resolved = graph.redirects[spec] ?? spec;
      if (seen.has(resolved)) continue;
      seen.add(resolved);
      if (resolved.startsWith("npm:")) {
        npmSet.add(resolved.replace(/^npm:\/?/, "").replace(/@[^@/]*$/, ""));
        continue;
      }
      for (const dep of bySpecifier.get(resolved)?.dependencies ?? []) {
        if (dep.code) todo.push(dep.code.specifier);
      }
    }
    assert.ok(seen.has(`${base}/src/cli.ts`), "the walk went through the remote copy");
    const npm = [...npmSet].sort();
    assert.deepEqual(npm, ["zod"], "a start from the registry fetches only zod from npm");

    // --redis: the Redis entry and its client load from the remote copy, and the instance leads.
    await using redis = await RedisServer.start();
    const port = freePort();
    let status = "";
    const out = await runUntil(
      ["run", "-A", `${base}/examples/main.ts`, "--port", String(port), "--redis", redis.url],
      env,
      async (o) => {
        if (/error/i.test(o)) throw new Error(o);
        try {
          status = await (await fetch(`http://127.0.0.1:${port}/api/status`)).text();
        } catch {
          return false;
        }
        return /"cluster":"leader"/.test(status);
      },
    );
    assert.match(out, /cluster: redis up at redis:\/\/127\.0\.0\.1/);
    assert.match(status, /"cluster":"leader"/, out);

    // transport: "node" from a user's program importing the remote mod.ts.
    const dir = await Deno.makeTempDir({ prefix: "dback-user-" });
    try {
      await Deno.writeTextFile(
        `${dir}/app.ts`,
        `import { WebSocketServer } from "${base}/mod.ts";
const server = new WebSocketServer({
  port: 0,
  hostname: "127.0.0.1",
  transport: "node",
  logLevel: "silent",
});
await server.start();
const ws = new WebSocket(server.url.replace("http", "ws"));
const first = await new Promise<string>((ok, fail) => {
  ws.onmessage = (e) => ok(String(e.data));
  ws.onerror = () => fail(new Error("websocket error"));
});
ws.close();
console.log("transport " + server.runtime + " first frame " + JSON.parse(first).type);
await server.stop();
`,
      );
      const user = await runUntil(
        ["run", "-A", "--no-config", `${dir}/app.ts`],
        env,
        (o) => {
          if (/error/i.test(o)) throw new Error(o);
          return /first frame/.test(o);
        },
      );
      assert.match(user, /transport node first frame \w+/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
