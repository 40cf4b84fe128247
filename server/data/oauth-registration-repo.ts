// Clients the product registered dynamically (RFC 7591), kept per workspace: one per
// (workspace, issuer, registration endpoint, redirect URI), never seen or used by another
// workspace. Each keeps the endpoints the authorization server's own metadata named when it
// was made, and is used with those alone; its secret is sealed to that token endpoint's origin.
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { originOf, type SecretBox } from "./secrets.js";

export interface RegistrationKey {
  workspaceId: string;
  /** The issuer named by the authorization server's metadata. */
  issuer: string;
  registrationEndpoint: string;
  redirectUri: string;
}

export interface RegisteredClient {
  clientId: string;
  clientSecret: string | null;
  tokenEndpointAuthMethod: string;
  /** From the metadata the registration was made with; what a record says never replaces them. */
  tokenEndpoint: string;
  authorizationEndpoint: string | null;
  revocationEndpoint: string | null;
}

interface Row {
  key: string;
  workspace_id: string;
  issuer: string;
  registration_endpoint: string;
  redirect_uri: string;
  client_id: string;
  client_secret_enc: string | null;
  token_endpoint_auth_method: string;
  token_endpoint: string;
  authorization_endpoint: string | null;
  revocation_endpoint: string | null;
  created_at: string;
}

const keyOf = (k: RegistrationKey) => createHash("sha256").update(JSON.stringify([k.workspaceId, k.issuer, k.registrationEndpoint, k.redirectUri])).digest("hex");

export function createOAuthRegistrationRepo(knex: Knex, box: SecretBox) {
  const table = () => knex<Row>("oauth_dynamic_clients");
  const binding = (key: string, workspaceId: string, tokenEndpoint: string) => ({
    recordId: key,
    workspaceId,
    field: "dynamicClientSecret",
    origin: originOf(tokenEndpoint),
  });

  return {
    async find(k: RegistrationKey): Promise<RegisteredClient | null> {
      const key = keyOf(k);
      const row = await table().where({ key, workspace_id: k.workspaceId }).first();
      if (!row) return null;
      return {
        clientId: row.client_id,
        clientSecret: row.client_secret_enc === null ? null : box.open(row.client_secret_enc, binding(key, row.workspace_id, row.token_endpoint)),
        tokenEndpointAuthMethod: row.token_endpoint_auth_method,
        tokenEndpoint: row.token_endpoint,
        authorizationEndpoint: row.authorization_endpoint,
        revocationEndpoint: row.revocation_endpoint,
      };
    },

    /** Keeps a registration, replacing an earlier one under the same key. */
    async save(k: RegistrationKey, client: RegisteredClient, at: string): Promise<void> {
      const key = keyOf(k);
      await knex.transaction(async (trx) => {
        await trx<Row>("oauth_dynamic_clients").where({ key }).delete();
        await trx<Row>("oauth_dynamic_clients").insert({
          key,
          workspace_id: k.workspaceId,
          issuer: k.issuer,
          registration_endpoint: k.registrationEndpoint,
          redirect_uri: k.redirectUri,
          client_id: client.clientId,
          client_secret_enc: client.clientSecret === null ? null : box.seal(client.clientSecret, binding(key, k.workspaceId, client.tokenEndpoint)),
          token_endpoint_auth_method: client.tokenEndpointAuthMethod,
          token_endpoint: client.tokenEndpoint,
          authorization_endpoint: client.authorizationEndpoint,
          revocation_endpoint: client.revocationEndpoint,
          created_at: at,
        });
      });
    },

    /** Forgets a registration its authorization server no longer knows, unless it was replaced meanwhile. */
    async remove(k: RegistrationKey, clientId: string): Promise<void> {
      await table().where({ key: keyOf(k), workspace_id: k.workspaceId, client_id: clientId }).delete();
    },
  };
}

export type OAuthRegistrationRepo = ReturnType<typeof createOAuthRegistrationRepo>;
