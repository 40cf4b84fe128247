// Each person's own connection to a user-scope MCP server (issue 20): their OAuth tokens or API
// key and secret headers, sealed and bound to the server's origin like a record's own secrets.
import type { Knex } from "knex";
import type { ConnectionError } from "../wire.js";
import { insertEvent, type AuditEventInput } from "./audit-repo.js";
import type { StepUpState } from "./mcp-server-repo.js";
import { newUlidFactory } from "./ids.js";
import { originOf, type SecretBox } from "./secrets.js";

export const USER_SECRET_FIELDS = ["apiKey", "secretHeaders", "oauthAccessToken", "oauthRefreshToken"] as const;
export type UserSecretField = (typeof USER_SECRET_FIELDS)[number];
export type UserSecrets = Record<UserSecretField, string | null>;

export type UserConnectionStatus = "connected" | "disconnected" | "error";

export interface UserConnection {
  serverId: string;
  workspaceId: string;
  userId: string;
  status: UserConnectionStatus;
  oauthExpiresAt: string | null;
  oauthScopes: string | null;
  hasApiKey: boolean;
  secretHeaderNames: string[];
  lastError: ConnectionError | null;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  /** Whether its secrets were sealed for the server's current origin (else they are not usable). */
  origin: string;
  hasOAuthTokens: boolean;
  /** Scope step-up (issue 20 item 6): what the MCP server demanded of this person's token; null: nothing. */
  stepUp: StepUpState | null;
  /** Drawn on each new OAuth grant, kept on refresh (null: none yet); sealed gateway sessions are bound to it. */
  generation: string | null;
}

/** The record a connection belongs to: where its secrets may go. */
export interface ConnectionTarget {
  id: string;
  workspaceId: string;
  url: string;
}

export interface UserConnectionChanges {
  secrets?: Partial<UserSecrets>;
  secretHeaderNames?: string[];
  oauthExpiresAt?: string | null;
  oauthScopes?: string | null;
  status: UserConnectionStatus;
  lastError?: ConnectionError | null;
  stepUp?: StepUpState | null;
  generation?: string | null;
}

export const USER_SECRET_COLUMNS: Record<UserSecretField, string> = {
  apiKey: "api_key_enc",
  secretHeaders: "secret_headers_enc",
  oauthAccessToken: "oauth_access_token_enc",
  oauthRefreshToken: "oauth_refresh_token_enc",
};

type Row = Record<string, string | null>;

function toConnection(row: Row): UserConnection {
  return {
    serverId: row.server_id!,
    workspaceId: row.workspace_id!,
    userId: row.user_id!,
    status: row.status as UserConnectionStatus,
    oauthExpiresAt: row.oauth_expires_at,
    oauthScopes: row.oauth_scopes,
    hasApiKey: row.api_key_enc !== null,
    secretHeaderNames: JSON.parse(row.secret_header_names ?? "[]") as string[],
    lastError: row.last_error === null ? null : (JSON.parse(row.last_error) as ConnectionError),
    createdAt: row.created_at!,
    updatedAt: row.updated_at!,
    lastUsedAt: row.last_used_at,
    origin: row.origin!,
    hasOAuthTokens: row.oauth_access_token_enc !== null || row.oauth_refresh_token_enc !== null,
    stepUp: row.step_up ? (JSON.parse(row.step_up) as StepUpState) : null,
    generation: row.generation ?? null,
  };
}

