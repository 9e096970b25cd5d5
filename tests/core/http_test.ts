// HTTP on the WebSocket's port: static files and their edge cases, /api/version, start/stop/restart.
import assert from "node:assert/strict";
import { VERSION, WebSocketServer } from "../../mod.ts";
import { assertNoTraversal, Client, joined, startServer } from "../_fixtures/helpers.ts";

/** A temporary static site; `await using` removes it even when an assertion fails. */
async function fixture(): Promise<{ root: string; dir: string } & AsyncDisposable> {
  const root = await Deno.makeTempDir({ prefix: "dback-static-" });
  const dir = `${root}/site`;
  await Deno.mkdir(`${dir}/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/index.html`, "<!doctype html><title>home</title>");
  await Deno.writeTextFile(`${dir}/sub/index.html`, "sub index");
  await Deno.writeTextFile(`${dir}/app.mjs`, "export {};");
  await Deno.writeTextFile(`${dir}/style.css`, "body{}");
  await Deno.writeTextFile(`${dir}/data.weird`, "???");
  await Deno.writeTextFile(`${dir}/a b.txt`, "spaced");
  await Deno.writeFile(`${dir}/big.wasm`, new Uint8Array(3 * 1024 * 1024).fill(7));
  await Deno.writeTextFile(`${root}/secret.txt`, "top secret");
  await Deno.symlink(`${root}/secret.txt`, `${dir}/link-out.txt`);
  await Deno.symlink(`${dir}/style.css`, `${dir}/link-in.css`);
  return { root, dir, [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }) };
}

