/**
 * What a caught value says, as one line for a log or an exception (internal).
 * `catch` hands over `unknown`: an `Error`, a string, anything.
 *
 * @module
 */

/**
 * The text of a caught value: an error's message (its name too with
 * `withName`, unless it is a plain `Error`), followed by its `cause` when
 * that says more (Deno hides a DNS failure in the cause of `fetch`'s
 * `TypeError`); anything else as `String(value)`.
 *
 * @example
 * ```ts
 * import { errorText } from "./_errors.ts";
 * if (errorText(new Error("boom")) !== "boom") throw new Error("plain message");
 * if (errorText("nope") !== "nope") throw new Error("a thrown string");
 * if (errorText(new RangeError("far"), true) !== "RangeError: far") throw new Error("named");
 * const dns = new TypeError("fetch failed", { cause: new Error("dns error: no such host") });
 * if (errorText(dns) !== "fetch failed (dns error: no such host)") throw new Error(errorText(dns));
 * ```
 */
export function errorText(err: unknown, withName = false): string {
  if (!(err instanceof Error)) return String(err);
  let text = withName && err.name !== "Error" ? `${err.name}: ${err.message}` : err.message;
  const cause = err.cause;
  if (cause !== undefined && cause !== null) {
    const why = cause instanceof Error ? cause.message : String(cause);
    if (why && !text.includes(why)) text += ` (${why})`;
  }
  return text;
}
