/**
 * The HTTP side of the one port: `/api/version`, `/healthz`, `/metrics`,
 * static files (after the `staticRequest` hook), and WebSocket upgrades
 * handed to admission. Only GET and HEAD are answered; anything else is 405.
 *
 * @module
 */
import { type CallbackRunner, staticResultSchema } from "./_callback_runner.ts";
import type { Callbacks, StaticResult } from "./callbacks.ts";
import { errorPage, normaliseRequestPath, type StaticSource } from "./_static.ts";
import type { RequestContext } from "./transport/types.ts";
import { VERSION } from "./version.ts";

/** What the routes need from the rest of the server. */
export interface RouteDeps {
  /** Whether the server is serving (not draining). */
  healthy(): boolean;
  /** The `/metrics` text. */
  metrics(): string;
  /** The hooks (read at each request). */
  hooks: Readonly<Callbacks>;
  /** Runs the `staticRequest` hook with its deadline. */
  runner: CallbackRunner;
  /** Static files, or `null` when disabled. */
  files: StaticSource | null;
  /** Handle a WebSocket upgrade request. */
  upgrade(req: Request, ctx: RequestContext): Response;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

/** The request handler of the whole port. */
export function routes(deps: RouteDeps): (req: Request, ctx: RequestContext) => Promise<Response> {
  return async (req, ctx) => {
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return deps.upgrade(req, ctx);
    if (req.method !== "GET" && req.method !== "HEAD") {
      const res = errorPage(405, "Method Not Allowed");
      res.headers.set("allow", "GET, HEAD");
      return res;
    }
    const path = new URL(req.url).pathname;
    const head = req.method === "HEAD";
    switch (path) {
      case "/api/version":
        return Response.json({ version: VERSION });
      case "/healthz": {
        const ok = deps.healthy();
        return new Response(head ? null : ok ? "ok\n" : "draining\n", {
          status: ok ? 200 : 503,
          headers: TEXT,
        });
      }
      case "/metrics":
        return new Response(head ? null : deps.metrics(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
    }
    return await serveStatic(deps, path, req.method);
  };
}

async function serveStatic(deps: RouteDeps, path: string, method: string): Promise<Response> {
  const hook = deps.hooks.staticRequest;
  if (hook) {
    // The hook sees the path the built-in server would use, or nothing at all.
    const checked = normaliseRequestPath(path);
    if (!checked.ok) {
      return checked.status === 400 ? errorPage(400, "Bad Request") : errorPage(403, "Forbidden");
    }
    const r = await deps.runner.run("staticRequest", () => hook(checked.path), staticResultSchema);
    if (!r.ok) return errorPage(500, "Internal Server Error");
    if (r.value) return toResponse(r.value, method);
  }
  if (!deps.files) return errorPage(404, "Not Found");
  return await deps.files.serve(path, method);
}

function toResponse(result: StaticResult, method: string): Response {
  if (result instanceof Response) return result;
  const [type, content] = result;
  return new Response(method === "HEAD" ? null : content as BodyInit, {
    headers: { "content-type": type },
  });
}
