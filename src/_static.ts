/**
 * Static files from one directory: streamed, never read whole; `/` is
 * `/index.html`; anything that resolves outside the directory (encoded `..`,
 * symlinks pointing out) is refused with 403. {@link normaliseRequestPath} is
 * the one check every request path passes, also before the `staticRequest`
 * hook sees it.
 *
 * @module
 */
import type { Stats } from "node:fs";
import { type FileHandle, open, realpath, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { errorText } from "./_errors.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".xml": "application/xml; charset=utf-8",
  ".png": "image/png",
  ".gif": "image/gif",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".otf": "font/otf",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".pdf": "application/pdf",
};

/** The content type served for a file name; `application/octet-stream` when unknown. */
export function contentType(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
}

function page(status: number, title: string): Response {
  return new Response(
    `<!doctype html><html><head><meta charset="utf-8"><title>${status} ${title}</title></head>` +
      `<body><h1>${status} ${title}</h1></body></html>\n`,
    { status, headers: { "content-type": "text/html; charset=utf-8" } },
  );
}

/** A small HTML error page. */
export function errorPage(
  status: 400 | 403 | 404 | 405 | 429 | 500 | 503,
  title: string,
): Response {
  return page(status, title);
}

/**
 * Check at start that a configured static directory is a readable directory
 * (a remote URL is not checked: it is fetched per request). Throws an
 * `Error` naming the path.
 *
 * @example
 * ```ts
 * import { checkStaticDir } from "./_static.ts";
 * await checkStaticDir(new URL("../public/", import.meta.url));
 * let refused = "";
 * try {
 *   await checkStaticDir(new URL(import.meta.url));
 * } catch (err) {
 *   refused = String(err);
 * }
 * if (!refused.endsWith("not a directory")) throw new Error(refused);
 * ```
 */
export async function checkStaticDir(dir: string | URL): Promise<void> {
  if (dir instanceof URL && dir.protocol !== "file:") return;
  const path = dir instanceof URL ? fileURLToPath(dir) : dir;
  let ok = false;
  try {
    ok = (await stat(path)).isDirectory();
  } catch (err) {
    throw new Error(`staticDir ${path}: ${errorText(err)}`);
  }
  if (!ok) throw new Error(`staticDir ${path}: not a directory`);
}

/** Something that answers GET/HEAD for static paths. */
export interface StaticSource {
  /** Answer a GET or HEAD for `pathname` (the URL's raw, still-encoded path). */
  serve(pathname: string, method: string): Promise<Response>;
}

/** The files of the built-in page (`public/`): the only ones fetched when it is remote. */
export const PAGE_FILES: readonly string[] = ["index.html", "app.js", "style.css"];

/**
 * The right source for a directory: files on disk, or (for a package loaded
 * over HTTPS) fetched once each and kept. `only` limits a remote source to
 * these file names.
 */
export function staticSource(root: string | URL, only?: readonly string[]): StaticSource {
  if (root instanceof URL && root.protocol !== "file:") return new RemoteFiles(root, only);
  return new StaticFiles(root);
}

/** Bytes kept of a remote file, at most. Larger ones are streamed each time. */
const CACHE_FILE_BYTES = 1024 * 1024;
/** Remote files kept, at most (oldest dropped first). */
const CACHE_FILES = 64;

/**
 * Files below a remote base URL: what the default page is when this package
 * is imported from JSR rather than run from a clone.
 */
export class RemoteFiles implements StaticSource {
  #base: URL;
  #only: ReadonlySet<string> | null;
  // Fetched once per file (a request never waits on the network twice for the same file).
  #cache = new Map<string, Promise<Uint8Array | "missing" | "large">>();

  /** `base` must end with `/`; `only`: the file names that exist (others are 404 without a fetch). */
  constructor(base: URL, only?: readonly string[]) {
    this.#base = base;
    this.#only = only ? new Set(only) : null;
  }

