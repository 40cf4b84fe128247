// Pending OAuth authorizations: one row per state (stored hashed), consumed exactly once.
import type { Knex } from "knex";
import type { SecretBox } from "./secrets.js";

export interface OAuthStateRecord {
  stateHash: string;
  serverId: string;
  workspaceId: string;
  userId: string;
  tokenId: string;
  /** Plaintext here; sealed at rest like every other secret. */
  codeVerifier: string;
  redirectUri: string;
  returnUrl: string | null;
  createdAt: string;
  expiresAt: string;
  /** Set for a user-scope flow (issue 20): the tokens go to this person's own connection, and only their browser may finish it. */
  connectionUserId?: string | null;
}

interface Row {
  state_hash: string;
  server_id: string;
  workspace_id: string;
  user_id: string;
  token_id: string;
  code_verifier_enc: string;
  redirect_uri: string;
  return_url: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  connection_user_id: string | null;
}

export function createOAuthStateRepo(knex: Knex, box: SecretBox) {
  const binding = (stateHash: string, workspaceId: string) => ({ recordId: stateHash, workspaceId, field: "codeVerifier" });
  const table = () => knex<Row>("oauth_states");
  return {
    async insert(r: OAuthStateRecord): Promise<void> {
      await table().insert({
        state_hash: r.stateHash,
        server_id: r.serverId,
        workspace_id: r.workspaceId,
        user_id: r.userId,
        token_id: r.tokenId,
        code_verifier_enc: box.seal(r.codeVerifier, binding(r.stateHash, r.workspaceId)),
        redirect_uri: r.redirectUri,
        return_url: r.returnUrl,
        created_at: r.createdAt,
        expires_at: r.expiresAt,
        used_at: null,
        connection_user_id: r.connectionUserId ?? null,
      });
    },
    /** Marks the state used, atomically; says why when it cannot be. */
    async consume(stateHash: string, now: string): Promise<OAuthStateRecord | "unknown" | "replayed" | "expired"> {
      const n = await table().where({ state_hash: stateHash }).whereNull("used_at").andWhere("expires_at", ">", now).update({ used_at: now });
      const row = await table().where({ state_hash: stateHash }).first();
      if (!row) return "unknown";
      if (n === 0) return row.used_at !== null ? "replayed" : "expired";
      return {
        stateHash: row.state_hash,
        serverId: row.server_id,
        workspaceId: row.workspace_id,
        userId: row.user_id,
        tokenId: row.token_id,
        codeVerifier: box.open(row.code_verifier_enc, binding(row.state_hash, row.workspace_id)),
        redirectUri: row.redirect_uri,
        returnUrl: row.return_url,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        connectionUserId: row.connection_user_id,
      };
    },
  };
}

export type OAuthStateRepo = ReturnType<typeof createOAuthStateRepo>;
