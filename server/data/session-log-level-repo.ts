// The log level each workspace-endpoint agent session set (logging/setLevel), kept in the store so
// that every process applies it; removed with the session, or by the retention sweep once the
// session has expired.
import type { Knex } from "knex";

export function createSessionLogLevelRepo(knex: Knex) {
  const table = () => knex("workspace_session_log_levels");
  return {
    async set(sessionId: string, level: string, at: string): Promise<void> {
      await table().insert({ session_id: sessionId, level, set_at: at }).onConflict("session_id").merge(["level", "set_at"]);
    },
    async get(sessionId: string): Promise<string | null> {
      const row: { level: string } | undefined = await table().where({ session_id: sessionId }).first("level");
      return row?.level ?? null;
    },
    async removeSession(sessionId: string): Promise<void> {
      await table().where({ session_id: sessionId }).delete();
    },
    /** Deletes up to `batch` levels set before `cutoff` (their sessions have expired by now); returns how many. */
    async deleteOlderThan(cutoff: string, batch: number): Promise<number> {
      const ids = table().select("session_id").where("set_at", "<", cutoff).orderBy("set_at").limit(batch);
      return table().whereIn("session_id", ids).delete();
    },
  };
}

export type SessionLogLevelRepo = ReturnType<typeof createSessionLogLevelRepo>;
