/// <reference lib="dom" />
// The live view (public/) in a real browser: Debian's headless chromium driven
// by puppeteer-core. Asserts what a person sees, and that the page logs no errors.
import { MockSource } from "../../mod.ts";
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { launchBrowser, openPage, type Page, type PageProblem } from "../_fixtures/browser.ts";
import { DOCS, DWORLD, startServer, until } from "../_fixtures/helpers.ts";

/** Status dot colours of public/style.css, as getComputedStyle reports them. */
const STATUS_RGB: Record<string, string> = {
  online: "rgb(67, 181, 129)",
  idle: "rgb(250, 166, 26)",
  dnd: "rgb(240, 71, 71)",
  offline: "rgb(116, 127, 141)",
};
const AUTH_REQUIRED = "This server requires Discord authentication. Please login with Discord.";
const MOCK_MESSAGES = [
  "hello",
  "how are you?",
  "this is a test message",
  "D-Zone rocks!",
  "what's up?",
];
const NEWCOMER = "999000000000000001";
const WAIT = { polling: 50, timeout: 15_000 };

/** Wait until the page shows server `id` with `count` member cards. */
async function showsServer(page: Page, id: string, count: number): Promise<void> {
  await page.waitForFunction(
    (id, count) =>
      document.getElementById("server-name")?.dataset.server === id &&
      document.querySelectorAll("#members .card").length === count &&
      document.getElementById("conn")?.dataset.state === "open",
    WAIT,
    id,
    count,
  );
}

const cardNames = (page: Page) =>
  page.$$eval("#members .card .name", (els) => els.map((e) => e.textContent ?? ""));

/** The inline error's text, or null when no error is shown. */
const errorText = (page: Page) =>
  page.$eval(
    "#error",
    (e) => (e as HTMLElement).hidden ? null : e.querySelector("#error-text")!.textContent,
  );

