// The product as an OAuth client of each `oauth` MCP server's authorization server. The
// protocol work is the MCP SDK's auth helpers; every request goes through the guarded fetch.
import {
  discoverOAuthServerInfo,
  exchangeAuthorization,
  extractWWWAuthenticateParams,
  fetchToken,
  refreshAuthorization,
  startAuthorization,
} from "@modelcontextprotocol/sdk/client/auth.js";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { OAuthError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import type { AuthorizationServerMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import type { GuardedFetch } from "./guarded-fetch.js";

export type { OAuthTokens };

/** What the product knows about a server's authorization server. */
export interface OAuthSetup {
  issuer: string;
  authorizationEndpoint: string | null;
  tokenEndpoint: string;
  revocationEndpoint: string | null;
  /** client_secret_basic or client_secret_post */
  tokenAuthMethod: string;
  /** The RFC 8707 resource indicator: the MCP server. */
  resource: string;
}

export interface OAuthClientIdentity {
  clientId: string;
  clientSecret: string | null;
}

export class DiscoveryFailed extends Error {}

/** The authorization server answered with an OAuth error (e.g. invalid_grant): the grant is no good. */
export function isGrantRejected(err: unknown): boolean {
  return err instanceof OAuthError;
}

function metadataOf(setup: OAuthSetup): AuthorizationServerMetadata {
  return {
    issuer: setup.issuer,
    authorization_endpoint: setup.authorizationEndpoint ?? setup.tokenEndpoint,
    token_endpoint: setup.tokenEndpoint,
    response_types_supported: ["code"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: [setup.tokenAuthMethod],
  } as AuthorizationServerMetadata;
}

function clientInformation(client: OAuthClientIdentity) {
  return client.clientSecret ? { client_id: client.clientId, client_secret: client.clientSecret } : { client_id: client.clientId };
}

export function createOAuthClient(fetch: GuardedFetch) {
  const fetchFn = fetch as unknown as typeof globalThis.fetch;

  return {
    /**
     * RFC 9728 then RFC 8414 / OpenID discovery, starting from the MCP server's own 401
     * (its WWW-Authenticate `resource_metadata`), then the well-known URLs.
     */
    async discover(serverUrl: string): Promise<Omit<OAuthSetup, "tokenEndpoint" | "authorizationEndpoint"> & { tokenEndpoint: string | null; authorizationEndpoint: string | null }> {
      let resourceMetadataUrl: URL | undefined;
      try {
        const probe = await fetch(serverUrl, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
        });
        if (probe.status === 401) resourceMetadataUrl = extractWWWAuthenticateParams(probe as never).resourceMetadataUrl;
        await probe.body?.cancel();
      } catch {
        // The well-known URLs may still answer.
      }
      let info;
      try {
        info = await discoverOAuthServerInfo(serverUrl, { resourceMetadataUrl, fetchFn });
      } catch (err) {
        throw new DiscoveryFailed(`OAuth discovery failed: ${(err as Error).message}`);
      }
      const metadata = info.authorizationServerMetadata;
      if (!metadata) throw new DiscoveryFailed("no authorization server metadata was found (RFC 9728 / RFC 8414 discovery)");
      if (!metadata.code_challenge_methods_supported?.includes("S256")) {
        throw new DiscoveryFailed("the authorization server does not offer S256 PKCE, which the MCP authorization spec requires");
      }
      const methods = metadata.token_endpoint_auth_methods_supported ?? [];
      const tokenAuthMethod = methods.length === 0 || methods.includes("client_secret_basic") ? "client_secret_basic" : methods.includes("client_secret_post") ? "client_secret_post" : "client_secret_basic";
      return {
        issuer: info.authorizationServerUrl,
        authorizationEndpoint: metadata.authorization_endpoint ?? null,
        tokenEndpoint: metadata.token_endpoint ?? null,
        revocationEndpoint: (metadata as { revocation_endpoint?: string }).revocation_endpoint ?? null,
        tokenAuthMethod,
        resource: info.resourceMetadata?.resource ?? serverUrl,
      };
    },

    async authorizationUrl(setup: OAuthSetup, client: OAuthClientIdentity, options: { redirectUrl: string; scope: string | null; state: string }) {
      return startAuthorization(setup.issuer, {
        metadata: metadataOf(setup),
        clientInformation: clientInformation(client),
        redirectUrl: options.redirectUrl,
        scope: options.scope ?? undefined,
        state: options.state,
        resource: new URL(setup.resource),
      });
    },

    exchange(setup: OAuthSetup, client: OAuthClientIdentity, code: string, codeVerifier: string, redirectUri: string): Promise<OAuthTokens> {
      return exchangeAuthorization(setup.issuer, {
        metadata: metadataOf(setup),
        clientInformation: clientInformation(client),
        authorizationCode: code,
        codeVerifier,
        redirectUri,
        resource: new URL(setup.resource),
        fetchFn,
      });
    },

    refresh(setup: OAuthSetup, client: OAuthClientIdentity, refreshToken: string): Promise<OAuthTokens> {
      return refreshAuthorization(setup.issuer, {
        metadata: metadataOf(setup),
        clientInformation: clientInformation(client),
        refreshToken,
        resource: new URL(setup.resource),
        fetchFn,
      });
    },

    clientCredentials(setup: OAuthSetup, client: OAuthClientIdentity, scope: string | null): Promise<OAuthTokens> {
      // A minimal provider: fetchToken asks it for the grant and the client's identity.
      const provider = {
        clientMetadata: { redirect_uris: [], grant_types: ["client_credentials"], scope: scope ?? undefined },
        clientInformation: () => clientInformation(client),
        prepareTokenRequest: (s?: string) => {
          const params = new URLSearchParams({ grant_type: "client_credentials" });
          if (s) params.set("scope", s);
          return params;
        },
      } as unknown as OAuthClientProvider;
      return fetchToken(provider, setup.issuer, { metadata: metadataOf(setup), resource: new URL(setup.resource), fetchFn });
    },

    /** RFC 7009 revocation; best effort (the tokens are forgotten either way). */
    async revoke(setup: OAuthSetup, client: OAuthClientIdentity, token: string, hint: "access_token" | "refresh_token"): Promise<boolean> {
      if (!setup.revocationEndpoint) return false;
      const params = new URLSearchParams({ token, token_type_hint: hint });
      const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
      if (setup.tokenAuthMethod === "client_secret_post" || !client.clientSecret) {
        params.set("client_id", client.clientId);
        if (client.clientSecret) params.set("client_secret", client.clientSecret);
      } else {
        const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString("base64");
        headers.authorization = `Basic ${basic}`;
      }
      try {
        const res = await fetch(setup.revocationEndpoint, { method: "POST", headers, body: params.toString() });
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false;
      }
    },
  };
}

export type OAuthClient = ReturnType<typeof createOAuthClient>;
