// Requests per minute per token (or per client address without a valid token).
import type { RateLimitRepo } from "../data/rate-limit-repo.js";
import { RateLimited } from "./errors.js";

export interface RateLimitState {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

const WINDOW_SECONDS = 60;

export function createRateLimiter(repo: RateLimitRepo, limitPerMinute: number, now: () => number = Date.now) {
  return {
    limit: limitPerMinute,
    /** Counts a request; throws RateLimited past the limit. */
    async consume(bucket: string): Promise<RateLimitState> {
      const seconds = Math.floor(now() / 1000);
      const windowStart = seconds - (seconds % WINDOW_SECONDS);
      const hits = await repo.hit(bucket, windowStart);
      const resetSeconds = windowStart + WINDOW_SECONDS - seconds;
      if (hits > limitPerMinute) throw new RateLimited(limitPerMinute, resetSeconds);
      return { limit: limitPerMinute, remaining: limitPerMinute - hits, resetSeconds };
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
