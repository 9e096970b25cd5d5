/**
 * The package version, as in `deno.json` (a test keeps the two equal).
 *
 * @module
 */

/** The package version served at `GET /api/version`. */
export const VERSION = "0.1.0";
