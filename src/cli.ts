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
import { stat } from "node:fs/promises";
import process from "node:process";
import { z } from "zod";
import type { Callbacks } from "./callbacks.ts";
import { errorText } from "./_errors.ts";
import { intFlag, parseFlags, shutdownSignal } from "./_flags.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { WebSocketServer } from "./server.ts";
import { MockSource } from "./sources/mock.ts";
import { VERSION } from "./version.ts";

/** The text `--help` prints. */
export const USAGE: string =
  `dback ${VERSION}: the d-zone backend (WebSocket + static files on one port)

Usage: deno run -A examples/main.ts [options]        (from a clone; or: deno task start)
       bun run examples/main.ts [options]            (from a clone, on Bun)
       deno run -A jsr:@dzone/dback/cli [options]    (from JSR)

Options:
  --port <n>                 TCP port, 0 picks a free one (default 3000)
  --host <name>              interface to bind (default localhost; 0.0.0.0 for all)
  --static-dir <dir>         directory of static files (default: the built-in page);
                             must exist
  --log-level <level>        debug, info, warn, error or silent (default info,
                             or the DBACK_LOG_LEVEL environment variable)
  --allowed-origin <origin>  accept WebSocket upgrades only from this Origin;
                             repeat for more (default: any origin)
  --presence-interval <ms>   mock presence change period (default 4000)
  --message-interval <ms>    mock chat message period (default 5000)
  --redis <url>              join a cluster over Redis (redis://host:port): every
                             instance serves viewers, one publishes (see README
                             "Running several instances")
  --redis-namespace <ns>     key and channel prefix in Redis (default dback)
  --redis-lease-ms <ms>      publisher lease; a dead publisher is replaced within
                             about 1.3x this (default 5000)
  --version                  print the version and exit
  -h, --help                 print this help and exit

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
    allowedOrigins?: string[];
    presenceIntervalMs?: number;
    messageIntervalMs?: number;
    redis?: { url: string; namespace?: string; leaseMs?: number };
  }
  | { kind: "error"; message: string };

const flagsSchema = z.object({
  port: intFlag("port", 0, 65535).optional(),
  host: z.string().min(1, "--host must not be empty").optional(),
  "static-dir": z.string().min(1, "--static-dir must not be empty").optional(),
  "log-level": z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]], {
    error: `--log-level must be one of ${LOG_LEVELS.join(", ")}`,
  }).optional(),
  "allowed-origin": z.array(z.string().min(1)).optional(),
  "presence-interval": intFlag("presence-interval", 10, 86_400_000).optional(),
  "message-interval": intFlag("message-interval", 10, 86_400_000).optional(),
  redis: z.string().regex(/^rediss?:\/\/\S+$/, "--redis must be redis://host:port").optional(),
  "redis-namespace": z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "--redis-namespace must be 1-64 letters, digits, '_', '.' or '-'",
  ).optional(),
  "redis-lease-ms": intFlag("redis-lease-ms", 300, 600_000).optional(),
  version: z.boolean().optional(),
  help: z.boolean().optional(),
});

/**
 * Parse command-line arguments. Never throws; bad input gives `kind: "error"`.
 *
 * @example
 * ```ts
 * import { parseCli } from "@dzone/dback/cli";
 * const cmd = parseCli(["--port", "0"]);
 * if (cmd.kind !== "run" || cmd.port !== 0 || cmd.hostname !== "localhost") throw new Error("unexpected");
 * if (parseCli(["--port", "x", "--help"]).kind !== "help") throw new Error("--help wins");
 * ```
 */
export function parseCli(args: string[]): CliCommand {
  // Asking for help is never an error, whatever else is on the line.
  if (args.includes("--help") || args.includes("-h")) return { kind: "help" };
  const parsed = parseFlags(args, {
    port: { type: "string" },
    host: { type: "string" },
    "static-dir": { type: "string" },
    "log-level": { type: "string" },
    "allowed-origin": { type: "string", multiple: true },
    "presence-interval": { type: "string" },
    "message-interval": { type: "string" },
    redis: { type: "string" },
    "redis-namespace": { type: "string" },
    "redis-lease-ms": { type: "string" },
    version: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, flagsSchema);
  if (!parsed.ok) return { kind: "error", message: parsed.message };
  const f = parsed.value;
  if (f.help) return { kind: "help" };
  if (f.version) return { kind: "version" };
  const cmd: CliCommand = { kind: "run", port: f.port ?? 3000, hostname: f.host ?? "localhost" };
  if (f["static-dir"] !== undefined) cmd.staticDir = f["static-dir"];
  if (f["log-level"] !== undefined) cmd.logLevel = f["log-level"];
  if (f["allowed-origin"] !== undefined) cmd.allowedOrigins = f["allowed-origin"];
  if (f["presence-interval"] !== undefined) cmd.presenceIntervalMs = f["presence-interval"];
  if (f["message-interval"] !== undefined) cmd.messageIntervalMs = f["message-interval"];
  if (f.redis !== undefined) {
    cmd.redis = { url: f.redis, namespace: f["redis-namespace"], leaseMs: f["redis-lease-ms"] };
  } else if (f["redis-namespace"] !== undefined || f["redis-lease-ms"] !== undefined) {
    return { kind: "error", message: "--redis-namespace and --redis-lease-ms need --redis" };
  }
  return cmd;
}

/**
 * Run the command line: print help or version, or serve until SIGINT/SIGTERM.
 * Resolves with the process exit code. `callbacks` lets a script reuse the
 * CLI with its own data hooks.
 *
 * @example
 * ```ts ignore
 * import process from "node:process";
 * import { main } from "@dzone/dback/cli";
 * process.exit(await main(process.argv.slice(2)));
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
  if (cmd.staticDir !== undefined) {
    let what = "no such directory";
    try {
      if ((await stat(cmd.staticDir)).isDirectory()) what = "";
      else what = "not a directory (it is a file)";
    } catch {
      // no such directory
    }
    if (what) {
      console.error(`error: --static-dir ${cmd.staticDir}: ${what}`);
      return 1;
    }
  }
  const mock = new MockSource({
    presenceIntervalMs: cmd.presenceIntervalMs,
    messageIntervalMs: cmd.messageIntervalMs,
  });
  // Loaded only with --redis, so a single instance never loads the Redis client.
  const cluster = cmd.redis
    ? (await import("./cluster/mod.ts")).redisCluster({ ...cmd.redis, logLevel, source: mock })
    : undefined;
  // Signals count from here: a SIGTERM while starting still exits cleanly.
  const shutdown = shutdownSignal();
  let server: WebSocketServer;
  try {
    server = new WebSocketServer({
      port: cmd.port,
      hostname: cmd.hostname,
      staticDir: cmd.staticDir,
      logLevel,
      allowedOrigins: cmd.allowedOrigins,
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
