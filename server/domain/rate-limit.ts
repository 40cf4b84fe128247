// Requests per minute per token (or per client address without a valid token), one limit
// shared by every process: each process counts locally and adds its hits to the store's
// counter in batches, so a read does not write. A bucket's hits go to the store when a
// batch fills (the request that fills it waits for the total) and at least once a second.
// Worst case, N processes together let through fewer than N × batch requests over the limit
// in a window: each decides alone on at most batch − 1 hits the others have not seen yet.
import type { RateLimitRepo } from "../data/rate-limit-repo.js";
import { RateLimited } from "./errors.js";

export interface RateLimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

const WINDOW_SECONDS = 60;
export const FLUSH_MS = 1000;

/** Hits counted locally before they must reach the store: 1 % of the limit (1, exact, below 200 a minute). */
export const batchFor = (limitPerMinute: number) => Math.max(1, Math.ceil(limitPerMinute / 100));

interface Counter {
  bucket: string;
  windowStart: number;
  /** The store's total at the last flush (every process's flushed hits). */
  stored: number;
  /** Hits being written right now. */
  inflight: number;
  /** Hits not yet written. */
  pending: number;
  /** Hits this process has counted (each request's `seq`), and how many the store has taken. */
  counted: number;
  flushed: number;
  /** The newest write: this process's hits `from`…`flushed` are the store's `base` + 1, + 2, … */
  last: { from: number; base: number };
  flushing: Promise<void> | null;
}

export interface RateLimiterOptions {
  now?: () => number;
  batch?: number;
  flushMs?: number;
}

export function createRateLimiter(repo: RateLimitRepo, limitPerMinute: number, options: RateLimiterOptions = {}) {
  const now = options.now ?? Date.now;
  const batch = options.batch ?? batchFor(limitPerMinute);
  const counters = new Map<string, Counter>();

  function flush(c: Counter): Promise<void> {
    if (c.flushing) return c.flushing;
    if (c.pending === 0) return Promise.resolve();
    const hits = c.pending;
    c.pending = 0;
    c.inflight = hits;
    c.flushing = repo.add(c.bucket, c.windowStart, hits).then(
      (total) => {
        c.stored = Math.max(c.stored, total);
        c.last = { from: c.flushed + 1, base: total - hits };
        c.flushed += hits;
        c.inflight = 0;
        c.flushing = null;
      },
      (err) => {
        // Not lost: counted again with the next flush.
        c.pending += hits;
        c.inflight = 0;
        c.flushing = null;
        throw err;
      },
    );
    return c.flushing;
  }

  /** Writes every pending count and forgets windows that have ended. */
  async function flushAll(): Promise<void> {
    const current = windowOf(now());
    await Promise.allSettled([...counters.values()].map(flush));
    for (const [key, c] of counters) {
      if (c.windowStart < current && c.pending === 0 && c.inflight === 0) counters.delete(key);
    }
  }

  const timer = setInterval(() => void flushAll(), options.flushMs ?? FLUSH_MS);
  timer.unref();

  return {
    limit: limitPerMinute,
    batch,
    /** Counts a request; throws RateLimited past the limit. */
    async consume(bucket: string): Promise<RateLimitState> {
      const seconds = Math.floor(now() / 1000);
      const windowStart = windowOf(seconds * 1000);
      const key = `${windowStart}\u0000${bucket}`;
      let c = counters.get(key);
      if (!c) counters.set(key, (c = { bucket, windowStart, stored: 0, inflight: 0, pending: 0, counted: 0, flushed: 0, last: { from: 1, base: 0 }, flushing: null }));
      const seq = ++c.counted;
      c.pending++;
      // Never decided beside a write of this counter: that would trust a total older than the
      // write and let more through than the bound. A request whose hit a write took is decided
      // by its place in the store's total, which that write returned (every waiter on it runs
      // before the next write can answer); any other, by the newest total plus its place here.
      while (seq > c.flushed && (c.flushing || c.pending >= batch)) await (c.flushing ?? flush(c));
      const hits = seq > c.flushed ? c.stored + seq - c.flushed : c.last.base + seq - c.last.from + 1;
      const resetSeconds = windowStart + WINDOW_SECONDS - seconds;
      if (hits > limitPerMinute) throw new RateLimited(limitPerMinute, resetSeconds);
      return { limit: limitPerMinute, remaining: limitPerMinute - hits, resetSeconds };
    },
    /** Writes what is still counted locally (at shutdown) and stops the timer. */
    async close(): Promise<void> {
      clearInterval(timer);
      await flushAll();
    },
  };
}

function windowOf(ms: number): number {
  const seconds = Math.floor(ms / 1000);
  return seconds - (seconds % WINDOW_SECONDS);
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
