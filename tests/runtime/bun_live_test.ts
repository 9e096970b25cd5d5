/// <reference lib="dom" />
// Under Bun: the live page in headless Chromium (served by the Bun server, it lists the mock
// servers, joins one over Bun's WebSocket and shows a broadcast), and the idle timeout.
import assert from "node:assert/strict";
import { BunServer } from "../_fixtures/_bun.ts";
import { rawUpgrade } from "../_fixtures/helpers.ts";
import {
  launchBrowser,
  openPage,
  type PageProblem,
  requireChromium,
} from "../_fixtures/browser.ts";

const WAIT = { timeout: 15_000 };

Deno.test("live page on a Bun server: server list, join, members and a chat message", async () => {
  await requireChromium();
  await using server = await BunServer.start({
    mock: { presenceIntervalMs: 3_600_000, messageIntervalMs: 3_600_000 },
  });
  const problems: PageProblem[] = [];
  const browser = await launchBrowser();
  try {
    const page = await openPage(browser.browser, (p) => problems.push(p));
    await page.goto(`${server.http}/?s=dworld`);
    await page.waitForFunction(
      () => document.querySelectorAll("#servers .server").length === 4,
      WAIT,
    );
    await page.waitForFunction(
      () =>
        document.getElementById("server-name")?.textContent === "D-World" &&
        document.querySelectorAll("#members .card").length === 4 &&
        document.getElementById("conn")?.dataset.state === "open",
      WAIT,
    );
    const reached = await server.call<number>("broadcastMessage", {
      server: "232769614004748288",
      uid: "123456789012345001",
      message: "hello from bun",
      channel: "527964146659229701",
    });
    assert.equal(reached, 1, "the page is the one joined viewer");
    await page.waitForFunction(
      () => document.body.textContent?.includes("hello from bun"),
      WAIT,
    );
    assert.deepEqual(problems, [], "no console errors or failed requests");
  } finally {
    await browser.close();
  }
});

Deno.test("idle dead peers are closed on Bun too (the runtime's ping/pong idle timeout)", async () => {
  await using server = await BunServer.start({
    options: { idleTimeoutSeconds: 2, joinTimeoutMs: 0 },
  });
  const dead = await rawUpgrade(server.port);
  try {
    assert.equal(dead.status, 101);
    assert.equal(await server.call<number>("count"), 1);
    // The raw peer never answers pings nor sends anything: the server must give up by itself.
    const deadline = Date.now() + 15_000;
    while (await server.call<number>("count") !== 0) {
      assert.ok(Date.now() < deadline, "the dead peer was not dropped within 15 s");
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    dead.conn.close();
  }
});

Deno.test("on Bun, a silent TCP connection that never sends a request is closed by the server", async () => {
  await using server = await BunServer.start();
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    conn.read(new Uint8Array(16)).then((n) => n === null, () => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 30_000)),
  ]);
  clearTimeout(timer);
  assert.ok(closed, "still open after 30 s");
  console.log(`silent connection closed by Bun after ${Date.now() - started} ms`);
});