export function createUserConnectionRepo(knex: Knex, box: SecretBox) {
  const table = (db: Knex | Knex.Transaction = knex) => db("user_connections");
  const eventId = newUlidFactory();
  // The person is part of what each secret is sealed to: one user's row copied to another's cannot be opened.
  const binding = (t: ConnectionTarget, userId: string, field: UserSecretField) => ({ recordId: `${t.id}/${userId}`, workspaceId: t.workspaceId, field, origin: originOf(t.url) });

  return {
    async find(serverId: string, userId: string): Promise<UserConnection | null> {
      const row = await table().where({ server_id: serverId, user_id: userId }).first();
      return row ? toConnection(row) : null;
    },

    /** By user id, after `afterUserId` when given. */
    async list(serverId: string, limit: number, afterUserId: string | null): Promise<UserConnection[]> {
      const q = table().where({ server_id: serverId });
      if (afterUserId !== null) q.andWhere("user_id", ">", afterUserId);
      return (await q.orderBy("user_id", "asc").limit(limit)).map(toConnection);
    },

    /**
     * Opens one person's secrets, for outbound calls to `target` only. Secrets sealed for another
     * origin than the server's current one are not opened: that connection is not usable.
     */
    async openSecrets(target: ConnectionTarget, userId: string): Promise<UserSecrets | null> {
      const row = await table().where({ server_id: target.id, user_id: userId }).first();
      if (!row || row.origin !== originOf(target.url)) return null;
      const out: UserSecrets = { apiKey: null, secretHeaders: null, oauthAccessToken: null, oauthRefreshToken: null };
      try {
        for (const field of USER_SECRET_FIELDS) {
          const sealed = row[USER_SECRET_COLUMNS[field]] as string | null;
          out[field] = sealed === null ? null : box.open(sealed, binding(target, userId, field));
        }
      } catch {
        // Sealed under a key no longer configured (or tampered with): not usable; the person connects again.
        return null;
      }
      return out;
    },

    /** Creates or changes one person's connection, with its audit event in the same transaction. */
    async write(target: ConnectionTarget, userId: string, changes: UserConnectionChanges, at: string, event?: AuditEventInput): Promise<UserConnection> {
      const origin = originOf(target.url);
      const columns: Row = { status: changes.status, updated_at: at, origin };
      for (const field of USER_SECRET_FIELDS) {
        const value = changes.secrets?.[field];
        if (value !== undefined) columns[USER_SECRET_COLUMNS[field]] = value === null ? null : box.seal(value, binding(target, userId, field));
      }
      if (changes.secretHeaderNames !== undefined) columns.secret_header_names = JSON.stringify(changes.secretHeaderNames);
      if (changes.oauthExpiresAt !== undefined) columns.oauth_expires_at = changes.oauthExpiresAt;
      if (changes.oauthScopes !== undefined) columns.oauth_scopes = changes.oauthScopes;
      if (changes.generation !== undefined) columns.generation = changes.generation;
      if (changes.stepUp !== undefined) columns.step_up = changes.stepUp === null ? null : JSON.stringify(changes.stepUp);
      if (changes.lastError !== undefined) columns.last_error = changes.lastError === null ? null : JSON.stringify(changes.lastError);
      const existing = await table().where({ server_id: target.id, user_id: userId }).first("origin");
      if (existing && existing.origin !== origin) {
        // Sealed for an origin the server no longer has: nothing of it may be kept.
        for (const field of USER_SECRET_FIELDS) if (columns[USER_SECRET_COLUMNS[field]] === undefined) columns[USER_SECRET_COLUMNS[field]] = null;
        if (columns.secret_header_names === undefined && columns.secret_headers_enc === null) columns.secret_header_names = "[]";
      }
      // The transaction writes first, so it takes the write lock at once (SQLite: never a read lock to upgrade).
      await knex.transaction(async (trx) => {
        const n = await table(trx).where({ server_id: target.id, user_id: userId }).update(columns);
        if (n === 0) await table(trx).insert({ server_id: target.id, workspace_id: target.workspaceId, user_id: userId, created_at: at, secret_header_names: "[]", ...columns });
        if (event) await insertEvent(trx, `evt_${eventId()}`, { id: target.id, workspaceId: target.workspaceId }, event, at);
      });
      return toConnection((await table().where({ server_id: target.id, user_id: userId }).first())!);
    },

    /**
     * Drops every person's OAuth tokens for a server whose authorization server moved: they were
     * issued by the old one and must never be presented to the new one (not even as a refresh).
     * API keys and secret headers stay. Returns how many connections were dropped.
     */
    async dropOAuthTokens(serverId: string, at: string, lastError: ConnectionError): Promise<number> {
      return table()
        .where({ server_id: serverId })
        .andWhere((q) => q.whereNotNull("oauth_access_token_enc").orWhereNotNull("oauth_refresh_token_enc"))
        .update({ oauth_access_token_enc: null, oauth_refresh_token_enc: null, oauth_expires_at: null, generation: null, status: "disconnected", last_error: JSON.stringify(lastError), updated_at: at });
    },

    /** Forgets one person's connection; false when there was none. */
    async remove(target: ConnectionTarget, userId: string, at: string, event?: AuditEventInput): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const n = await table(trx).where({ server_id: target.id, user_id: userId }).delete(); // writes first, like write()
        if (n > 0 && event) await insertEvent(trx, `evt_${eventId()}`, { id: target.id, workspaceId: target.workspaceId }, event, at);
        return n > 0;
      });
    },

    async touch(serverId: string, userId: string, at: string): Promise<void> {
      await table().where({ server_id: serverId, user_id: userId }).update({ last_used_at: at });
    },

    /** One refresher per (server, user) across processes: a conditional update. */
    async tryRefreshLock(serverId: string, userId: string, until: string, now: string): Promise<boolean> {
      const n = await table()
        .where({ server_id: serverId, user_id: userId })
        .andWhere((q) => q.whereNull("refresh_lock_until").orWhere("refresh_lock_until", "<", now))
        .update({ refresh_lock_until: until });
      return n > 0;
    },
    async releaseRefreshLock(serverId: string, userId: string): Promise<void> {
      await table().where({ server_id: serverId, user_id: userId }).update({ refresh_lock_until: null });
    },
  };
}

export type UserConnectionRepo = ReturnType<typeof createUserConnectionRepo>;
