// The authorization server setup of a record: what the record says, completed by discovery.
import type { OAuthInternals, ServerFields, StoredServer } from "../../data/mcp-server-repo.js";
import { DiscoveryFailed, ResourceMismatch, type OAuthClient, type OAuthSetup } from "../../outbound/oauth-client.js";
import type { OAuthContext } from "./context.js";

/** What discovery learned, for the caller to write with the rest of its flow's outcome. */
export type Pending = { fields: Partial<ServerFields>; internals: Omit<OAuthInternals, "tokenObtainedAt" | "generation" | "stepUp"> };

export function fromStored(stored: StoredServer, known: Pick<OAuthInternals, "issuer" | "revocationEndpoint" | "tokenAuthMethod" | "resource">): OAuthSetup {
  const s = stored.server;
  return {
    issuer: known.issuer ?? new URL(s.oauthTokenEndpoint!).origin,
    authorizationEndpoint: s.oauthAuthorizationEndpoint,
    tokenEndpoint: s.oauthTokenEndpoint!,
    revocationEndpoint: known.revocationEndpoint,
    tokenAuthMethod: known.tokenAuthMethod ?? "client_secret_basic",
    resource: known.resource ?? s.url,
  };
}

export function createSetup(ctx: OAuthContext) {
  const { client } = ctx;

  /**
   * Discovery runs once; the caller stores what was found (`pending`) with the rest of its
   * flow's outcome, so a failure, or a record changed meanwhile, leaves the record as it was.
   * Endpoints the user gave always win, and what discovery says about another authorization
   * server than the pinned token endpoint's is not used. `fresh` (starting a flow) discovers
   * again what was learned before the authorization server's own endpoints were kept, and
   * endpoints discovery itself filled in: when the protected resource metadata now names another
   * authorization server, the flow moves there (SEP-2352); endpoints the user set never move.
   */
  async function setupFor(stored: StoredServer, options: { fresh?: boolean } = {}): Promise<{ setup: OAuthSetup; stored: StoredServer; pending: Pending | null }> {
    const s = stored.server;
    const known = stored.oauth;
    const rediscover = options.fresh === true && known.discovery?.endpointsDiscovered === true;
    if (known.issuer && s.oauthTokenEndpoint && !rediscover && !(options.fresh && known.discovery?.metadataEndpoints === undefined)) {
      return { setup: fromStored(stored, known), stored, pending: null };
    }
    // What discovery filled in is not the user's pin: it may be learned again.
    const pinnedToken = rediscover ? null : s.oauthTokenEndpoint;
    const pinnedAuthorization = rediscover && s.oauthAuthorizationEndpoint === known.discovery?.metadataEndpoints?.authorizationEndpoint ? null : s.oauthAuthorizationEndpoint;
    let found: Awaited<ReturnType<OAuthClient["discover"]>> | null = null;
    try {
      found = await client.discover(s.url, { tokenEndpoint: pinnedToken });
    } catch (err) {
      // Without endpoints of its own the record depends on discovery; with them it is a bonus.
      // A server that claims another resource is refused either way.
      if (!pinnedToken || err instanceof ResourceMismatch) throw err;
    }
    const moved = rediscover && found?.issuer != null && known.issuer !== null && found.issuer !== known.issuer;
    if (moved && (s.oauthClientId || stored.secretsSet.oauthClientSecret || stored.secretsSet.oauthClientPrivateKey)) {
      // A client issued by one authorization server is never presented to another (SEP-2352).
      throw new DiscoveryFailed(
        `the server's protected resource metadata now names another authorization server (${found!.issuer}); the record's OAuth client was issued by ${known.issuer}: set oauthClientId (and its secret or key) for the new one, or clear them to register there`,
      );
    }
    const internals: Pending["internals"] = {
      issuer: found?.issuer ?? new URL(s.oauthTokenEndpoint ?? found?.tokenEndpoint ?? s.url).origin,
      revocationEndpoint: found?.revocationEndpoint ?? null,
      tokenAuthMethod: found?.tokenAuthMethod ?? "client_secret_basic",
      resource: found?.resource ?? s.url,
      discovery: {
        registrationEndpoint: found?.registrationEndpoint ?? null,
        clientIdMetadataDocumentSupported: found?.clientIdMetadataDocumentSupported ?? false,
        issParameterSupported: found?.issParameterSupported ?? false,
        scopes: found?.scopes ?? null,
        offlineAccess: found?.offlineAccess ?? false,
        tokenAuthMethods: found?.tokenAuthMethods ?? null,
        issuer: found?.issuer ?? null,
        metadataEndpoints: found?.tokenEndpoint
          ? { tokenEndpoint: found.tokenEndpoint, authorizationEndpoint: found.authorizationEndpoint, revocationEndpoint: found.revocationEndpoint }
          : null,
        endpointsDiscovered: !pinnedToken || known.discovery?.endpointsDiscovered === true,
      },
    };
    const fields: { oauthTokenEndpoint?: string; oauthAuthorizationEndpoint?: string } = {};
    if (!pinnedToken) {
      if (!found?.tokenEndpoint) throw new DiscoveryFailed("the authorization server metadata names no token endpoint");
      if (found.tokenEndpoint !== s.oauthTokenEndpoint) fields.oauthTokenEndpoint = found.tokenEndpoint;
      if (!pinnedAuthorization && found.authorizationEndpoint && found.authorizationEndpoint !== s.oauthAuthorizationEndpoint) fields.oauthAuthorizationEndpoint = found.authorizationEndpoint;
    }
    const preview: StoredServer = { ...stored, server: { ...stored.server, ...fields }, oauth: { ...internals, tokenObtainedAt: stored.oauth.tokenObtainedAt, generation: stored.oauth.generation, stepUp: stored.oauth.stepUp } };
    return { setup: fromStored(preview, internals), stored: preview, pending: { fields, internals } };
  }

  return { setupFor };
}

export type Setup = ReturnType<typeof createSetup>;
