// The docs stay a front door and a set of pages that link to each other: README.md at most 300
// lines, every page but the README with a table of contents, no test files named in user-facing text (that is
// docs/development.md's job), and every relative link and #anchor resolving.
import assert from "node:assert/strict";
import { anchor, BENCH_PAGES } from "../../tools/toc.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));

async function pages(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.isFile && e.name.endsWith(".md")) names.push(`docs/${e.name}`);
  }
  return ["README.md", ...BENCH_PAGES, ...names.sort()];
}

/** The anchors GitHub makes for a page's headings (outside code fences). */
function anchors(text: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split("\n")) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    const m = !fenced && line.match(/^#{1,6} (.+)$/);
    if (!m) continue;
    const base = anchor(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

Deno.test("docs: README is a front door of at most 300 lines; each docs page has a table of contents", async () => {
  const readme = await read("README.md");
  assert.ok(readme.split("\n").length <= 300, `README.md has ${readme.split("\n").length} lines`);
  for (const page of (await pages()).filter((p) => p !== "README.md")) {
    if (page === "docs/PROTOCOL.md") continue;
    assert.match(await read(page), /<!-- toc -->/, `${page} has no table of contents`);
  }
});

Deno.test("docs: user-facing pages name no test files (how it is tested is in docs/development.md)", async () => {
  for (const page of await pages()) {
    if (page === "docs/development.md" || page === "bench/README.md") continue;
    const named = (await read(page)).match(/tests\/[\w/.-]+|\w+_test\.ts/g) ?? [];
    assert.deepEqual(named, [], `${page} names test files`);
  }
});

Deno.test("docs: every relative link points at a file, and every #anchor at a heading", async () => {
  const broken: string[] = [];
  for (const page of await pages()) {
    const text = await read(page);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [path, fragment] = target.split("#");
      const file = path === "" ? new URL(page, ROOT) : new URL(path, new URL(page, ROOT));
      let body: string;
      try {
        body = await Deno.readTextFile(file);
      } catch {
        try {
          await Deno.stat(file);
          continue; // a directory or an image
        } catch {
          broken.push(`${page}: ${target} (no such file)`);
          continue;
        }
      }
      if (fragment && file.pathname.endsWith(".md") && !anchors(body).has(fragment)) {
        broken.push(`${page}: ${target} (no such heading)`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("README: the limits at a glance are the defaults of the options", async () => {
  const { parseOptions } = await import("../../src/options.ts");
  const o = parseOptions({});
  const MiB = 1024 * 1024;
  // Joined into one line: the paragraph's line breaks fall anywhere.
  const text = (await read("README.md")).replace(/\s+/g, " ");
  const claims = [
    `${o.maxConnectionsPerIp} connections and ${
      o.maxConnectionsPerIp * o.maxBufferedBytes / MiB
    } MiB of unsent data per address`,
    `at most ${o.maxBufferedBytes / MiB} MiB per socket`,
    `until the socket is gone and ${o.dropQuarantineMs / 1000} s have passed`,
    `${o.maxTotalBufferedBytes / (1024 * MiB)} GiB of unsent data for the whole server`,
    `up to ${o.joinQueueLength.toLocaleString("en")} joins beyond it wait`,
    `${
      o.joinsPerSecond === 1 ? "one join a second" : `${o.joinsPerSecond} joins a second`
    } per connection (burst ${o.joinBurst})`,
    `A guild above \`--hide-offline-above N\` users (${
      o.hideOfflineAbove === 0 ? "off by default" : `default ${o.hideOfflineAbove}`
    }) is joined without its offline members`,
  ];
  for (const claim of claims) assert.ok(text.includes(claim), `README does not say: ${claim}`);
});
