// Agent sessions of the workspace endpoint that were ended (DELETE): the sessions themselves are
// sealed and stored nowhere, so only their end is.
import type { Knex } from "knex";

export function createEndedSessionRepo(knex: Knex) {
  return {
    async end(sessionId: string, at: string): Promise<void> {
      await knex("workspace_sessions_ended").insert({ session_id: sessionId, ended_at: at }).onConflict("session_id").ignore();
    },
    async isEnded(sessionId: string): Promise<boolean> {
      return (await knex("workspace_sessions_ended").where({ session_id: sessionId }).first("session_id")) !== undefined;
    },
  };
}

export type EndedSessionRepo = ReturnType<typeof createEndedSessionRepo>;
