// Request counters per bucket and fixed window, shared by every process on the database.
import type { Knex } from "knex";

export function createRateLimitRepo(knex: Knex) {
  let flushes = 0;
  return {
    /** Adds `hits` to the bucket's window and returns its total, these included. */
    async add(bucket: string, windowStart: number, hits: number): Promise<number> {
      // INSERT … ON CONFLICT … RETURNING: one atomic statement on SQLite (≥ 3.35) and PostgreSQL.
      const result = await knex.raw(
        "insert into rate_limits (bucket, window_start, hits) values (?, ?, ?) " +
          "on conflict (bucket, window_start) do update set hits = rate_limits.hits + excluded.hits returning hits",
        [bucket, windowStart, hits],
      );
      const rows = (Array.isArray(result) ? result : result.rows) as { hits: number | string }[];
      if (++flushes % 1000 === 0) await knex("rate_limits").where("window_start", "<", windowStart - 120).delete();
      return Number(rows[0].hits);
    },
  };
}

export type RateLimitRepo = ReturnType<typeof createRateLimitRepo>;
