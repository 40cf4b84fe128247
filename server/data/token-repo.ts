// API tokens, stored only as SHA-256 hashes.
import type { Knex } from "knex";

export type TokenScope = "admin" | "gateway";

export interface TokenRecord {
  id: string;
  scope: TokenScope;
  userId: string;
  workspaces: string[];
  /** The toolsets the token is limited to; null for no such limit. */
  toolsets: string[] | null;
  name: string | null;
  createdAt: string;
  /** When the token stops working; null for never. */
  expiresAt: string | null;
  revokedAt: string | null;
}

interface TokenRow {
  id: string;
  token_hash: string;
  user_id: string;
  workspaces: string;
  name: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  scope: string;
  toolsets?: string | null;
}

function toRecord(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    userId: row.user_id,
    workspaces: JSON.parse(row.workspaces) as string[],
    toolsets: row.toolsets ? (JSON.parse(row.toolsets) as string[]) : null,
    name: row.name,
    scope: row.scope === "gateway" ? "gateway" : "admin",
    createdAt: row.created_at,
    expiresAt: row.expires_at ?? null,
    revokedAt: row.revoked_at,
  };
}

export function createTokenRepo(knex: Knex) {
  return {
    async insert(record: Omit<TokenRecord, "revokedAt">, tokenHash: string): Promise<void> {
      await knex<TokenRow>("api_tokens").insert({
        id: record.id,
        token_hash: tokenHash,
        user_id: record.userId,
        workspaces: JSON.stringify(record.workspaces),
        toolsets: record.toolsets ? JSON.stringify(record.toolsets) : null,
        name: record.name,
        scope: record.scope,
        created_at: record.createdAt,
        expires_at: record.expiresAt,
        revoked_at: null,
      });
    },
    /** Not revoked; whether it has expired is the caller's judgement (the record says when). */
    async findActiveByHash(tokenHash: string): Promise<TokenRecord | null> {
      const row = await knex<TokenRow>("api_tokens").where({ token_hash: tokenHash }).whereNull("revoked_at").first();
      return row ? toRecord(row) : null;
    },
    async findActiveById(id: string): Promise<TokenRecord | null> {
      const row = await knex<TokenRow>("api_tokens").where({ id }).whereNull("revoked_at").first();
      return row ? toRecord(row) : null;
    },
    async list(): Promise<TokenRecord[]> {
      const rows = await knex<TokenRow>("api_tokens").orderBy("id", "asc");
      return rows.map(toRecord);
    },
    /** One user's tokens that are not revoked, newest first, before `beforeId` when given. */
    async listForUser(userId: string, limit: number, beforeId: string | null): Promise<TokenRecord[]> {
      const q = knex<TokenRow>("api_tokens").where({ user_id: userId }).whereNull("revoked_at");
      if (beforeId) q.andWhere("id", "<", beforeId);
      const rows = await q.orderBy("id", "desc").limit(limit);
      return rows.map(toRecord);
    },
    async revoke(id: string, at: string): Promise<boolean> {
      const n = await knex<TokenRow>("api_tokens").where({ id }).whereNull("revoked_at").update({ revoked_at: at });
      return n > 0;
    },
    /** Revokes the token only if it is this user's: another user's token is left alone. */
    async revokeForUser(userId: string, id: string, at: string): Promise<boolean> {
      const n = await knex<TokenRow>("api_tokens").where({ id, user_id: userId }).whereNull("revoked_at").update({ revoked_at: at });
      return n > 0;
    },
  };
}

export type TokenRepo = ReturnType<typeof createTokenRepo>;
