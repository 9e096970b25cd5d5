/**
 * What a caught value says, as one line for a log or an exception (internal).
 * `catch` hands over `unknown`: an `Error`, a string, anything.
 *
 * @module
 */

/**
 * The text of a caught value: an error's message (its name too with
 * `withName`, unless it is a plain `Error`), followed by the messages of its
 * `cause` chain (up to 4 deep, repeats skipped) as `: caused by …` — Deno
 * hides a DNS failure in the cause of `fetch`'s `TypeError`. Anything else
 * is `String(value)`.
 *
 * @example
 * ```ts
 * import { errorText } from "./_errors.ts";
 * if (errorText(new Error("boom")) !== "boom") throw new Error("plain message");
 * if (errorText("nope") !== "nope") throw new Error("a thrown string");
 * if (errorText(new RangeError("far"), true) !== "RangeError: far") throw new Error("named");
 * const dns = new TypeError("fetch failed", { cause: new Error("dns error: no such host") });
 * if (errorText(dns) !== "fetch failed: caused by dns error: no such host") {
 *   throw new Error(errorText(dns));
 * }
 * ```
 */
export function errorText(err: unknown, withName = false): string {
  if (!(err instanceof Error)) return String(err);
  const parts = [withName && err.name !== "Error" ? `${err.name}: ${err.message}` : err.message];
  let cause: unknown = err.cause;
  for (let depth = 1; cause !== undefined && cause !== null && depth < 4; depth++) {
    const text = cause instanceof Error ? cause.message : String(cause);
    if (text && !parts.some((p) => p.includes(text))) parts.push(text);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return parts.join(": caused by ");
}
