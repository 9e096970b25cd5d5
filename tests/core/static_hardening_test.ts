// Static files under attack: index names that are directories (issue 9, item 9)
// and request paths that climb, hold NUL or are malformed, with and without the
// `staticRequest` hook (item 11). Requests go over raw TCP so the path reaches
// the server exactly as written, not as fetch() would normalise it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { normaliseRequestPath } from "../../src/_static.ts";
import { startServer } from "../_fixtures/helpers.ts";

/** One raw HTTP/1.1 GET; returns the status and body. Fails after `ms`. */
async function rawGet(port: number, target: string, ms = 5000): Promise<{
  status: number;
  body: string;
}> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), ms);
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16384);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      chunks.reduce((a, b) => {
        const out = new Uint8Array(a.length + b.length);
        out.set(a);
        out.set(b, a.length);
        return out;
      }, new Uint8Array()),
    );
    if (text === "") throw new Error(`no answer to GET ${target} within ${ms} ms`);
    const [head, ...rest] = text.split("\r\n\r\n");
    return { status: Number(head.split(" ")[1]), body: rest.join("\r\n\r\n") };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed by the timer */ }
  }
}

Deno.test("staticDir: an index.html that is a directory is a 404, never a loop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "a", "index.html"), { recursive: true });
    await Deno.mkdir(join(dir, "a", "index.html", "index.html"), { recursive: true });
    await Deno.mkdir(join(dir, "b"));
    await Deno.writeTextFile(join(dir, "b", "index.html"), "bee");
    await Deno.mkdir(join(dir, "empty"));
    await Deno.mkdir(join(dir, "index.html"));
    const { server } = await startServer({ staticDir: dir });
    try {
      const port = server.port;
      // Before the fix, each of these recursed until the process was killed.
      for (const target of ["/a/", "/a", "/a/index.html", "/a/index.html/", "/", "/index.html"]) {
        const r = await rawGet(port, target);
        assert.equal(r.status, 404, `GET ${target}`);
      }
      assert.equal((await rawGet(port, "/empty/")).status, 404);
      assert.equal((await rawGet(port, "/empty")).status, 404);
      // A real index still works, with and without the trailing slash.
      for (const target of ["/b/", "/b", "/b/index.html", "/b/."]) {
        const r = await rawGet(port, target);
        assert.equal(r.status, 200, `GET ${target}`);
        assert.equal(r.body, "bee");
      }
      // The server is still responsive afterwards.
      assert.equal((await rawGet(port, "/healthz")).status, 200);
    } finally {
      // A looping request would keep stop() waiting for ever: bound it so a
      // regression fails (with the sanitizers' complaint) instead of hanging.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.stop(),
        new Promise((r) => timer = setTimeout(r, 5000)),
      ]);
      clearTimeout(timer);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("staticDir: climbing, NUL and malformed paths are refused by the built-in server", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "index.html"), "home");
    const { server } = await startServer({ staticDir: dir });
    try {
      const port = server.port;
      assert.equal((await rawGet(port, "/..%2f..%2f..%2fetc%2fpasswd")).status, 403);
      assert.equal((await rawGet(port, "/..%5c..%5c..%5cetc%5cpasswd")).status, 403);
      assert.equal((await rawGet(port, "/x%2f..%2f..%2fetc%2fpasswd")).status, 403);
      assert.equal((await rawGet(port, "/index.html%00.png")).status, 400);
      assert.equal((await rawGet(port, "/%E0%A4%A")).status, 400);
      // `..` that stays inside the root is resolved, not refused.
      const inside = await rawGet(port, "/x%2f..%2findex.html");
      assert.equal(inside.status, 200);
      assert.equal(inside.body, "home");
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("staticRequest hook: sees only checked, normalised paths; refusals come first", async () => {
  const seen: string[] = [];
  const { server } = await startServer({
    staticDir: false,
    callbacks: {
      staticRequest: (path) => {
        seen.push(path);
        return ["text/plain; charset=utf-8", `hook:${path}`];
      },
    },
  });
  try {
    const port = server.port;
    const refused: Array<[string, number]> = [
      ["/hook/..%2f..%2fetc%2fpasswd", 403],
      ["/hook/..%2F..%2F..%2Fetc%2Fpasswd", 403],
      ["/hook/..%5c..%5c..%5cetc%5cpasswd", 403],
      ["/..%2fetc", 403],
      ["/hook/a%00b", 400],
      ["/hook/%00", 400],
      ["/hook/%E0%A4%A", 400],
      ["/hook/%", 400],
      ["/hook/%zz", 400],
    ];
    for (const [target, status] of refused) {
      const r = await rawGet(port, target);
      assert.equal(r.status, status, `GET ${target}`);
    }
    assert.deepEqual(seen, [], "the hook was called for a refused path");
    const passed: Array<[string, string]> = [
      ["/hook/a%2f..%2fb", "/hook/b"],
      ["/hook/x%20y", "/hook/x y"],
      ["/hook/.%2fc", "/hook/c"],
      ["/hook//d", "/hook/d"],
      ["/hook/e%5cf", "/hook/e/f"],
      ["/hook/dir/", "/hook/dir/"],
      ["/", "/"],
    ];
    for (const [target, path] of passed) {
      const r = await rawGet(port, target);
      assert.equal(r.status, 200, `GET ${target}`);
      assert.equal(r.body, `hook:${path}`);
    }
    assert.deepEqual(seen, passed.map(([, p]) => p));
  } finally {
    await server.stop();
  }
});

Deno.test("normaliseRequestPath: the rules, unit by unit", () => {
  const ok = (raw: string) => {
    const r = normaliseRequestPath(raw);
    if (!r.ok) throw new Error(`${raw} refused with ${r.status}`);
    return r.path;
  };
  const status = (raw: string) => {
    const r = normaliseRequestPath(raw);
    return r.ok ? 200 : r.status;
  };
  assert.equal(ok("/"), "/");
  assert.equal(ok(""), "/");
  assert.equal(ok("/a/b"), "/a/b");
  assert.equal(ok("/a/b/"), "/a/b/");
  assert.equal(ok("/a/./b/../c"), "/a/c");
  assert.equal(ok("/a/.."), "/");
  assert.equal(ok("/a/b/.."), "/a/");
  assert.equal(ok("/a/b/."), "/a/b/");
  assert.equal(ok("/caf%C3%A9"), "/café");
  assert.equal(status("/.."), 403);
  assert.equal(status("/a/../.."), 403);
  assert.equal(status("/a/../../b"), 403);
  assert.equal(status("/%2e%2e/etc"), 403);
  assert.equal(status("/a\\..\\..\\b"), 403);
  assert.equal(status("/%00"), 400);
  assert.equal(status("/a\0"), 400);
  assert.equal(status("/%C3"), 400);
  assert.equal(status("/%"), 400);
});
