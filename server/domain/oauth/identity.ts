// Who the product is at a record's authorization server, in the MCP spec's order, and the
// endpoints that identity may be used with.
import type { OAuthClientRegistration, Secrets, StoredServer } from "../../data/mcp-server-repo.js";
import type { RegisteredClient, RegistrationKey } from "../../data/oauth-registration-repo.js";
import { isClientRejected, type OAuthClientIdentity, type OAuthSetup } from "../../outbound/oauth-client.js";
import { ValidationFailed } from "../errors.js";
import type { OAuthContext } from "./context.js";
import { REAUTHORIZE } from "./rules.js";

export interface ChosenIdentity {
  kind: OAuthClientRegistration;
  client: OAuthClientIdentity;
  /** The endpoints to use: a dynamic registration's own, else the record's. */
  setup: OAuthSetup;
  secrets: Secrets;
  /** The dynamic registration used, and whether it is new (to be kept once the flow's record write succeeds). */
  registration?: { key: RegistrationKey; client: RegisteredClient; isNew: boolean };
}

export function createIdentity(ctx: OAuthContext) {
  const { repo, client, deps, redirectUri, metadataDocumentUrl, now } = ctx;

  const needed = () =>
    new ValidationFailed([
      {
        path: "/oauthClientId",
        message: `is needed: this server's authorization server offers neither client ID metadata documents nor dynamic registration; register a client there with the redirect URI ${redirectUri()} and set oauthClientId (and oauthClientSecret)`,
      },
    ]);

  /**
   * The record's own client id; else its metadata document URL (CIMD); else a client this
   * workspace registered dynamically (RFC 7591) at the registration endpoint the authorization
   * server's metadata named. `kind` is what the record used last, so refreshes and revocations
   * use the client that got the tokens. Only `register` (starting a flow) may register anew.
   */
  async function identity(stored: StoredServer, setup: OAuthSetup, kind?: OAuthClientRegistration | null, options: { register?: boolean } = {}): Promise<ChosenIdentity> {
    const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
    const s = stored.server;
    const d = stored.oauth.discovery;
    const use = kind ?? (s.oauthClientId ? "pre_registered" : d?.clientIdMetadataDocumentSupported ? "metadata_document" : d?.registrationEndpoint ? "dynamic" : null);
    if (use === "pre_registered" && s.oauthClientId) {
      // The record's method wins; else the metadata's choice for a client with a secret, else none.
      const authMethod =
        s.oauthClientAuthMethod ??
        (secrets.oauthClientSecret ? (stored.oauth.tokenAuthMethod === "none" ? "client_secret_basic" : (stored.oauth.tokenAuthMethod ?? "client_secret_basic")) : "none");
      const client = { clientId: s.oauthClientId, clientSecret: secrets.oauthClientSecret, authMethod, privateKey: secrets.oauthClientPrivateKey };
      return { kind: use, client, setup: { ...setup, tokenAuthMethod: authMethod }, secrets };
    }
    if (use === "metadata_document") {
      return { kind: use, client: { clientId: metadataDocumentUrl(), clientSecret: null, authMethod: "none" }, setup, secrets };
    }
    if (use === "dynamic") {
      const endpoints = d?.metadataEndpoints;
      if (!d?.registrationEndpoint || !d.issuer || !endpoints) {
        if (!options.register) throw new ValidationFailed([{ path: "/oauthClientRegistration", message: `names a dynamic registration this record can no longer use; ${REAUTHORIZE}` }]);
        throw needed();
      }
      const key: RegistrationKey = { workspaceId: s.workspaceId, issuer: d.issuer, registrationEndpoint: d.registrationEndpoint, redirectUri: redirectUri() };
      let registered = await deps.registrations.find(key);
      let isNew = false;
      if (!registered) {
        if (!options.register) throw new ValidationFailed([{ path: "/oauthClientRegistration", message: `names a dynamic registration the authorization server no longer knows; ${REAUTHORIZE}` }]);
        const made = await client.register(d.registrationEndpoint, { redirectUri: redirectUri(), scope: null, supportedAuthMethods: d.tokenAuthMethods ?? undefined });
        registered = { clientId: made.clientId, clientSecret: made.clientSecret, tokenEndpointAuthMethod: made.authMethod, ...endpoints };
        isNew = true;
      }
      // The registration is used with the endpoints its metadata named, whatever the record says now.
      const own: OAuthSetup = {
        ...setup,
        issuer: key.issuer,
        tokenEndpoint: registered.tokenEndpoint,
        authorizationEndpoint: registered.authorizationEndpoint,
        revocationEndpoint: registered.revocationEndpoint,
        tokenAuthMethod: registered.tokenEndpointAuthMethod,
      };
      return {
        kind: use,
        client: { clientId: registered.clientId, clientSecret: registered.clientSecret, authMethod: registered.tokenEndpointAuthMethod },
        setup: own,
        secrets,
        registration: { key, client: registered, isNew },
      };
    }
    throw needed();
  }

  /** Keeps a registration made during a flow, once that flow's record write has succeeded. */
  async function keepRegistration(chosen: ChosenIdentity) {
    if (chosen.registration?.isNew) await deps.registrations.save(chosen.registration.key, chosen.registration.client, now().toISOString());
  }

  /**
   * A dynamic registration its own token endpoint answered invalid_client for is forgotten (the
   * next authorization registers again); a rejection from anywhere else never deletes it.
   */
  async function forgetRejectedRegistration(err: unknown, chosen: ChosenIdentity, usedTokenEndpoint: string) {
    const r = chosen.registration;
    if (r && !r.isNew && isClientRejected(err) && usedTokenEndpoint === r.client.tokenEndpoint) await deps.registrations.remove(r.key, r.client.clientId);
  }

  return { identity, keepRegistration, forgetRejectedRegistration };
}

export type Identity = ReturnType<typeof createIdentity>;
