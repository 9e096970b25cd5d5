/// <reference lib="dom" />
// The live page in headless Chromium, once per runtime: served by the server in a child process,
// it lists the mock servers, joins one over that runtime's WebSocket and shows a broadcast.
import assert from "node:assert/strict";
import { RUNTIMES, RuntimeServer } from "../_fixtures/runtimes.ts";
import {
  launchBrowser,
  openPage,
  type PageProblem,
  requireChromium,
} from "../_fixtures/browser.ts";

const WAIT = { timeout: 15_000 };

for (const rt of RUNTIMES) {
  Deno.test(`${rt}: the live page: server list, join, members and a chat message`, async () => {
    await requireChromium();
    await using server = await RuntimeServer.start(rt, {
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
        message: `hello from ${rt}`,
        channel: "527964146659229701",
      });
      assert.equal(reached, 1, "the page is the one joined viewer");
      await page.waitForFunction(
        (text: string) => document.body.textContent?.includes(text),
        WAIT,
        `hello from ${rt}`,
      );
      assert.deepEqual(problems, [], "no console errors or failed requests");
    } finally {
      await browser.close();
    }
  });
}
