// Clients the product registered dynamically (RFC 7591): one per authorization server
// issuer and redirect URI, reused by every record that authorizes there. The client secret
// is sealed like every other secret, bound to the issuer's origin.
import type { Knex } from "knex";
import { originOf, type SecretBox } from "./secrets.js";

export interface RegisteredClient {
  clientId: string;
  clientSecret: string | null;
  tokenEndpointAuthMethod: string;
}

interface Row {
  issuer: string;
  redirect_uri: string;
  client_id: string;
  client_secret_enc: string | null;
  token_endpoint_auth_method: string;
  created_at: string;
}

export function createOAuthRegistrationRepo(knex: Knex, box: SecretBox) {
  const table = () => knex<Row>("oauth_client_registrations");
  const binding = (issuer: string) => ({ recordId: issuer, workspaceId: "", field: "dynamicClientSecret", origin: originOf(issuer) });

  return {
    async find(issuer: string, redirectUri: string): Promise<RegisteredClient | null> {
      const row = await table().where({ issuer, redirect_uri: redirectUri }).first();
      if (!row) return null;
      return {
        clientId: row.client_id,
        clientSecret: row.client_secret_enc === null ? null : box.open(row.client_secret_enc, binding(issuer)),
        tokenEndpointAuthMethod: row.token_endpoint_auth_method,
      };
    },

    /** Keeps a registration, replacing an earlier one for the same issuer and redirect URI. */
    async save(issuer: string, redirectUri: string, client: RegisteredClient, at: string): Promise<void> {
      await table().where({ issuer, redirect_uri: redirectUri }).delete();
      await table().insert({
        issuer,
        redirect_uri: redirectUri,
        client_id: client.clientId,
        client_secret_enc: client.clientSecret === null ? null : box.seal(client.clientSecret, binding(issuer)),
        token_endpoint_auth_method: client.tokenEndpointAuthMethod,
        created_at: at,
      });
    },

    /** Forgets a registration the authorization server no longer knows (invalid_client). */
    async remove(issuer: string, redirectUri: string): Promise<void> {
      await table().where({ issuer, redirect_uri: redirectUri }).delete();
    },
  };
}

export type OAuthRegistrationRepo = ReturnType<typeof createOAuthRegistrationRepo>;
