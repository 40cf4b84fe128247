// Resource subscriptions of the workspace endpoint's agent sessions (resources/subscribe), kept in
// the store so that any process can take them and the one holding the session's GET stream keeps
// them upstream.
import type { Knex } from "knex";

export function createSessionSubscriptionRepo(knex: Knex) {
  const table = () => knex("workspace_session_subscriptions");
  return {
    async add(sessionId: string, uri: string, at: string): Promise<void> {
      await table().insert({ session_id: sessionId, uri, subscribed_at: at }).onConflict(["session_id", "uri"]).ignore();
    },
    async remove(sessionId: string, uri: string): Promise<void> {
      await table().where({ session_id: sessionId, uri }).delete();
    },
    /** The session's subscribed URIs, oldest first. */
    async list(sessionId: string): Promise<string[]> {
      const rows: { uri: string }[] = await table().where({ session_id: sessionId }).orderBy([{ column: "subscribed_at" }, { column: "uri" }]).select("uri");
      return rows.map((r) => r.uri);
    },
    async removeSession(sessionId: string): Promise<void> {
      await table().where({ session_id: sessionId }).delete();
    },
    /**
     * Deletes the subscriptions taken before `cutoff` (their sessions have expired by now) of up
     * to `batch` sessions; returns how many rows.
     */
    async deleteOlderThan(cutoff: string, batch: number): Promise<number> {
      const sessions = table().distinct("session_id").where("subscribed_at", "<", cutoff).limit(batch);
      return table().whereIn("session_id", sessions).andWhere("subscribed_at", "<", cutoff).delete();
    },
  };
}

export type SessionSubscriptionRepo = ReturnType<typeof createSessionSubscriptionRepo>;
