/**
 * The `dback` command line: parse and check flags, start a
 * {@link WebSocketServer} (mock data unless hooks are given), and shut down
 * cleanly on SIGINT/SIGTERM.
 *
 * ```sh
 * deno run -A jsr:@dzone/dback/cli --port 3000
 * ```
 *
 * @module
 */
import process from "node:process";
import type { Callbacks } from "./callbacks.ts";
import { errorText } from "./_errors.ts";
import { intFlag, parseFlags, shutdownSignal } from "./_flags.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import type { ServerOptions } from "./options.ts";
import {
  loadServerFiles,
  SERVER_FLAG_CONFIG,
  SERVER_FLAGS_USAGE,
  serverFlags,
  serverFlagsSchema,
} from "./_server_flags.ts";
import { WebSocketServer } from "./server.ts";
import { MockSource } from "./sources/mock.ts";
import { VERSION } from "./version.ts";
import { loadRedisEntry } from "./_redis_entry.ts";

/** The text `--help` prints. */
export const USAGE: string =
  `dback ${VERSION}: the d-zone backend (WebSocket + static files on one port)

Usage: deno run -A examples/main.ts [options]        (from a clone; or: deno task start)
       bun run examples/main.ts [options]            (from a clone, on Bun)
       node examples/main.ts [options]               (from a clone, on Node.js >= 22.18)
       deno run -A jsr:@dzone/dback/cli [options]    (from JSR)

Options:
${SERVER_FLAGS_USAGE}

Mock world:
  --presence-interval <ms>     mock presence change period (default 4000)
  --message-interval <ms>      mock chat message period (default 5000)

With no data hooks the server runs the mock world of PROTOCOL.md. Point the
d-zone client at it with ?socketURL=ws://localhost:3000
`;

/** What the command line asked for. */
export type CliCommand =
  | { kind: "help" }
  | { kind: "version" }
  | {
    kind: "run";
    port: number;
    hostname: string;
    staticDir?: string;
    logLevel?: LogLevel;
    /** Options set by flags (limits, origins, proxies, metrics). */
    options: ServerOptions;
    tlsFiles?: { cert: string; key: string };
    presenceIntervalMs?: number;
    messageIntervalMs?: number;
    redis?: { url: string; namespace?: string; leaseMs?: number };
  }
  | { kind: "error"; message: string };

const flagsSchema = serverFlagsSchema.extend({
  "presence-interval": intFlag("presence-interval", 10, 86_400_000).optional(),
  "message-interval": intFlag("message-interval", 10, 86_400_000).optional(),
});

/**
 * Parse command-line arguments. Never throws; bad input gives `kind: "error"`.
 *
 * @example
 * ```ts
 * import { parseCli } from "@dzone/dback/cli";
 * const cmd = parseCli(["--port", "0", "--max-connections-per-ip", "2"]);
 * if (cmd.kind !== "run" || cmd.port !== 0 || cmd.hostname !== "localhost") throw new Error("unexpected");
 * if (cmd.options.maxConnectionsPerIp !== 2) throw new Error("limit flag lost");
 * if (parseCli(["--port", "x", "--help"]).kind !== "help") throw new Error("--help wins");
 * ```
 */
export function parseCli(args: string[]): CliCommand {
  // Asking for help is never an error, whatever else is on the line.
  if (args.includes("--help") || args.includes("-h")) return { kind: "help" };
  const parsed = parseFlags(args, {
    ...SERVER_FLAG_CONFIG,
    "presence-interval": { type: "string" },
    "message-interval": { type: "string" },
  }, flagsSchema);
  if (!parsed.ok) return { kind: "error", message: parsed.message };
  const f = parsed.value as Record<string, unknown>;
  if (f.help) return { kind: "help" };
  if (f.version) return { kind: "version" };
  const shared = serverFlags(f);
  if (!shared.ok) return { kind: "error", message: shared.message };
  const cmd: CliCommand = { kind: "run", ...shared.value };
  if (f["presence-interval"] !== undefined) {
    cmd.presenceIntervalMs = f["presence-interval"] as number;
  }
  if (f["message-interval"] !== undefined) cmd.messageIntervalMs = f["message-interval"] as number;
  return cmd;
}

