/**
 * Keeps the generated parts of docs/*.md and the benchmark pages (bench/README.md, bench/HISTORY.md)
 * true: each page's table of contents, between
 * `<!-- toc -->` and `<!-- /toc -->` (from its `##` and `###` headings, with the anchors GitHub
 * makes), and the list of modules between `<!-- modules -->` and `<!-- /modules -->` (each
 * module of `mod.ts` and `src/` with the first sentence of its header comment). Pages go through
 * `deno fmt` before they are compared or written. `--check` changes nothing and exits 1 when a
 * page is out of date, so `deno task check` catches a heading or a module added without its entry.
 *
 * ```sh
 * deno task toc            # rewrite the generated parts
 * deno task toc --check    # exit 1 if one is stale
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const USAGE = `Usage: deno task toc [--check]

Rewrites the tables of contents (<!-- toc -->) and module lists (<!-- modules -->) of docs/*.md,
bench/README.md and bench/HISTORY.md.
  --check    change nothing; exit 1 and name the pages that are out of date
  -h, --help print this help`;

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The benchmark pages, which carry a table of contents like the pages of docs/. */
export const BENCH_PAGES = ["bench/README.md", "bench/HISTORY.md"];

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
export function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** Replace what lies between `<!-- name -->` and `<!-- /name -->` (added when missing). */
function fill(page: string, name: string, body: (after: string) => string): string {
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const at = page.indexOf(open);
  if (at < 0) return page;
  const end = page.indexOf(close, at);
  const after = end < 0 ? page.slice(at + open.length) : page.slice(end + close.length);
  return `${page.slice(0, at)}${open}\n\n${body(after)}\n\n${close}${after}`;
}

/** The page with its table of contents (re)written; unchanged when it has no marker. */
export function withToc(page: string): string {
  return fill(page, "toc", (after) => {
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
    return lines.join("\n");
  });
}

/** The first sentence of a module's header comment (`//` lines or a `/** … *\/` block). */
export function headerSentence(source: string): string {
  const lines = source.replace(/^#!.*\n/, "").split("\n");
  const words: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith("/// <reference")) continue;
    const m = line.match(/^(?:\/\/+|\/\*\*?|\*\/?)\s?(.*?)(?:\s*\*\/)?$/);
    if (!m) break;
    const text = m[1].trim();
    if (text.startsWith("@")) break;
    if (text === "") {
      if (words.length > 0) break;
      continue;
    }
    words.push(text);
  }
  const all = words.join(" ").replace(/\{@link ([^}]+)\}/g, "`$1`");
  const end = all.search(/\.(\s|$)/);
  const sentence = end < 0 ? all : all.slice(0, end + 1);
  // A very long first sentence is cut where its colon introduces the details.
  const colon = sentence.search(/:\s/);
  return sentence.length > 160 && colon > 0 ? `${sentence.slice(0, colon)}.` : sentence;
}

async function moduleList(): Promise<string> {
  const files: string[] = ["mod.ts"];
  const walk = async (dir: string) => {
    const entries = [];
    for await (const e of Deno.readDir(`${ROOT}${dir}`)) entries.push(e);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk("src");
  const lines: string[] = [];
  for (const file of files) {
    const sentence = headerSentence(await Deno.readTextFile(`${ROOT}${file}`));
    lines.push(`- \`${file}\`: ${sentence || "(no header comment)"}`);
  }
  return lines.join("\n");
}

/** The page as `deno fmt` writes it. */
async function formatted(page: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(page));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
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
  const modules = await moduleList();
  const stale: string[] = [];
  const names = [...Deno.readDirSync(`${ROOT}docs`)].filter((e) => e.isFile).map((e) => e.name);
  const pages = [
    ...names.filter((n) => n.endsWith(".md")).sort().map((n) => `docs/${n}`),
    ...BENCH_PAGES,
  ];
  for (const name of pages) {
    const path = `${ROOT}${name}`;
    const page = Deno.readTextFileSync(path);
    if (!page.includes("<!-- toc -->") && !page.includes("<!-- modules -->")) continue;
    const next = await formatted(fill(withToc(page), "modules", () => modules));
    if (next === page) continue;
    stale.push(name);
    if (!check) Deno.writeTextFileSync(path, next);
  }
  if (check && stale.length > 0) {
    console.error(`out of date: ${stale.join(", ")}: run deno task toc`);
    Deno.exit(1);
  }
}
