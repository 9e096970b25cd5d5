/**
 * One-line logs with a timestamp, a level and (where there is one) a
 * connection id. Secrets never reach this module: callers log ids and
 * outcomes, never tokens or passwords.
 *
 * @module
 */
import { z } from "zod";

/**
 * Log levels, most verbose first; `silent` logs nothing.
 *
 * @example
 * ```ts
 * import { type LogLevel, type LogRecord, WebSocketServer } from "@dzone/dback";
 * const seen: Partial<Record<LogLevel, number>> = {};
 * for (const logLevel of ["info", "warn"] as LogLevel[]) {
 *   const lines: LogRecord[] = [];
 *   await using server = new WebSocketServer({ port: 0, logLevel, logSink: (r) => lines.push(r) });
 *   await server.start(); // logs "listening on …" at info
 *   seen[logLevel] = lines.length;
 * }
 * if (seen.info !== 1 || seen.warn !== 0) throw new Error(JSON.stringify(seen));
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** The levels, in order: the one list every option, flag and environment variable is checked against. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** Schema of a {@link LogLevel}, for option schemas. */
export const logLevelSchema: z.ZodType<LogLevel> = z.enum(
  LOG_LEVELS as [LogLevel, ...LogLevel[]],
);

/**
 * One log line, before formatting.
 *
 * @example
 * ```ts
 * import { type LogRecord, WebSocketServer } from "@dzone/dback";
 * const records: LogRecord[] = [];
 * await using server = new WebSocketServer({ port: 0, logSink: (r) => records.push(r) });
 * await server.start();
 * const [r] = records;
 * if (r.level !== "info" || !r.message.startsWith("dback ") || r.conn !== undefined) {
 *   throw new Error(JSON.stringify(r));
 * }
 * if (!(r.time instanceof Date)) throw new Error("time is a Date");
 * ```
 */
export interface LogRecord {
  /** When it happened. */
  time: Date;
  /** Severity. */
  level: Exclude<LogLevel, "silent">;
  /** Connection id such as `c12`, when the line is about one connection. */
  conn?: string;
  /** What happened. */
  message: string;
}

/**
 * Where log records go. The default writes one formatted line to stdout/stderr.
 *
 * @example
 * ```ts
 * import { type LogRecord, type LogSink, WebSocketServer } from "@dzone/dback";
 * const records: LogRecord[] = [];
 * const sink: LogSink = (r) => records.push(r);
 * await using server = new WebSocketServer({ port: 0, hostname: "127.0.0.1", logSink: sink });
 * await server.start();
 * if (!records.some((r) => r.message.includes("listening on"))) throw new Error("not logged");
 * ```
 */
export type LogSink = (record: LogRecord) => void;

/**
 * Format a record as `2026-01-01T00:00:00.000Z INFO  [c1] message`.
 *
 * @example
 * ```ts
 * import { formatLogRecord } from "@dzone/dback";
 * const line = formatLogRecord({ time: new Date(0), level: "info", conn: "c1", message: "hi" });
 * if (line !== "1970-01-01T00:00:00.000Z INFO  [c1] hi") throw new Error(line);
 * ```
 */
export function formatLogRecord(r: LogRecord): string {
  return `${r.time.toISOString()} ${r.level.toUpperCase().padEnd(5)} ${
    r.conn ? `[${r.conn}] ` : ""
  }${r.message}`;
}

/** The default sink: errors and warnings to stderr, the rest to stdout. */
export const consoleSink: LogSink = (r) => {
  const line = formatLogRecord(r);
  if (r.level === "error" || r.level === "warn") console.error(line);
  else console.log(line);
};

/** A level-filtered logger. */
export class Logger {
  // Asked on hot paths (every upgrade, join and close): a lookup, not a search of the level list.
  #on: Record<Exclude<LogLevel, "silent">, boolean>;
  #sink: LogSink;

  /** Create a logger that drops records below `level`. */
  constructor(level: LogLevel = "info", sink: LogSink = consoleSink) {
    const min = LOG_LEVELS.indexOf(level);
    const on = (l: LogLevel) => LOG_LEVELS.indexOf(l) >= min;
    this.#on = { debug: on("debug"), info: on("info"), warn: on("warn"), error: on("error") };
    this.#sink = sink;
  }

  /** Whether records of `level` are written; lets hot paths skip building messages. */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return this.#on[level];
  }

  /** Write a record when its level is enabled. */
  log(level: Exclude<LogLevel, "silent">, message: string, conn?: string): void {
    if (!this.enabled(level)) return;
    this.#sink({ time: new Date(), level, conn, message });
  }

  /** Debug detail, off by default. */
  debug(message: string, conn?: string): void {
    this.log("debug", message, conn);
  }
  /** Normal lifecycle events: listen, connect, join, leave. */
  info(message: string, conn?: string): void {
    this.log("info", message, conn);
  }
  /** Something a client or callback did wrong, handled. */
  warn(message: string, conn?: string): void {
    this.log("warn", message, conn);
  }
  /** Something the operator should look at. */
  error(message: string, conn?: string): void {
    this.log("error", message, conn);
  }
}
