/**
 * Static files from one directory: streamed, never read whole; `/` is
 * `/index.html`; anything that resolves outside the directory (encoded `..`,
 * symlinks pointing out) is refused with 403.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

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

/** Something that answers GET/HEAD for static paths. */
export interface StaticSource {
  /** Answer a GET or HEAD for `pathname` (the URL's raw, still-encoded path). */
  serve(pathname: string, method: string): Promise<Response>;
}

/** The right source for a directory: files on disk, or (for a package loaded over HTTPS) fetched. */
export function staticSource(root: string | URL): StaticSource {
  if (root instanceof URL && root.protocol !== "file:") return new RemoteFiles(root);
  return new StaticFiles(root);
}

/**
 * Files below a remote base URL: what the default page is when this package
 * is imported from JSR rather than run from a clone.
 */
export class RemoteFiles implements StaticSource {
  #base: URL;

  /** `base` must end with `/`. */
  constructor(base: URL) {
    this.#base = base;
  }

  /** Fetch the file; anything trying to climb out of the base is refused. */
  async serve(pathname: string, method: string): Promise<Response> {
    const decoded = decodePath(pathname);
    if (decoded === null) return page(400, "Bad Request");
    const parts = decoded.split("/");
    if (parts.some((p) => p === "..")) return page(403, "Forbidden");
    const rel = parts.filter((p) => p !== "" && p !== ".").join("/") || "index.html";
    const path = decoded.endsWith("/") && rel !== "index.html" ? `${rel}/index.html` : rel;
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
    let decoded = decodePath(pathname);
    if (decoded === null) return page(400, "Bad Request");
    if (decoded.endsWith("/")) decoded += "index.html";
    const realRoot = await this.#realRoot;
    if (realRoot === null) return page(404, "Not Found");
    const candidate = resolve(join(this.#root, decoded));
    if (!inside(this.#root, candidate)) return page(403, "Forbidden");
    let real: string;
    try {
      real = await realpath(candidate);
    } catch {
      return page(404, "Not Found");
    }
    if (!inside(realRoot, real)) return page(403, "Forbidden");
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(real);
    } catch {
      return page(404, "Not Found");
    }
    if (info.isDirectory()) return this.serve(pathname.replace(/\/?$/, "/"), method);
    if (!info.isFile()) return page(404, "Not Found");
    const headers = {
      "content-type": contentType(real),
      "content-length": String(info.size),
      "x-content-type-options": "nosniff",
      "cache-control": "no-cache",
    };
    if (method === "HEAD") return new Response(null, { headers });
    // Opened lazily and closed when the body ends or the client goes away.
    const body = Readable.toWeb(createReadStream(real)) as ReadableStream<Uint8Array>;
    return new Response(body, { headers });
  }
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
