// One server, on Deno (in this process) or on Bun or Node (a child process), for tests that
// must hold on every runtime. Options must be JSON for Bun and Node (no callbacks).
import type { LogRecord, ServerMap, ServerOptions } from "../../mod.ts";
import { RuntimeServer } from "../_fixtures/runtimes.ts";
import { startServer } from "../_fixtures/helpers.ts";

/** The runtimes every deploy test runs against. */
export const RUNTIMES = ["deno", "bun", "node", "deno-node"] as const;

/** A running server on one runtime. */
export interface Running extends AsyncDisposable {
  port: number;
  logs: LogRecord[];
  /** Calls of `validateDiscordUser` so far (with `denyLogins`). */
  validations(): Promise<number>;
}

/** Data hooks to run with: these servers (no users), and a login check that refuses everyone. */
export interface Hooks {
  servers: ServerMap;
  denyLogins?: boolean;
}

/** Start a server with `options` on `runtime` (127.0.0.1:0 unless the options say otherwise). */
export async function serveOn(
  runtime: (typeof RUNTIMES)[number],
  options: ServerOptions = {},
  hooks?: Hooks,
): Promise<Running> {
  type Snapshot = { callbacks: Record<string, { calls: number } | undefined> };
  const calls = (m: Snapshot) => m.callbacks.validateDiscordUser?.calls ?? 0;
  if (runtime === "deno") {
    const t = await startServer({
      ...options,
      ...(hooks
        ? {
          callbacks: {
            getServerData: () => hooks.servers,
            getUserData: () => ({}),
            ...(hooks.denyLogins ? { validateDiscordUser: () => false } : {}),
          },
        }
        : {}),
    });
    return {
      port: t.server.port,
      logs: t.logs,
      validations: () => Promise.resolve(calls(t.server.metrics as unknown as Snapshot)),
      [Symbol.asyncDispose]: () => t.server.stop(),
    };
  }
  const b = await RuntimeServer.start(runtime, {
    options,
    ...(hooks ? { servers: hooks.servers, denyLogins: hooks.denyLogins } : {}),
  });
  return {
    port: b.port,
    logs: b.logs,
    validations: async () => calls(await b.call<Snapshot>("metrics")),
    [Symbol.asyncDispose]: () => b[Symbol.asyncDispose](),
  };
}