  /** Serve the file from memory, fetching it the first time; anything climbing out of the base is refused. */
  async serve(pathname: string, method: string): Promise<Response> {
    const checked = normaliseRequestPath(pathname);
    if (!checked.ok) return refusal(checked.status);
    const rel = checked.path.slice(1);
    const path = rel === "" || rel.endsWith("/") ? `${rel}index.html` : rel;
    if (this.#only && !this.#only.has(path)) return page(404, "Not Found");
    let kept = this.#cache.get(path);
    if (!kept) {
      kept = this.#fetchSmall(path);
      this.#cache.set(path, kept);
      if (this.#cache.size > CACHE_FILES) this.#cache.delete(this.#cache.keys().next().value!);
      // A failure is not kept: the next request tries again.
      kept.then((b) => b === "missing" && this.#cache.delete(path), () => this.#cache.delete(path));
    }
    const got = await kept.catch(() => "missing" as const);
    if (got === "missing") return page(404, "Not Found");
    if (got === "large") return await this.#stream(path, method);
    const headers = { "content-type": contentType(path), "x-content-type-options": "nosniff" };
    return new Response(method === "HEAD" ? null : got as BodyInit, { headers });
  }

  // The whole file when it is small enough to keep.
  async #fetchSmall(path: string): Promise<Uint8Array | "missing" | "large"> {
    const res = await fetch(new URL(path, this.#base));
    if (!res.ok) {
      await res.body?.cancel();
      return "missing";
    }
    const length = Number(res.headers.get("content-length") ?? NaN);
    if (!(length <= CACHE_FILE_BYTES)) {
      await res.body?.cancel();
      return "large";
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    return bytes.length <= CACHE_FILE_BYTES ? bytes : "large";
  }

  async #stream(path: string, method: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.#base));
    } catch {
      return page(404, "Not Found");
    }
    if (!res.ok) {
      await res.body?.cancel();
      return page(404, "Not Found");
    }
    const headers = { "content-type": contentType(path), "x-content-type-options": "nosniff" };
    if (method === "HEAD") {
      await res.body?.cancel();
      return new Response(null, { headers });
    }
    return new Response(res.body, { headers });
  }
}

/** Serves files below one directory (a path, or a `file:` URL). */
export class StaticFiles implements StaticSource {
  #root: string;
  #realRoot: Promise<string | null>;

  /** `root` must be a directory; it is resolved (symlinks too) once. */
  constructor(root: string | URL) {
    this.#root = resolve(typeof root === "string" ? root : fileURLToPath(root));
    this.#realRoot = realpath(this.#root).catch(() => null);
  }

  /** The directory served. */
  get root(): string {
    return this.#root;
  }

  /** Answer a GET or HEAD for `pathname` (the URL's raw, still-encoded path). */
  async serve(pathname: string, method: string): Promise<Response> {
    const checked = normaliseRequestPath(pathname);
    if (!checked.ok) return refusal(checked.status);
    const realRoot = await this.#realRoot;
    if (realRoot === null) return page(404, "Not Found");
    const asked = checked.path.endsWith("/") ? checked.path + "index.html" : checked.path;
    let found = await this.#find(asked, realRoot);
    if (found instanceof Response) return found;
    if (found.info.isDirectory() && !checked.path.endsWith("/")) {
      // `/a` naming a directory serves `/a/index.html`, once: the index itself
      // is never looked into further (a directory called `index.html` is a 404).
      found = await this.#find(asked + "/index.html", realRoot);
      if (found instanceof Response) return found;
    }
    const { info, real } = found;
    if (!info.isFile()) return page(404, "Not Found");
    const headers = {
      "content-type": contentType(real),
      "content-length": String(info.size),
      "x-content-type-options": "nosniff",
      "cache-control": "no-cache",
    };
    if (method === "HEAD") return new Response(null, { headers });
    return new Response(fileStream(real), { headers });
  }

  /** Resolve a checked path below the root, or the error page to answer instead. */
  async #find(
    path: string,
    realRoot: string,
  ): Promise<{ info: Stats; real: string } | Response> {
    const candidate = resolve(join(this.#root, path));
    if (!inside(this.#root, candidate)) return page(403, "Forbidden");
    let real: string;
    try {
      real = await realpath(candidate);
    } catch {
      return page(404, "Not Found");
    }
    if (!inside(realRoot, real)) return page(403, "Forbidden");
    try {
      return { info: await stat(real), real };
    } catch {
      return page(404, "Not Found");
    }
  }
}

/** What {@link normaliseRequestPath} makes of a request path. */
export type CheckedPath =
  | {
    /** The path is acceptable. */
    ok: true;
    /**
     * Decoded and normalised: starts with `/`, no `.`, `..` or empty
     * segments, backslashes turned into `/`; ends with `/` when the request
     * named a directory (`/`, `/a/`, `/a/.`).
     */
    path: string;
  }
  | {
    /** The path is refused. */
    ok: false;
    /** 400 for a malformed encoding or a NUL, 403 for `..` climbing above the root. */
    status: 400 | 403;
  };

/**
 * Decode, check and normalise a URL path (raw, still percent-encoded) the way
 * the built-in static server does before it touches the disk: malformed
 * percent-encoding and NUL are refused with 400, `..` that would climb above
 * the root with 403, and `.`/`..` segments inside the root are resolved.
 *
 * @example
 * ```ts
 * import { normaliseRequestPath } from "./_static.ts";
 * const ok = normaliseRequestPath("/hook/a/%2e%2e/b%20c");
 * if (!ok.ok || ok.path !== "/hook/b c") throw new Error("expected /hook/b c");
 * const climb = normaliseRequestPath("/hook/../../etc/passwd");
 * if (climb.ok || climb.status !== 403) throw new Error("expected 403");
 * const nul = normaliseRequestPath("/a%00.html");
 * if (nul.ok || nul.status !== 400) throw new Error("expected 400");
 * ```
 */
export function normaliseRequestPath(pathname: string): CheckedPath {
  const decoded = decodePath(pathname);
  if (decoded === null) return { ok: false, status: 400 };
  const parts: string[] = [];
  const segments = decoded.split("/");
  for (const segment of segments) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (parts.length === 0) return { ok: false, status: 403 };
      parts.pop();
    } else parts.push(segment);
  }
  const last = segments[segments.length - 1];
  const dir = parts.length === 0 || last === "" || last === "." || last === "..";
  return { ok: true, path: "/" + parts.join("/") + (dir && parts.length ? "/" : "") };
}

function refusal(status: 400 | 403): Response {
  return status === 400 ? page(400, "Bad Request") : page(403, "Forbidden");
}

/**
 * Decode a URL path; `null` when it is malformed or holds a NUL. Backslashes
 * become slashes: they are separators on Windows, and `..\\` must not slip by.
 */
function decodePath(pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  return decoded.includes("\0") ? null : decoded.replaceAll("\\", "/");
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

const CHUNK = 64 * 1024;

/**
 * A file as a byte stream: opened on the first read, read one chunk per
 * pull (never whole), closed at the end or when the client goes away. Written
 * out rather than `Readable.toWeb`, whose stream on Deno can throw an
 * uncaught "cannot close or enqueue" when the client cancels mid-file.
 *
 * @example
 * ```ts
 * import { fileStream } from "./_static.ts";
 * const path = new URL("../public/index.html", import.meta.url);
 * const text = await new Response(fileStream(path)).text();
 * if (!text.includes("<html")) throw new Error("not the page");
 * const reader = fileStream(path).getReader();
 * const first = await reader.read();
 * await reader.cancel(); // closes the file; nothing is thrown later
 * if (first.done || first.value.byteLength === 0) throw new Error("no first chunk");
 * ```
 */
export function fileStream(path: string | URL): ReadableStream<Uint8Array> {
  let file: FileHandle | undefined;
  let done = false;
  const finish = async () => {
    done = true;
    const f = file;
    file = undefined;
    await f?.close().catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) return;
      try {
        file ??= await open(path, "r");
        const chunk = new Uint8Array(CHUNK);
        const { bytesRead } = await file.read(chunk, 0, CHUNK, null);
        if (done) return; // cancelled while reading
        if (bytesRead === 0) {
          await finish();
          controller.close();
        } else {
          controller.enqueue(bytesRead === CHUNK ? chunk : chunk.subarray(0, bytesRead));
        }
      } catch (err) {
        if (done) return;
        await finish();
        controller.error(err);
      }
    },
    cancel: finish,
  }, { highWaterMark: 0 });
}
