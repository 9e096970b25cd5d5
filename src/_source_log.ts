/**
 * {@link SourceLogger}: the logger a data source writes to. A source is built
 * before the server that runs it, so its parts get this logger at
 * construction and it switches to the server's logger when `start(sink,
 * context)` hands that over; a source given its own `logSink` keeps it.
 *
 * @module
 */
import { consoleSink, LOG_LEVELS, Logger, type LogLevel, type LogSink } from "./log.ts";
import type { SourceContext } from "./source.ts";

/**
 * A {@link Logger} that writes to the server's logger once attached.
 *
 * - `sink` given: the source's own level and sink, always (the caller chose them).
 * - otherwise, after {@link SourceLogger.attach} with a context: the server's
 *   logger (its level and sink), after the source's own `level` if one was given;
 *   a line's tag (e.g. `discord`) leads the message as `[discord] …`, so the
 *   formatted line reads as it does with the source's own logger.
 * - otherwise (started without a server, or not yet started): `level` (default
 *   `info`) to the console.
 *
 * @example
 * ```ts
 * import type { LogRecord } from "./log.ts";
 * import { SourceLogger } from "./_source_log.ts";
 * const server: string[] = [];
 * const log = new SourceLogger(undefined, undefined);
 * log.attach({
 *   log: {
 *     debug: (m) => server.push(`debug ${m}`),
 *     info: (m) => server.push(`info ${m}`),
 *     warn: (m) => server.push(`warn ${m}`),
 *     error: (m) => server.push(`error ${m}`),
 *   },
 * });
 * log.debug("READY", "shard 1");
 * if (server.join() !== "debug [shard 1] READY") throw new Error(server.join());
 *
 * const own: LogRecord[] = [];
 * const mine = new SourceLogger("warn", (r) => own.push(r));
 * mine.attach({ log: { debug() {}, info() {}, warn() {}, error() {} } });
 * mine.info("dropped by the source's own level");
 * mine.warn("kept", "discord");
 * if (own.length !== 1 || own[0].conn !== "discord") throw new Error(JSON.stringify(own));
 * ```
 */
export class SourceLogger extends Logger {
  #own: boolean;
  /** Lines below this level are dropped before they reach the server's logger. */
  #min: number;
  #server: SourceContext["log"] | undefined;

  /** `level` and `sink` as the user gave them to the source (`undefined` when not given). */
  constructor(level: LogLevel | undefined, sink: LogSink | undefined) {
    super(level ?? "info", sink ?? consoleSink);
    this.#own = sink !== undefined;
    this.#min = level === undefined ? 0 : LOG_LEVELS.indexOf(level);
  }

  /** Write to the server's logger from now on, unless the source has its own sink. */
  attach(context: SourceContext | undefined): void {
    if (context && !this.#own) this.#server = context.log;
  }

  /** Whether a line of `level` may be written (the server's logger may still drop it). */
  override enabled(level: Exclude<LogLevel, "silent">): boolean {
    return this.#server ? LOG_LEVELS.indexOf(level) >= this.#min : super.enabled(level);
  }

  /** Write a record: to the server's logger once attached, else as a plain {@link Logger}. */
  override log(level: Exclude<LogLevel, "silent">, message: string, conn?: string): void {
    const server = this.#server;
    if (!server) return super.log(level, message, conn);
    if (!this.enabled(level)) return;
    server[level](conn ? `[${conn}] ${message}` : message);
  }
}
