/**
 * The one way input is checked at a boundary (internal): parse with a zod
 * schema, and on failure throw a `TypeError` whose text names the first
 * offending fields in one short line.
 *
 * @module
 */
import type { z } from "zod";

/**
 * Format a zod error as one short line for logs and exceptions: at most three
 * issues, each as `path: message`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { describeZodError } from "./_zod.ts";
 * const r = z.object({ port: z.number() }).safeParse({ port: "x" });
 * if (r.success) throw new Error("must fail");
 * const line = describeZodError(r.error);
 * if (!line.startsWith("port: ")) throw new Error(line);
 * ```
 */
export function describeZodError(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((i) =>
    `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`
  ).join("; ");
}

/**
 * Parse `value` with `schema`; on failure throw a `TypeError` reading
 * `<what>: <path>: <message>`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseOrThrow } from "./_zod.ts";
 * const port = z.number().int();
 * if (parseOrThrow(port, 8080, "port") !== 8080) throw new Error("valid input must pass");
 * let error = "";
 * try {
 *   parseOrThrow(port, 1.5, "port");
 * } catch (err) {
 *   error = err instanceof TypeError ? err.message : "";
 * }
 * if (!error.startsWith("port: (root): ")) throw new Error(error);
 * ```
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new TypeError(`${what}: ${describeZodError(r.error)}`);
  return r.data;
}
