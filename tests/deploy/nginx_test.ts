// The deploy guide's nginx file, run by Debian's nginx with TLS in front of dback
// (--trust-proxy 127.0.0.1), on Deno and on Bun. Viewers are distinct loopback addresses.
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { ServerProcess } from "../_fixtures/_server_process.ts";
import { startNginx } from "./_nginx.ts";
import { RUNTIMES, serveOn } from "./_runtimes.ts";
import { selfSigned } from "./_tls.ts";
import { joinFrom, type RawWs, wsFrom } from "./_ws_from.ts";

function head(port: number, path: string, secure: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = secure
      ? tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername: "localhost" })
      : net.connect({ host: "127.0.0.1", port });
    let text = "";
    s.once(
      secure ? "secureConnect" : "connect",
      () => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
    );
    s.on("data", (c: Uint8Array) => text += new TextDecoder().decode(c));
    s.on("error", reject);
    s.on("close", () => resolve(text.split("\r\n\r\n")[0]));
  });
}

for (const rt of RUNTIMES) {
  Deno.test(`${rt} behind nginx + TLS: 60 viewers from 60 addresses all join; one address gets its cap of 32`, async () => {
    await using cert = await selfSigned();
    await using dback = await serveOn(rt, { trustProxy: ["127.0.0.1"], maxConnections: 500 });
    await using nginx = await startNginx([dback.port], cert);
    // A client at `localAddress` talking to nginx over TLS.
    const from = (localAddress: string, headers?: Record<string, string>) => ({
      host: "127.0.0.1",
      port: nginx.https,
      tls: true,
      localAddress,
      hostHeader: "localhost",
      headers,
    });
    const via = (localAddress: string, headers?: Record<string, string>) =>
      joinFrom(from(localAddress, headers), "dworld");
    // Upgrades only: the per-IP cap counts connections (joins have a per-IP budget of their own).
    const upgrade = (localAddress: string, headers?: Record<string, string>) =>
      wsFrom(from(localAddress, headers));
    const open: RawWs[] = [];
    try {
      const many = await Promise.all(
        Array.from({ length: 60 }, (_, i) => via(`127.0.0.${100 + i}`)),
      );
      open.push(...many);
      assert.equal(many.filter((w) => w.joined).length, 60, await nginx.errorLog());
      // dback saw the viewers' own addresses, not nginx's.
      assert.ok(dback.logs.some((l) => l.message.includes("connected from 127.0.0.159")));

      const one = await Promise.all(Array.from({ length: 40 }, () => upgrade("127.0.0.200")));
      open.push(...one);
      assert.equal(one.filter((w) => w.status === 101).length, 32);
      assert.equal(one.filter((w) => w.status === 429).length, 8);

      // A client's own X-Forwarded-For goes through nginx, in front of the real address.
      const forged = await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) => upgrade("127.0.0.201", { "X-Forwarded-For": `198.51.100.${i}` }),
        ),
      );
      open.push(...forged);
      assert.equal(forged.filter((w) => w.status === 101).length, 32);

      // Plain http is sent to https; /metrics is not public; the page allows its own wss.
      assert.match(
        await head(nginx.http, "/", false),
        /^HTTP\/1\.1 301[^]*Location: https:\/\/localhost\//i,
      );
      assert.match(await head(nginx.https, "/metrics", true), /^HTTP\/1\.1 404/);
      const page = await head(nginx.https, "/", true);
      assert.match(page, /^HTTP\/1\.1 200/);
      assert.match(
        page,
        /content-security-policy: [^\r]*connect-src 'self' ws:\/\/localhost wss:\/\/localhost/i,
      );
    } finally {
      for (const w of open) w.close();
    }
  });
}

Deno.test("several instances behind nginx: viewers are spread over them, and every one joins", async () => {
  await using cert = await selfSigned();
  await using a = await serveOn("deno", { trustProxy: ["127.0.0.1"] });
  await using b = await serveOn("bun", { trustProxy: ["127.0.0.1"] });
  await using nginx = await startNginx([a.port, b.port], cert);
  const viewers = [];
  for (let i = 0; i < 10; i++) {
    viewers.push(
      await joinFrom(
        { host: "127.0.0.1", port: nginx.https, tls: true, localAddress: `127.0.0.${60 + i}` },
        "dworld",
      ),
    );
  }
  try {
    assert.equal(viewers.filter((v) => v.joined).length, 10);
    const on = (logs: { message: string }[]) =>
      logs.filter((l) => /connected from 127\.0\.0\.6\d/.test(l.message)).length;
    assert.equal(on(a.logs) + on(b.logs), 10);
    assert.ok(on(a.logs) > 0 && on(b.logs) > 0, `a: ${on(a.logs)}, b: ${on(b.logs)}`);
  } finally {
    for (const v of viewers) v.close();
  }
});

Deno.test("the guide's command line behind nginx: --trust-proxy, --public-origin, --allowed-origin", async () => {
  await using cert = await selfSigned();
  await using dback = await ServerProcess.spawn({
    args: [
      fileURLToPath(new URL("../../examples/main.ts", import.meta.url)),
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--trust-proxy",
      "127.0.0.1",
      "--public-origin",
      "https://localhost",
      "--allowed-origin",
      "https://client.example",
    ],
    portPattern: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
  });
  await using nginx = await startNginx([dback.port], cert);
  const from = (localAddress: string, origin: string) =>
    wsFrom({
      host: "127.0.0.1",
      port: nginx.https,
      tls: true,
      localAddress,
      hostHeader: "localhost",
      headers: { Origin: origin },
    });
  const own = await from("127.0.0.80", "https://localhost");
  const client = await from("127.0.0.81", "https://client.example");
  const evil = await from("127.0.0.82", "https://evil.example");
  try {
    assert.deepEqual([own.status, client.status, evil.status], [101, 101, 403]);
    // Each viewer by its own address in the log, the refused one too.
    assert.match(dback.output, /connected from 127\.0\.0\.80/);
    assert.match(dback.output, /upgrade from 127\.0\.0\.82 refused: origin/);
  } finally {
    for (const w of [own, client, evil]) w.close();
  }
});
