// The limiter's documented bound, as a pure rule: N processes let through fewer than N × batch
// requests over the limit in a window, however their writes to the shared counter interleave.
import { describe, expect, test } from "vitest";
import type { RateLimitRepo } from "../server/data/rate-limit-repo.js";
import { RateLimited } from "../server/domain/errors.js";
import { batchFor, createRateLimiter } from "../server/domain/rate-limit.js";

/** One shared counter, as the store keeps it; each write lands at once and answers after a random delay. */
function slowSharedStore(random: () => number): RateLimitRepo {
  const totals = new Map<string, number>();
  return {
    async add(bucket, windowStart, hits) {
      const key = `${windowStart}/${bucket}`;
      const total = (totals.get(key) ?? 0) + hits;
      totals.set(key, total);
      await new Promise((r) => setTimeout(r, random() * 3));
      return total;
    },
  };
}

// A small seeded generator, so a failing round can be run again.
const seeded = (seed: number) => () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);

describe("rate limit bound", () => {
  test("when three processes take eight concurrent requests each while their writes are slow, then fewer than limit + 3 × batch get through", async () => {
    const limit = 300;
    const n = 3;
    const now = () => 1_800_000_000_000; // one window throughout
    for (let round = 0; round < 20; round++) {
      const repo = slowSharedStore(seeded(round + 1));
      const limiters = Array.from({ length: n }, () => createRateLimiter(repo, limit, { now, flushMs: 60_000 }));
      let admitted = 0;
      await Promise.all(
        limiters.flatMap((limiter) =>
          Array.from({ length: 8 }, async () => {
            for (let i = 0; i < 25; i++) {
              await limiter.consume("token:t").then(
                () => admitted++,
                (e) => expect(e).toBeInstanceOf(RateLimited),
              );
            }
          }),
        ),
      );
      await Promise.all(limiters.map((l) => l.close()));
      expect(admitted, `round ${round}`).toBeGreaterThanOrEqual(limit);
      expect(admitted, `round ${round}`).toBeLessThan(limit + n * batchFor(limit));
    }
  });
});
