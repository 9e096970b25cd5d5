// Seeded random streams for property tests: the same inputs every run, so a failure repeats.

/** mulberry32: a seeded stream of unsigned 32-bit integers (every bit mixes, low ones too). */
export function mulberry32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Integers in `[0, n)` from a seeded mulberry32 stream. */
export function seededInts(seed: number): (n: number) => number {
  const next = mulberry32(seed);
  return (n) => next() % n;
}

/** xorshift32: a seeded stream of numbers in `[0, 1)`. */
export function xorshift32(seed: number): () => number {
  return () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
}