/**
 * Run the command line: print help or version, or serve until SIGINT/SIGTERM.
 * Resolves with the process exit code. `callbacks` lets a script reuse the
 * CLI with its own data hooks.
 *
 * ```ts ignore
 * import process from "node:process";
 * import { main } from "@dzone/dback/cli";
 * process.exit(await main(process.argv.slice(2)));
 * ```
 *
 * @example
 * ```ts
 * import { VERSION } from "@dzone/dback";
 * import { main } from "@dzone/dback/cli";
 * const said: string[] = [];
 * const { log, error } = console;
 * console.log = console.error = (...parts: unknown[]) => void said.push(parts.join(" "));
 * let codes: number[];
 * try {
 *   codes = [await main(["--version"]), await main(["--port", "not-a-port"])];
 * } finally {
 *   Object.assign(console, { log, error });
 * }
 * if (codes.join() !== "0,2") throw new Error(`exit codes ${codes}`);
 * if (said[0] !== VERSION || !said[1].startsWith("error: --port")) throw new Error(said.join("\n"));
 * ```
 */
export async function main(args: string[], callbacks: Callbacks = {}): Promise<number> {
  const cmd = parseCli(args);
  switch (cmd.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(VERSION);
      return 0;
    case "error":
      console.error(`error: ${cmd.message}\n\n${USAGE}`);
      return 2;
  }
  const logLevel = cmd.logLevel ?? envLogLevel();
  if (typeof logLevel === "object") {
    console.error(`error: ${logLevel.error}\n\n${USAGE}`);
    return 2;
  }
  const files = await loadServerFiles(cmd);
  if (!files.ok) {
    console.error(`error: ${files.message}`);
    return 1;
  }
  const mock = new MockSource({
    presenceIntervalMs: cmd.presenceIntervalMs,
    messageIntervalMs: cmd.messageIntervalMs,
  });
  // Loaded only with --redis, so a single instance never loads (nor downloads) the Redis client.
  const cluster = cmd.redis
    ? (await loadRedisEntry()).redisCluster({
      ...cmd.redis,
      logLevel,
      source: mock,
      // The mock world ticks every cadence per watched server: silence for many
      // ticks means a source that was left stopped.
      watchdogMs: Math.max(
        10 * Math.max(cmd.presenceIntervalMs ?? 4000, cmd.messageIntervalMs ?? 5000),
        10_000,
      ),
    })
    : undefined;
  // Signals count from here: a SIGTERM while starting still exits cleanly.
  const shutdown = shutdownSignal();
  let server: WebSocketServer;
  try {
    server = new WebSocketServer({
      ...cmd.options,
      ...files.options,
      port: cmd.port,
      hostname: cmd.hostname,
      logLevel,
      callbacks,
      source: cluster?.source ?? mock,
      broker: cluster?.broker,
    });
  } catch (err) {
    shutdown.dispose();
    await cluster?.close();
    console.error(`error: ${errorText(err)}`);
    return 2;
  }
  try {
    await server.start();
  } catch (err) {
    shutdown.dispose();
    await cluster?.close();
    console.error(
      `error: cannot start on ${cmd.hostname}:${cmd.port}: ${errorText(err)}`,
    );
    return 1;
  }
  await shutdown.signalled;
  // A second signal while draining ends the process at once.
  shutdown.onAgain(() => {
    console.error("second signal: exiting without waiting for the drain");
    process.exit(1);
  });
  await server.stop();
  shutdown.dispose();
  return 0;
}

/** The log level from `DBACK_LOG_LEVEL`, when set; an invalid value is an error. */
function envLogLevel(): LogLevel | undefined | { error: string } {
  const v = process.env.DBACK_LOG_LEVEL;
  if (v === undefined || v === "") return undefined;
  return (LOG_LEVELS as readonly string[]).includes(v) ? v as LogLevel : {
    error: `DBACK_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")} (got ${JSON.stringify(v)})`,
  };
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
