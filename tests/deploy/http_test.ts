// Serving as a public service, on Deno and on Bun: TLS, the own-origin exception from
// configuration (never from Host), bad Host, the page's security headers, /metrics moved
// or off, /api/status, and the built-in page fetched once when it is remote.
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { PAGE_FILES, RemoteFiles } from "../../src/_static.ts";
import { startServer } from "../_fixtures/helpers.ts";
import { RUNTIMES, serveOn } from "./_runtimes.ts";
import { selfSigned } from "./_tls.ts";
import { joinFrom, wsFrom } from "./_ws_from.ts";

/** One raw HTTP/1.1 request (Host and all as given); status, lower-cased headers and body. */
function raw(
  port: number,
  head: string,
  secure = false,
): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const s = secure
      ? tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false })
      : net.connect({ host: "127.0.0.1", port });
    let text = "";
    s.once(secure ? "secureConnect" : "connect", () => s.write(head));
    s.on("data", (c: Uint8Array) => text += new TextDecoder().decode(c));
    s.on("error", reject);
    s.on("close", () => {
      const [h, ...rest] = text.split("\r\n\r\n");
      const lines = h.split("\r\n");
      const headers = new Map(
        lines.slice(1).map((l) => {
          const i = l.indexOf(":");
          return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()] as [string, string];
        }),
      );
      resolve({ status: Number(lines[0].split(" ")[1]), headers, body: rest.join("\r\n\r\n") });
    });
  });
}

const get = (path: string, host: string | null) =>
  `GET ${path} HTTP/1.1\r\n${host === null ? "" : `Host: ${host}\r\n`}Connection: close\r\n\r\n`;

