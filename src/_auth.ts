/**
 * The join decision for passworded servers, and the constant-time compare
 * for legacy passwords. Tokens and passwords are only compared here, never
 * logged.
 *
 * @module
 */
import type { ConnectRequest } from "./_client_frames.ts";
import { ERRORS } from "./protocol.ts";

const encoder = new TextEncoder();

/**
 * Compare two strings in time that depends only on their lengths, so a
 * network attacker cannot learn a password one character at a time.
 *
 * @example
 * ```ts
 * import { constantTimeEqual } from "./_auth.ts";
 * if (!constantTimeEqual("hunter2", "hunter2") || constantTimeEqual("hunter2", "hunter3")) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  // Compare against itself when lengths differ so the loop still runs.
  const other = x.length === y.length ? y : x;
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ other[i];
  return diff === 0;
}

/** How a join to a passworded server was decided. */
export type AuthOutcome = { ok: true; via: "discord" | "password" } | {
  ok: false;
  error: string;
};

/**
 * Decide a join to a passworded server. `validate` answers for a token and
 * user: `true`/`false`, or `undefined` when there is no way to validate.
 * Secure default: no validator and no matching legacy password means no.
 */
export async function authorise(
  request: ConnectRequest,
  legacyPassword: string | undefined,
  validate: (token: string, user: NonNullable<ConnectRequest["discordUser"]>) => Promise<
    boolean | undefined
  >,
): Promise<AuthOutcome> {
  if (request.discordToken !== undefined && request.discordUser !== undefined) {
    const verdict = await validate(request.discordToken, request.discordUser);
    if (verdict === true) return { ok: true, via: "discord" };
    if (verdict === false) return { ok: false, error: ERRORS.authFailed };
  }
  if (
    legacyPassword !== undefined && legacyPassword !== "" && request.password !== undefined &&
    constantTimeEqual(request.password, legacyPassword)
  ) {
    return { ok: true, via: "password" };
  }
  return { ok: false, error: ERRORS.authRequired };
}
