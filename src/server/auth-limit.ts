import { MemexError } from '../core/index.js';

/**
 * Counts failed authentications per client address in fixed windows. A blocked address is refused
 * before its key is even looked at, so guessing stays slow whatever the guesses are. Memory is
 * bounded: at most `maxAddresses` are tracked, expired windows go first, then the oldest.
 */
export class FailedAuthLimiter {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();

  constructor(
    private readonly limit: { max: number; windowMs: number },
    private readonly maxAddresses = 100_000,
  ) {}

  /** Throws MEMEX_RATE_LIMITED when the address has failed `max` times in its current window. */
  check(address: string, now = Date.now()): void {
    const window = this.windows.get(address);
    if (!window || window.resetAt <= now || window.failures < this.limit.max) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((window.resetAt - now) / 1000));
    throw new MemexError('MEMEX_RATE_LIMITED', `more than ${this.limit.max} failed authentications from this address in ${this.limit.windowMs} ms`, {
      details: { limit: this.limit.max, retryAfterSeconds },
    });
  }

  /** Counts a failure of the address. */
  fail(address: string, now = Date.now()): void {
    const window = this.windows.get(address);
    if (window && window.resetAt > now) {
      window.failures++;
      return;
    }
    if (this.windows.size >= this.maxAddresses) this.prune(now);
    this.windows.delete(address);
    this.windows.set(address, { failures: 1, resetAt: now + this.limit.windowMs });
  }

  private prune(now: number): void {
    for (const [address, window] of this.windows) if (window.resetAt <= now) this.windows.delete(address);
    // Still full: forget the oldest windows (Map keeps insertion order).
    for (const address of this.windows.keys()) {
      if (this.windows.size < this.maxAddresses) break;
      this.windows.delete(address);
    }
  }
}