Deno.test("live view in headless chromium", async (t) => {
  const mock = { presenceIntervalMs: 700, messageIntervalMs: 300 };
  let { server, http } = await startServer({ source: new MockSource(mock) });
  const port = server.port;
  const problems: PageProblem[] = [];
  const duringOutage: PageProblem[] = [];
  let outage = false;
  const record = (p: PageProblem) => (outage ? duringOutage : problems).push(p);
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  try {
    browser = await launchBrowser();
    const page = await openPage(browser.browser, record);

    await t.step("lists the mock servers, the version and the socketURL", async () => {
      await page.goto(`${http}/`);
      await page.waitForFunction(
        () => document.querySelectorAll("#servers .server").length === 4,
        WAIT,
      );
      const names = await page.$$eval(
        "#servers .server .server-name",
        (els) => els.map((e) => e.textContent),
      );
      assert.deepEqual(
        [...names].sort(),
        ["D-World", "Docs (WIP)", "My Repos", "OAuth2 Protected Server"],
      );
      const locked = await page.$$eval(
        "#servers .server",
        (els) =>
          els.filter((e) => e.querySelector(".lock")).map((e) => (e as HTMLElement).dataset.server),
      );
      assert.deepEqual(locked, ["oauth"]);
      const res = await fetch(`${http}/api/version`);
      const { version } = await res.json();
      await page.waitForFunction(
        (v) => document.getElementById("version")?.textContent === v,
        WAIT,
        `v${version}`,
      );
      assert.equal(await page.$eval("#socket-url", (e) => e.textContent), `ws://127.0.0.1:${port}`);
      assert.equal(
        await page.$eval("#socket-param", (e) => e.textContent),
        `?socketURL=ws://127.0.0.1:${port}`,
      );
    });

    await t.step("shows D-World's members with status colours", async () => {
      await showsServer(page, "dworld", 4);
      assert.equal(await page.$eval("#server-name", (e) => e.textContent), "D-World");
      assert.deepEqual(
        [...await cardNames(page)].sort(),
        ["Cog-Creators", "NNTin", "d-zone-org", "vegeta897"].sort(),
      );
      // The mock world changes statuses on its own, so give each user a different
      // status and read status and colour in one go; retry if the mock got in between.
      const want: Record<string, string> = {
        "123456789012345001": "online",
        "123456789012345002": "idle",
        "123456789012345003": "dnd",
        "123456789012345004": "offline",
      };
      let seen: Record<string, string> | undefined;
      for (let i = 0; i < 10 && !seen; i++) {
        for (const [uid, status] of Object.entries(want)) {
          server.broadcastPresence({ server: DWORLD, uid, status: status as "online" });
        }
        seen = await page.waitForFunction(
          (want: Record<string, string>) => {
            const out: Record<string, string> = {};
            for (const [uid, status] of Object.entries(want)) {
              const card = document.querySelector<HTMLElement>(`#members .card[data-uid="${uid}"]`);
              const dot = card?.querySelector(".dot");
              if (!dot || card?.dataset.status !== status) return false;
              out[status] = getComputedStyle(dot).backgroundColor;
            }
            return out;
          },
          { polling: 50, timeout: 3000 },
          want,
        ).then((h) => h.jsonValue() as Promise<Record<string, string>>).catch(() => undefined);
      }
      assert.deepEqual(seen, STATUS_RGB);
      // The counts always add up to the members shown.
      const counts = await page.$$eval(
        "#counts [data-count] b",
        (els) =>
          Object.fromEntries(
            els.map((b) => [b.parentElement!.dataset.count, Number(b.textContent)]),
          ),
      );
      assert.equal(counts.total, 4);
      assert.equal(counts.online + counts.idle + counts.dnd + counts.offline, 4);
    });

    await t.step("reflects presence changes on the cards", async () => {
      const name = "<b>new</b>comer & co";
      server.broadcastPresence({
        server: DWORLD,
        uid: NEWCOMER,
        status: "online",
        username: name,
        roleColor: "#00ff00",
      });
      const card = `#members .card[data-uid="${NEWCOMER}"]`;
      await page.waitForSelector(`${card}[data-status="online"]`, WAIT);
      assert.equal(await page.$eval(`${card} .name`, (e) => e.textContent), name);
      assert.equal(
        await page.$$eval(`${card} b`, (els) => els.length),
        0,
        "username parsed as HTML",
      );
      assert.equal(
        await page.$eval(card, (e) => getComputedStyle(e).borderLeftColor),
        "rgb(0, 255, 0)",
      );
      await page.waitForFunction(
        () => document.querySelector('[data-count="total"] b')?.textContent === "5",
        WAIT,
      );

      server.broadcastPresence({ server: DWORLD, uid: NEWCOMER, status: "dnd" });
      await page.waitForSelector(`${card}[data-status="dnd"]`, WAIT);
      assert.equal(
        await page.$eval(`${card} .dot`, (e) => getComputedStyle(e).backgroundColor),
        STATUS_RGB.dnd,
      );

      server.broadcastPresence({ server: DWORLD, uid: NEWCOMER, status: "offline", delete: true });
      await page.waitForSelector(card, { ...WAIT, hidden: true });
      await page.waitForFunction(
        () => document.querySelector('[data-count="total"] b')?.textContent === "4",
        WAIT,
      );
    });

    await t.step("shows chat messages and highlights the speaker", async () => {
      const uid = "123456789012345003"; // d-zone-org
      const text = `<img src=x onerror="window.__xss=1"> hi from the test ${crypto.randomUUID()}`;
      // The highlight lasts only a moment: record it as it happens rather than poll for it.
      await page.evaluate((uid) => {
        const card = document.querySelector(`#members .card[data-uid="${uid}"]`)!;
        const spoken: string[] = [];
        (globalThis as unknown as { __spoken: string[] }).__spoken = spoken;
        new MutationObserver(() => {
          if (card.classList.contains("speaking")) {
            spoken.push(card.querySelector(".said")?.textContent ?? "");
          }
        }).observe(card, { attributes: true, childList: true, characterData: true, subtree: true });
      }, uid);
      server.broadcastMessage({
        server: DWORLD,
        uid,
        message: text,
        channel: "527964146659229701",
      });
      const said = await page.waitForFunction(
        (uid, text) => {
          const item = [...document.querySelectorAll<HTMLElement>("#feed .msg")]
            .find((li) =>
              li.dataset.uid === uid && li.querySelector(".text")?.textContent === text
            );
          const spoken = (globalThis as unknown as { __spoken: string[] }).__spoken;
          return item && spoken.includes(text) && { who: item.querySelector(".who")?.textContent };
        },
        WAIT,
        uid,
        text,
      );
      assert.deepEqual(await said.jsonValue(), { who: "d-zone-org" });
      assert.equal(
        await page.$$eval("#feed img", (els) => els.length),
        0,
        "message parsed as HTML",
      );
      assert.equal(await page.evaluate(() => "__xss" in window), false);
      // The mock world's own chatter arrives too, and is counted.
      await page.waitForFunction(
        (texts) =>
          [...document.querySelectorAll("#feed .msg .text")].some((e) =>
            texts.includes(e.textContent ?? "")
          ),
        WAIT,
        MOCK_MESSAGES,
      );
      const perMinute = await page.$eval('[data-count="mpm"] b', (e) => Number(e.textContent));
      assert.ok(perMinute >= 1, `messages/min shows ${perMinute}`);
    });

    await t.step("switches to My Repos and puts it in the address", async () => {
      await page.click('#servers .server[data-server="repos"]');
      await showsServer(page, "repos", 21);
      assert.equal(await page.$eval("#server-name", (e) => e.textContent), "My Repos");
      assert.equal(new URL(page.url()).searchParams.get("s"), "repos");
      assert.equal(
        await page.$eval(
          '#servers .server[aria-current="true"]',
          (e) => (e as HTMLElement).dataset.server,
        ),
        "repos",
      );
      const names = await cardNames(page);
      assert.ok(names.includes("d-back") && names.includes("twitter-backend"), names.join());
      // Back goes back to D-World, forward to My Repos again.
      await page.goBack();
      await showsServer(page, "dworld", 4);
      assert.equal(new URL(page.url()).searchParams.get("s"), null);
      await page.goForward();
      await showsServer(page, "repos", 21);
    });

    await t.step("shows the auth error of the protected server inline", async () => {
      await page.click('#servers .server[data-server="oauth"]');
      await page.waitForFunction(() => !document.getElementById("error")!.hidden, WAIT);
      assert.equal(await errorText(page), AUTH_REQUIRED);
      // Still on My Repos, address unchanged.
      await showsServer(page, "repos", 21);
      assert.equal(new URL(page.url()).searchParams.get("s"), "repos");

      // Opened directly: the error stays visible while the page falls back to the default.
      const direct = await openPage(browser!.browser, record, { width: 390, height: 844 });
      try {
        await direct.goto(`${http}/?s=oauth`);
        await showsServer(direct, "dworld", 4);
        assert.equal(await errorText(direct), AUTH_REQUIRED);
      } finally {
        await direct.close();
      }
    });

    await t.step("opens Docs from ?s=docs, also after a reload", async () => {
      await page.goto(`${http}/?s=docs`);
      await showsServer(page, "docs", 1);
      assert.equal(await page.$eval("#server-name", (e) => e.textContent), "Docs (WIP)");
      assert.deepEqual(await cardNames(page), ["nntin.xyz/me"]);
      assert.equal(await errorText(page), null);
      await page.reload();
      await showsServer(page, "docs", 1);
    });

    await t.step("reconnects by itself when the server comes back", async () => {
      outage = true;
      await server.stop();
      await page.waitForFunction(
        () => document.getElementById("conn")?.dataset.state !== "open",
        WAIT,
      );
      // Stay down long enough for at least one failed attempt.
      await new Promise((r) => setTimeout(r, 1200));
      ({ server, http } = await startServer({ source: new MockSource(mock), port }));
      // The old cards stay on screen while reconnecting: wait for the new session's join.
      const restarted = server;
      await until(() => restarted.metrics.joins >= 1, 15_000, "the page to rejoin");
      await showsServer(page, "docs", 1);
      outage = false;
      server.broadcastMessage({
        server: DOCS,
        uid: "223456789012345001",
        message: "back again",
        channel: "1",
      });
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll("#feed .msg .text")].some((e) =>
            e.textContent === "back again"
          ),
        WAIT,
      );
      for (const p of duringOutage) {
        assert.match(p.text, /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/, p.text);
      }
    });

    // What the page looked like at the end, for a person to check (out/ is git-ignored).
    const out = new URL("../../out/", import.meta.url);
    await Deno.mkdir(out, { recursive: true });
    // No half-faded arrivals in the picture.
    await page.emulateMediaFeatures([{ name: "prefers-reduced-motion", value: "reduce" }]);
    await page.screenshot({ path: fromFileUrl(new URL("screenshot.png", out)), fullPage: true });
    assert.deepEqual(problems, [], "the page reported errors");
  } finally {
    // The server is stopped even if closing the browser fails; `server` is whichever one
    // runs now (the step above restarts it), and stop() is idempotent.
    try {
      await browser?.close();
    } finally {
      await server.stop();
    }
  }
});
