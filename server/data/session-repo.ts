// Browser sessions, stored only as SHA-256 hashes of the cookie's value.
import type { Knex } from "knex";

export interface SessionRecord {
  userId: string;
  tokenId: string;
  /** The workspaces of the token signed in with, as they are now. */
  workspaces: string[];
  /** The scope of the token signed in with (admin or gateway). */
  scope: "admin" | "gateway";
  createdAt: string;
  expiresAt: string;
}

export function createSessionRepo(knex: Knex) {
  return {
    async insert(sessionHash: string, record: Omit<SessionRecord, "workspaces" | "scope">): Promise<void> {
      await knex("browser_sessions").insert({
        session_hash: sessionHash,
        user_id: record.userId,
        token_id: record.tokenId,
        created_at: record.createdAt,
        expires_at: record.expiresAt,
      });
    },
    /** The session, while it has not expired and its token is neither revoked nor expired. */
    async findActive(sessionHash: string, now: string): Promise<SessionRecord | null> {
      const row = await knex("browser_sessions as s")
        .join("api_tokens as t", "t.id", "s.token_id")
        .where("s.session_hash", sessionHash)
        .andWhere("s.expires_at", ">", now)
        .whereNull("t.revoked_at")
        .andWhere((q) => q.whereNull("t.expires_at").orWhere("t.expires_at", ">", now))
        .first("s.user_id", "s.token_id", "s.created_at", "s.expires_at", "t.workspaces", "t.scope");
      if (!row) return null;
      return { userId: row.user_id, tokenId: row.token_id, workspaces: JSON.parse(row.workspaces), scope: row.scope === "gateway" ? "gateway" : "admin", createdAt: row.created_at, expiresAt: row.expires_at };
    },
    async delete(sessionHash: string): Promise<boolean> {
      return (await knex("browser_sessions").where({ session_hash: sessionHash }).delete()) > 0;
    },
    /** Sessions past their end are useless; dropped whenever a new one is made. */
    async deleteExpired(now: string): Promise<void> {
      await knex("browser_sessions").where("expires_at", "<=", now).delete();
    },
  };
}

export type SessionRepo = ReturnType<typeof createSessionRepo>;
