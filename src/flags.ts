/**
 * What every command of this package does with its process: parse flags
 * strictly and check them with zod, and wait for SIGINT/SIGTERM to shut down.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { z } from "zod";

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
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  const parsed = schema.safeParse(values);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, message: parsed.error.issues[0].message };
}

/** Resolves with the first SIGINT or SIGTERM; `dispose()` stops listening. */
export function shutdownSignal(): { signalled: Promise<Deno.Signal>; dispose(): void } {
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((s) => [s, () => resolve(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return {
    signalled: promise,
    dispose: () => {
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    },
  };
}
