/**
 * What every command of this package does with its process: parse flags
 * strictly and check them with zod, and wait for SIGINT/SIGTERM to shut down.
 *
 * @module
 */
import process from "node:process";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { z } from "zod";
import { errorText } from "./_errors.ts";

/** Parsed flags, or the one-line problem to show with the usage. */
export type FlagsResult<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Parse `args` against `options` (unknown flags and positionals are errors)
 * and check the values with `schema`. Never throws.
 */
export function parseFlags<T>(
  args: string[],
  options: ParseArgsOptionsConfig,
  schema: z.ZodType<T>,
): FlagsResult<T> {
  let values: unknown;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    return { ok: false, message: errorText(err) };
  }
  const parsed = schema.safeParse(values);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, message: parsed.error.issues[0].message };
}

/**
 * One Ctrl-C can arrive more than once: the terminal signals the whole
 * process group, and `deno task` forwards the SIGINT it got to its child.
 * Repeats this soon after the first are that same press, not a second one.
 */
export const ECHO_MS = 500;

/**
 * Resolves with the first SIGINT or SIGTERM; `onAgain` hears a later one (a
 * repeat within {@link ECHO_MS} of the first is the same press, and ignored);
 * `dispose()` stops listening.
 */
export function shutdownSignal(now: () => number = () => performance.now()): {
  signalled: Promise<NodeJS.Signals>;
  onAgain(fn: () => void): void;
  dispose(): void;
} {
  const { promise, resolve } = Promise.withResolvers<NodeJS.Signals>();
  let firstAt: number | undefined;
  let again = () => {};
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = now();
      resolve(signal);
    } else if (now() - firstAt >= ECHO_MS) again();
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) process.on(s, handler);
  return {
    signalled: promise,
    onAgain: (fn) => again = fn,
    dispose: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}

/** A whole-number flag between `min` and `max`, with messages that name the flag. */
export function intFlag(name: string, min: number, max: number): z.ZodType<number, string> {
  return z.string().regex(/^\d+$/, `--${name} must be a whole number`).transform(Number).pipe(
    z.number().min(min, `--${name} must be at least ${min}`).max(
      max,
      `--${name} must be at most ${max}`,
    ),
  );
}
