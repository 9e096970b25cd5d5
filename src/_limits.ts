/**
 * Small counting tools for limits (internal): a token bucket and the UTF-8
 * size of a string measured without encoding a copy of it.
 *
 * @module
 */

/** A token bucket: `rate` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now = performance.now()) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Take `n` tokens if there are that many; `false` (and nothing taken) otherwise. */
  take(n = 1, now = performance.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000);
    this.#at = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Whether the bucket is full again (the client has been calm for a while). */
  full(now = performance.now()): boolean {
    return Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000) >=
      this.#burst;
  }
}

/** UTF-8 size of a string, counted without encoding a copy of a possibly huge frame. */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * A string's size for a limit check: exact when it might exceed `limit`,
 * else its length (it is then certainly within the limit, and scanning a
 * small frame would only cost time).
 */
export function sizeForLimit(s: string, limit: number): number {
  return s.length * 3 <= limit ? s.length : utf8Length(s);
}
