/**
 * One-line logs with a timestamp, a level and (where there is one) a
 * connection id. Secrets never reach this module: callers log ids and
 * outcomes, never tokens or passwords.
 *
 * @module
 */

/** Log levels, most verbose first; `silent` logs nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** The levels, in order. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** One log line, before formatting. */
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

/** Where log records go. The default writes one formatted line to stdout/stderr. */
export type LogSink = (record: LogRecord) => void;

/** Format a record as `2026-01-01T00:00:00.000Z INFO  [c1] message`. */
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
  #min: number;
  #sink: LogSink;

  /** Create a logger that drops records below `level`. */
  constructor(level: LogLevel = "info", sink: LogSink = consoleSink) {
    this.#min = LOG_LEVELS.indexOf(level);
    this.#sink = sink;
  }

  /** Whether records of `level` are written; lets hot paths skip building messages. */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#min;
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
