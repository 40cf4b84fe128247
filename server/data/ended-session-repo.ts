// Agent sessions of the workspace endpoint that were ended (DELETE): the sessions themselves are
// sealed and stored nowhere, so only their end is, until the session would have expired anyway.
import type { Knex } from "knex";

export function createEndedSessionRepo(knex: Knex) {
  return {
    async end(sessionId: string, at: string): Promise<void> {
      await knex("workspace_sessions_ended").insert({ session_id: sessionId, ended_at: at }).onConflict("session_id").ignore();
    },
    async isEnded(sessionId: string): Promise<boolean> {
      return (await knex("workspace_sessions_ended").where({ session_id: sessionId }).first("session_id")) !== undefined;
    },
    /** Deletes up to `batch` rows of sessions ended before `cutoff` (expired by now); returns how many. */
    async deleteOlderThan(cutoff: string, batch: number): Promise<number> {
      const ids = knex("workspace_sessions_ended").select("session_id").where("ended_at", "<", cutoff).orderBy("ended_at").limit(batch);
      return knex("workspace_sessions_ended").whereIn("session_id", ids).delete();
    },
  };
}

export type EndedSessionRepo = ReturnType<typeof createEndedSessionRepo>;
