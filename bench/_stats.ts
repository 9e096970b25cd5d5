// Pure statistics over what the load generators report: latency percentiles
// from their log-bucketed histograms, and medians of repeated windows.

/** Width of one latency histogram bucket: 1 % (the same constant as loadgen/worker.ts). */
const LN_STEP = Math.log(1.01);

/** Latency percentiles, in milliseconds. */
export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

/**
 * Percentiles (ms) from merged 1 %-wide histograms of µs; `maxUs` is the
 * largest latency any generator saw (the histogram only knows its bucket).
 */
export function percentiles(hists: Record<string, number>[], maxUs: number): Latency {
  const merged = new Map<number, number>();
  let total = 0;
  for (const h of hists) {
    for (const [k, v] of Object.entries(h)) {
      merged.set(Number(k), (merged.get(Number(k)) ?? 0) + v);
      total += v;
    }
  }
  const keys = [...merged.keys()].sort((a, b) => a - b);
  const at = (p: number) => {
    if (total === 0) return NaN;
    let seen = 0;
    for (const k of keys) {
      seen += merged.get(k)!;
      if (seen >= p * total) return Math.exp((k + 0.5) * LN_STEP) / 1000;
    }
    return maxUs / 1000;
  };
  return { p50: at(0.5), p99: at(0.99), max: maxUs / 1000 };
}

/** Median of the numbers that are not NaN (NaN when there are none). */
export function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

/** The value at fraction `p` of an ascending list (NaN when empty). */
export function pick(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
}
