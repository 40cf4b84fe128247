// Request counters per bucket and fixed window, shared by every process on the database.
import type { Knex } from "knex";

export function createRateLimitRepo(knex: Knex) {
  let calls = 0;
  return {
    /** Counts one hit and returns the bucket's hits in the window, this one included. */
    async hit(bucket: string, windowStart: number): Promise<number> {
      // INSERT … ON CONFLICT … RETURNING: one atomic statement on SQLite (≥ 3.35) and PostgreSQL.
      const result = await knex.raw(
        "insert into rate_limits (bucket, window_start, hits) values (?, ?, 1) " +
          "on conflict (bucket, window_start) do update set hits = rate_limits.hits + 1 returning hits",
        [bucket, windowStart],
      );
      const rows = (Array.isArray(result) ? result : result.rows) as { hits: number | string }[];
      if (++calls % 1000 === 0) await knex("rate_limits").where("window_start", "<", windowStart - 120).delete();
      return Number(rows[0].hits);
    },
  };
}

export type RateLimitRepo = ReturnType<typeof createRateLimitRepo>;
