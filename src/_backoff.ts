/**
 * Retry waits, written once: every "try again later" in dback (Discord starts, gateway reconnects,
 * IDENTIFY failures, REST retries, Redis reconnects) doubles from a base up to a cap.
 *
 * @module
 */

/**
 * The wait before attempt `n` (1-based) of something that keeps failing: `base`, doubling, capped
 * at `max`; 0 when `n <= 0`.
 *
 * @example
 * ```ts
 * import { backoffStep } from "./_backoff.ts";
 * const waits = [0, 1, 2, 3, 4, 5].map((n) => backoffStep(n, 100, 1000));
 * if (waits.join() !== "0,100,200,400,800,1000") throw new Error(waits.join());
 * ```
 */
export function backoffStep(n: number, base: number, max: number): number {
  if (n <= 0) return 0;
  return Math.min(max, base * 2 ** Math.min(n - 1, 30));
}

/**
 * {@link backoffStep}, jittered down to between half of it and all of it, so that many clients
 * failing at once do not retry at once.
 *
 * @example
 * ```ts
 * import { jitteredBackoff } from "./_backoff.ts";
 * const w = jitteredBackoff(3, 100, 1000); // step 400: between 200 and 400
 * if (w < 200 || w > 400 || jitteredBackoff(0, 100, 1000) !== 0) throw new Error(String(w));
 * ```
 */
export function jitteredBackoff(n: number, base: number, max: number): number {
  const step = backoffStep(n, base, max);
  return Math.round(step / 2 + Math.random() * step / 2);
}
