/**
 * Writes the table of contents of each page in docs/ between `<!-- toc -->` and `<!-- /toc -->`
 * (a page gets one by having the opening marker), from its `##` and `###` headings, with the
 * anchors GitHub makes. `--check` changes nothing and exits 1 when a table is out of date, so
 * `deno task check` catches a heading added without its entry.
 *
 * ```sh
 * deno task toc            # rewrite the tables
 * deno task toc --check    # exit 1 if one is stale
 * ```
 */
import { fileURLToPath } from "node:url";

const USAGE = `Usage: deno task toc [--check]

Writes the table of contents of every docs/*.md page that has a <!-- toc --> marker.
  --check    change nothing; exit 1 and name the pages whose table is out of date
  -h, --help print this help`;

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
export function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** The page with its table of contents (re)written; the page unchanged when it has no marker. */
export function withToc(page: string): string {
  const open = "<!-- toc -->";
  const close = "<!-- /toc -->";
  const at = page.indexOf(open);
  if (at < 0) return page;
  const end = page.indexOf(close, at);
  const after = end < 0 ? page.slice(at + open.length) : page.slice(end + close.length);
  const seen = new Map<string, number>();
  const lines: string[] = [];
  let fenced = false;
  for (const line of after.split("\n")) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    const m = !fenced && line.match(/^(##|###) (.+)$/);
    if (!m) continue;
    const base = anchor(m[2]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const id = n === 0 ? base : `${base}-${n}`;
    const indent = m[1] === "###" ? "  " : "";
    lines.push(`${indent}- [${m[2].replace(/`/g, "")}](#${id})`);
  }
  return `${page.slice(0, at)}${open}\n\n${lines.join("\n")}\n\n${close}${after}`;
}

if (import.meta.main) {
  const args = Deno.args;
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const unknown = args.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    console.error(`unknown argument: ${unknown[0]}\n\n${USAGE}`);
    Deno.exit(2);
  }
  const check = args.includes("--check");
  const dir = fileURLToPath(new URL("../docs/", import.meta.url));
  const stale: string[] = [];
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isFile || !entry.name.endsWith(".md")) continue;
    const path = `${dir}${entry.name}`;
    const page = Deno.readTextFileSync(path);
    const next = withToc(page);
    if (next === page) continue;
    stale.push(`docs/${entry.name}`);
    if (!check) Deno.writeTextFileSync(path, next);
  }
  if (check && stale.length > 0) {
    console.error(`table of contents out of date in ${stale.join(", ")}: run deno task toc`);
    Deno.exit(1);
  }
}
