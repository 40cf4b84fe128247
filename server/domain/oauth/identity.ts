// Who the product is at a record's authorization server, in the MCP spec's order.
import type { OAuthClientRegistration, StoredServer } from "../../data/mcp-server-repo.js";
import { isClientRejected, type OAuthClientIdentity, type OAuthSetup } from "../../outbound/oauth-client.js";
import { ValidationFailed } from "../errors.js";
import type { OAuthContext } from "./context.js";

export function createIdentity(ctx: OAuthContext) {
  const { repo, client, deps, redirectUri, metadataDocumentUrl, now } = ctx;

  /**
   * The record's own client id; else its metadata document URL (CIMD); else a client registered
   * dynamically there (RFC 7591, kept per issuer and reused). `kind` is what the record
   * used last, so refreshes and revocations use the client that got the tokens.
   */
  async function identity(stored: StoredServer, setup?: OAuthSetup, kind?: OAuthClientRegistration | null) {
    const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
    const s = stored.server;
    const d = stored.oauth.discovery;
    const use = kind ?? (s.oauthClientId ? "pre_registered" : d?.clientIdMetadataDocumentSupported ? "metadata_document" : d?.registrationEndpoint ? "dynamic" : null);
    if (use === "pre_registered" && s.oauthClientId) {
      const authMethod = secrets.oauthClientSecret ? (stored.oauth.tokenAuthMethod === "none" ? "client_secret_basic" : (stored.oauth.tokenAuthMethod ?? "client_secret_basic")) : "none";
      return { kind: use, client: { clientId: s.oauthClientId, clientSecret: secrets.oauthClientSecret, authMethod } as OAuthClientIdentity, secrets };
    }
    if (use === "metadata_document") {
      return { kind: use, client: { clientId: metadataDocumentUrl(), clientSecret: null, authMethod: "none" } as OAuthClientIdentity, secrets };
    }
    if (use === "dynamic" && setup && d?.registrationEndpoint) {
      let registered = await deps.registrations.find(setup.issuer, redirectUri());
      if (!registered) {
        const client_ = await client.register(d.registrationEndpoint, { redirectUri: redirectUri(), scope: null, supportedAuthMethods: d.tokenAuthMethods ?? undefined });
        registered = { clientId: client_.clientId, clientSecret: client_.clientSecret, tokenEndpointAuthMethod: client_.authMethod };
        await deps.registrations.save(setup.issuer, redirectUri(), registered, now().toISOString());
      }
      return {
        kind: use,
        client: { clientId: registered.clientId, clientSecret: registered.clientSecret, authMethod: registered.tokenEndpointAuthMethod } as OAuthClientIdentity,
        secrets,
      };
    }
    throw new ValidationFailed([
      {
        path: "/oauthClientId",
        message: `is needed: this server's authorization server offers neither client ID metadata documents nor dynamic registration; register a client there with the redirect URI ${redirectUri()} and set oauthClientId (and oauthClientSecret)`,
      },
    ]);
  }

  /** A dynamically registered client the server no longer knows is forgotten: the next authorization registers again. */
  async function forgetRejectedRegistration(err: unknown, stored: StoredServer, setup: OAuthSetup) {
    if (stored.server.oauthClientRegistration === "dynamic" && isClientRejected(err)) await deps.registrations.remove(setup.issuer, redirectUri());
  }

  return { identity, forgetRejectedRegistration };
}

export type Identity = ReturnType<typeof createIdentity>;