Deno.test("static files: index, content types, HEAD, query strings, streaming a large file", async () => {
  await using fx = await fixture();
  await using s = await startServer({ staticDir: fx.dir });
  const { http } = s;
  const home = await fetch(`${http}/?x=1`);
  assert.equal(home.status, 200);
  assert.equal(home.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(await home.text(), "<!doctype html><title>home</title>");
  const types: Array<[string, string]> = [
    ["/app.mjs", "text/javascript; charset=utf-8"],
    ["/style.css", "text/css; charset=utf-8"],
    ["/big.wasm", "application/wasm"],
    ["/data.weird", "application/octet-stream"],
    ["/a%20b.txt", "text/plain; charset=utf-8"],
    ["/link-in.css", "text/css; charset=utf-8"],
  ];
  for (const [path, type] of types) {
    const r = await fetch(http + path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.get("content-type"), type, path);
    await r.body?.cancel();
  }
  const sub = await fetch(`${http}/sub`);
  assert.equal(await sub.text(), "sub index");
  const head = await fetch(`${http}/big.wasm`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(3 * 1024 * 1024));
  assert.equal((await head.arrayBuffer()).byteLength, 0);
  const big = new Uint8Array(await (await fetch(`${http}/big.wasm`)).arrayBuffer());
  assert.equal(big.byteLength, 3 * 1024 * 1024);
  assert.equal(big[big.length - 1], 7);
  const post = await fetch(`${http}/`, { method: "POST", body: "x" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("static files: 404 page, 403 for traversal (plain, encoded, backslash) and outward symlinks", async () => {
  await using fx = await fixture();
  await using s = await startServer({ staticDir: fx.dir });
  const { server, http } = s;
  const missing = await fetch(`${http}/nope.html`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(await missing.text(), /404/);
  await assertNoTraversal(server.port);
  const bad = await fetch(`${http}/%E0%A4%A`);
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  const nul = await fetch(`${http}/index.html%00.txt`);
  assert.equal(nul.status, 400);
  await nul.body?.cancel();
});

Deno.test("the default static directory serves the package's own page", async () => {
  await using s = await startServer();
  const { http } = s;
  const r = await fetch(`${http}/`);
  assert.equal(r.status, 200);
  assert.match(await r.text(), /dback/);
});

Deno.test("GET /api/version answers the version of deno.json", async () => {
  await using s = await startServer();
  const { http } = s;
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const r = await fetch(`${http}/api/version`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(await r.json(), { version: config.version });
  assert.equal(VERSION, config.version);
});

Deno.test("start/stop/restart: port 0, the bound port is readable, double start is an error, stop is idempotent", async () => {
  // Stopped (again) at the end of the scope whatever happens; stop() is idempotent.
  await using server = new WebSocketServer({ port: 0, hostname: "127.0.0.1", logLevel: "silent" });
  assert.equal(server.port, 0, "before start(): the port from the options");
  await server.start();
  const port = server.port;
  assert.ok(port > 0);
  await assert.rejects(server.start(), /already running/);
  await using c = await joined(`ws://127.0.0.1:${port}`, "dworld");
  await server.stop();
  const ev = await c.closed;
  assert.equal(ev.code, 1001);
  await server.stop(); // no-op
  assert.equal(server.running, false);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/api/version`));
  // Restart on the same port.
  {
    // This block closes c2 and stops `again` before the port is reused below.
    await using again = new WebSocketServer({ port, hostname: "127.0.0.1", logLevel: "silent" });
    await again.start();
    assert.equal(again.port, port);
    await using _c2 = await joined(`ws://127.0.0.1:${port}`, "docs");
  }
  await server.start();
  assert.ok(server.running);
});

Deno.test("starting on a busy port rejects with the OS error and leaves the server stopped", async () => {
  await using s = await startServer();
  const { server } = s;
  await using other = new WebSocketServer({
    port: server.port,
    hostname: "127.0.0.1",
    logLevel: "silent",
  });
  await assert.rejects(other.start(), /AddrInUse|address/i);
  assert.equal(other.running, false);
  await other.stop();
});

Deno.test("invalid options are a clear TypeError", () => {
  assert.throws(
    () => new WebSocketServer({ port: 70000 }),
    /Invalid WebSocketServer options: port/,
  );
  assert.throws(() => new WebSocketServer({ maxFrameBytes: -1 }), /maxFrameBytes/);
  assert.throws(
    () => new WebSocketServer({ highWaterBytes: 10, maxBufferedBytes: 5 }),
    /maxBufferedBytes must be at least highWaterBytes/,
  );
});

Deno.test("concurrent stop calls share one shutdown", async () => {
  await using s = await startServer();
  const { server, url } = s;
  await using c = await Client.open(url);
  await c.next();
  await Promise.all([server.stop(), server.stop()]);
  assert.equal((await c.closed).code, 1001);
});

Deno.test("a remote static base (the package loaded from JSR) is fetched, and cannot be climbed out of", async () => {
  const asked: string[] = [];
  await using cdn = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    asked.push(path);
    if (path === "/pkg/public/index.html") return new Response("<h1>remote page</h1>");
    if (path === "/pkg/public/app.js") return new Response("export {};");
    return new Response("no", { status: 404 });
  });
  const base = new URL(`http://127.0.0.1:${cdn.addr.port}/pkg/public/`);
  await using s = await startServer({ staticDir: base });
  const { http } = s;
  const home = await fetch(`${http}/`);
  assert.equal(home.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(await home.text(), "<h1>remote page</h1>");
  const js = await fetch(`${http}/app.js?v=2`);
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(await js.text(), "export {};");
  const missing = await fetch(`${http}/nope.css`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const climb = await fetch(`${http}/..%2f..%2fsecret`);
  assert.equal(climb.status, 403);
  await climb.body?.cancel();
  assert.equal(asked.some((p) => !p.startsWith("/pkg/public/")), false);
});

Deno.test("HTTP: /metrics and /healthz answer GET and HEAD only", async () => {
  const { server, http } = await startServer();
  try {
    for (const path of ["/metrics", "/healthz", "/api/version"]) {
      const post = await fetch(`${http}${path}`, { method: "POST", body: "x" });
      assert.equal(post.status, 405, path);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
      const head = await fetch(`${http}${path}`, { method: "HEAD" });
      assert.equal(head.status, 200, path);
      assert.equal(await head.text(), "");
    }
  } finally {
    await server.stop();
  }
});