for (const rt of RUNTIMES) {
  Deno.test(`${rt}: wss:// and https:// directly with tls { cert, key }`, async () => {
    await using cert = await selfSigned();
    await using t = await serveOn(rt, { tls: { cert: cert.cert, key: cert.key } });
    const page = await raw(t.port, get("/api/version", `127.0.0.1:${t.port}`), true);
    assert.equal(page.status, 200);
    const ws = await joinFrom(
      { host: "127.0.0.1", port: t.port, tls: true, localAddress: "127.0.0.40" },
      "dworld",
    );
    assert.equal(ws.status, 101);
    assert.ok(ws.joined);
    ws.close();
    // Plain HTTP on the TLS port is not served.
    await assert.rejects(async () => {
      const r = await raw(t.port, get("/api/version", "x"));
      if (r.status === 200) throw new Error("served plain http");
      throw new Error("refused");
    });
  });

  Deno.test(`${rt}: --public-origin is the own-origin exception; a Host header never is`, async () => {
    await using t = await serveOn(rt, {
      allowedOrigins: ["https://other.example"],
      publicOrigins: ["https://dzone.example"],
    });
    const from = (origin: string, host?: string) =>
      wsFrom({ host: "127.0.0.1", port: t.port, hostHeader: host, headers: { Origin: origin } });
    const own = await from("https://dzone.example", "dzone.example");
    assert.equal(own.status, 101);
    // DNS rebinding: the attacker's page, its name pointing here, Host to match its Origin.
    const evil = await from("http://evil.test", "evil.test");
    assert.equal(evil.status, 403);
    const listed = await from("https://other.example");
    assert.equal(listed.status, 101);
    for (const s of [own, evil, listed]) s.close();
  });

  Deno.test(`${rt}: a bad or missing Host is 400 with one debug line; the page carries its security headers`, async () => {
    await using t = await serveOn(rt);
    const before = t.logs.length;
    for (const host of ["evil test", "a@b", "[zz", "x:99999", null]) {
      const r = await raw(t.port, get("/", host));
      assert.equal(r.status, 400, `Host ${host}`);
    }
    const upgrade = await wsFrom({ host: "127.0.0.1", port: t.port, hostHeader: "a b" });
    assert.equal(upgrade.status, 400);
    // Bun answers a request without any Host with 400 itself, before our code runs.
    const expected = rt === "bun" ? 5 : 6;
    const hostLines = () =>
      t.logs.slice(before).filter((l) => l.level === "debug" && /Host/.test(l.message)).length;
    // The log lines travel from the server process: wait for them, not for a fixed time.
    for (let i = 0; i < 1000 && hostLines() < expected; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const added = t.logs.slice(before);
    assert.equal(hostLines(), expected, JSON.stringify(added));
    assert.ok(!added.some((l) => l.level === "error"), JSON.stringify(added));

    const page = await raw(t.port, get("/", `127.0.0.1:${t.port}`));
    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${t.port} wss://`));
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.equal(page.headers.get("referrer-policy"), "no-referrer");
    const js = await raw(t.port, get("/app.js", `127.0.0.1:${t.port}`));
    assert.equal(js.status, 200);
    assert.ok(js.headers.has("content-security-policy"));
  });

  Deno.test(`${rt}: behind a proxy on port 8443, the page's CSP allows wss to the public origin, port included`, async () => {
    await using t = await serveOn(rt, { publicOrigins: ["https://dzone.example:8443"] });
    // The proxy passes the host without its port (nginx's $host).
    const page = await raw(t.port, get("/", "dzone.example"));
    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /connect-src 'self' wss:\/\/dzone\.example:8443;/);
    assert.doesNotMatch(csp, /wss:\/\/dzone\.example[ ;]/);
  });

  Deno.test(`${rt}: --static-dir files get nosniff and no CSP`, async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/index.html`, "<p>client</p>");
    try {
      await using t = await serveOn(rt, { staticDir: dir });
      const r = await raw(t.port, get("/", `127.0.0.1:${t.port}`));
      assert.ok(r.body.includes("<p>client</p>"), r.body);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      assert.ok(!r.headers.has("content-security-policy"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`${rt}: /metrics on its own port, or off; /api/status has counts only`, async () => {
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const metricsPort = (free.addr as Deno.NetAddr).port;
    free.close();
    {
      await using t = await serveOn(rt, { metrics: { port: metricsPort } });
      const viewer = await joinFrom({ host: "127.0.0.1", port: t.port }, "dworld");
      assert.ok(viewer.joined);
      assert.equal((await raw(t.port, get("/metrics", "x"))).status, 404);
      const m = await raw(metricsPort, get("/metrics", "x"));
      assert.equal(m.status, 200);
      assert.match(m.body, /dback_connections 1\b/);
      const status = JSON.parse((await raw(t.port, get("/api/status", "x"))).body);
      assert.equal(status.viewers, 1);
      assert.equal(status.rooms, 1);
      assert.deepEqual(status.source, { kind: "mock", state: "ready" });
      assert.equal(status.cluster, "single");
      assert.ok(!JSON.stringify(status).includes("232769614004748288"), "no server ids");
      viewer.close();
    }
    {
      await using t = await serveOn(rt, { metrics: false });
      assert.equal((await raw(t.port, get("/metrics", "x"))).status, 404);
    }
  });
}

Deno.test("the built-in page from a remote base (JSR) is fetched once per file, not per request", async () => {
  const fetched: string[] = [];
  await using origin = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    fetched.push(path);
    return new Response(`file ${path}`);
  });
  const files = new RemoteFiles(
    new URL(`http://127.0.0.1:${origin.addr.port}/pkg/public/`),
    PAGE_FILES,
  );
  for (let i = 0; i < 10; i++) {
    for (const p of ["/", "/app.js", "/style.css", "/nope.js", "/../../etc/passwd"]) {
      const r = await files.serve(p, "GET");
      await r.body?.cancel();
    }
  }
  assert.deepEqual(fetched.sort(), [
    "/pkg/public/app.js",
    "/pkg/public/index.html",
    "/pkg/public/style.css",
  ]);
  // The list is the page: every file of public/ and nothing else.
  const dir = fileURLToPath(new URL("../../public/", import.meta.url));
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(names, [...PAGE_FILES].sort());
});

Deno.test("the viewer port refuses to start when the metrics port is taken, and lets its port go", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(() =>
      startServer({ metrics: { port: (busy.addr as Deno.NetAddr).port } })
    );
  } finally {
    busy.close();
  }
});
