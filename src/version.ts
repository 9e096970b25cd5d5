/**
 * The package version, as in `deno.json` (a test keeps the two equal).
 *
 * @module
 */

/**
 * The package version served at `GET /api/version`.
 *
 * @example
 * ```ts
 * import { VERSION } from "@dzone/dback";
 * if (!/^\d+\.\d+\.\d+/.test(VERSION)) throw new Error(VERSION);
 * ```
 */
export const VERSION = "0.1.0";
