// One server, on Deno (in this process) or on Bun or Node (a child process), for tests that
// must hold on every runtime. Options must be JSON for Bun and Node (no callbacks).
import type { LogRecord, ServerOptions } from "../../mod.ts";
import { RuntimeServer } from "../_fixtures/runtimes.ts";
import { startServer } from "../_fixtures/helpers.ts";

/** The runtimes every deploy test runs against. */
export const RUNTIMES = ["deno", "bun", "node"] as const;

/** A running server on one runtime. */
export interface Running extends AsyncDisposable {
  port: number;
  logs: LogRecord[];
}

/** Start a server with `options` on `runtime` (127.0.0.1:0 unless the options say otherwise). */
export async function serveOn(
  runtime: (typeof RUNTIMES)[number],
  options: ServerOptions = {},
): Promise<Running> {
  if (runtime === "deno") {
    const t = await startServer(options);
    return { port: t.server.port, logs: t.logs, [Symbol.asyncDispose]: () => t.server.stop() };
  }
  const b = await RuntimeServer.start(runtime, { options });
  return { port: b.port, logs: b.logs, [Symbol.asyncDispose]: () => b[Symbol.asyncDispose]() };
}
