// Drives Debian's chromium (never a downloaded browser) through puppeteer-core.
// Dev-only: imported by tests/runtime/browser_test.ts and tools/screenshot.ts, never by src/ or mod.ts.
// A full specifier on purpose: a dev-only tool, kept out of deno.json's import map so that
// nothing published can pull it in.
// deno-lint-ignore no-import-prefix
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@24.43.1";

export type { Browser, Page };

/** The browser the tests drive: `CHROME_PATH` when set, else Debian's `chromium` package. */
export const CHROMIUM = Deno.env.get("CHROME_PATH") || "/usr/bin/chromium";

/** Fails with a clear message when chromium is missing (CI installs it). */
export async function requireChromium(): Promise<void> {
  try {
    const info = await Deno.stat(CHROMIUM);
    if (info.isFile) return;
  } catch { /* reported below */ }
  throw new Error(
    `${CHROMIUM} not found: the browser tests need Debian's chromium. ` +
      "Install it with `apt-get install -y chromium` (deno task test does this when root), " +
      "or point CHROME_PATH at a Chromium binary.",
  );
}

/** A headless chromium with a fresh profile; `close()` ends the process and removes the profile. */
export async function launchBrowser(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  await requireChromium();
  const profile = await Deno.makeTempDir({ prefix: "dback-chromium-" });
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      // Talk CDP over pipes rather than a WebSocket: fewer moving parts under Deno.
      pipe: true,
      // Leave the test runner's signal handling alone.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
      ],
    });
  } catch (err) {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw err;
  }
  return {
    browser,
    close: async () => {
      try {
        await browser.close();
      } finally {
        await Deno.remove(profile, { recursive: true }).catch(() => {});
      }
    },
  };
}

/** A console error, page error, failed request, HTTP error or dialog the page produced. */
export interface PageProblem {
  kind: "console" | "pageerror" | "requestfailed" | "http" | "dialog";
  text: string;
}

/** Open a page that reports every problem to `onProblem`; dialogs are reported and dismissed. */
export async function openPage(
  browser: Browser,
  onProblem: (problem: PageProblem) => void,
  viewport = { width: 1280, height: 800 },
): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  page.on("console", (msg) => {
    if (msg.type() === "error") onProblem({ kind: "console", text: msg.text() });
  });
  page.on("pageerror", (err) => {
    onProblem({ kind: "pageerror", text: err instanceof Error ? err.message : String(err) });
  });
  page.on("requestfailed", (req) => {
    onProblem({ kind: "requestfailed", text: `${req.url()}: ${req.failure()?.errorText}` });
  });
  page.on("response", (res) => {
    if (res.status() >= 400) onProblem({ kind: "http", text: `${res.status()} ${res.url()}` });
  });
  page.on("dialog", (dialog) => {
    onProblem({ kind: "dialog", text: `${dialog.type()}: ${dialog.message()}` });
    dialog.dismiss().catch(() => {});
  });
  return page;
}
