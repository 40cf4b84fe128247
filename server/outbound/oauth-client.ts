// The product as an OAuth client of each `oauth` MCP server's authorization server. The
// protocol work is the MCP SDK v2's auth helpers (@modelcontextprotocol/client); every request goes through the guarded fetch.
import { createPrivateKey } from "node:crypto";
import type * as ClientSdk from "@modelcontextprotocol/client";
import type { AuthorizationServerMetadata, OAuthClientProvider, OAuthProtectedResourceMetadata, OAuthTokens } from "@modelcontextprotocol/client";
import { describeOutboundError, type GuardedFetch } from "./guarded-fetch.js";

export type { OAuthTokens };

// The SDK (and zod with it) is about a sixth of start-up: loaded at the first OAuth call, not at start.
let sdk: typeof ClientSdk | undefined;
const loadSdk = async () => (sdk ??= await import("@modelcontextprotocol/client"));
/** Whether err is the SDK's OAuthError; none exists before this module's first OAuth call loaded the SDK. */
const isOAuthError = (err: unknown): err is ClientSdk.OAuthError => sdk !== undefined && err instanceof sdk.OAuthError;

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

/** What discovery found; null where it found nothing it may use. */
export interface Discovered {
  issuer: string | null;
  authorizationEndpoint: string | null;
  tokenEndpoint: string | null;
  revocationEndpoint: string | null;
  tokenAuthMethod: string | null;
  resource: string;
  registrationEndpoint: string | null;
  clientIdMetadataDocumentSupported: boolean;
  issParameterSupported: boolean;
  /** From the MCP server's WWW-Authenticate challenge, else its metadata's scopes_supported. */
  scopes: string | null;
  offlineAccess: boolean;
  tokenAuthMethods: string[] | null;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(not a URL)";
  }
}

export interface OAuthClientIdentity {
  clientId: string;
  clientSecret: string | null;
  /** client_secret_basic, client_secret_post, none or private_key_jwt */
  authMethod: string;
  /** PEM; signs RFC 7523 client assertions when authMethod is private_key_jwt. */
  privateKey?: string | null;
}

/** The JWS algorithm a PEM private key signs RFC 7523 client assertions with, or null when it cannot. */
export function signingAlgOf(pem: string): "ES256" | "ES384" | "RS256" | "EdDSA" | null {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType === "rsa") return "RS256";
    if (key.asymmetricKeyType === "ed25519") return "EdDSA";
    if (key.asymmetricKeyType === "ec") {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === "prime256v1" ? "ES256" : curve === "secp384r1" ? "ES384" : null;
    }
    return null;
  } catch {
    return null;
  }
}

/**
 * RFC 7523 client authentication: a short-lived JWT with the client id as iss and sub, for the
 * authorization server's issuer as aud, signed with the record's key (as a JWK, so any PEM form works).
 */
function clientAssertion({ OAuthError, createPrivateKeyJwtAuth }: typeof ClientSdk, setup: OAuthSetup, client: OAuthClientIdentity) {
  if (client.authMethod !== "private_key_jwt") return undefined;
  const alg = client.privateKey ? signingAlgOf(client.privateKey) : null;
  if (!client.privateKey || !alg) throw new OAuthError("invalid_client", "no usable private key for private_key_jwt");
  const jwk = createPrivateKey(client.privateKey).export({ format: "jwk" }) as Record<string, unknown>;
  return createPrivateKeyJwtAuth({ issuer: client.clientId, subject: client.clientId, privateKey: jwk, alg, audience: setup.issuer, lifetimeSeconds: 120 });
}

/** OAuth metadata and token responses are small JSON documents; more is refused. */
export const OAUTH_MAX_BODY_BYTES = 64 * 1024;

export class DiscoveryFailed extends Error {}

/** The protected resource metadata describes another resource than the MCP server (RFC 9728 §3.3). */
export class ResourceMismatch extends Error {}

// RFC 6749 §5.2: only these say the grant or the client is no good. Anything else (5xx,
// a network error, a temporarily_unavailable) is worth retrying with the same refresh token.
const REJECTIONS = new Set(["invalid_grant", "invalid_client", "unauthorized_client"]);

/** The authorization server rejected the grant or the client: re-authorization is needed. */
export function isGrantRejected(err: unknown): boolean {
  return isOAuthError(err) && REJECTIONS.has(err.code);
}

/** The authorization server does not know the client (any more). */
export function isClientRejected(err: unknown): boolean {
  return isOAuthError(err) && err.code === "invalid_client";
}

/** A token-endpoint error described by the product: the server's body is never quoted. */
export function describeTokenError(err: unknown): { class: "auth" | "http"; message: string; httpStatus: number | null } | null {
  // The SDK refuses to send credentials to a plain-http token endpoint off loopback (OAuth 2.1 §1.5).
  if (sdk && err instanceof sdk.InsecureTokenEndpointError) return { class: "auth", message: "the token endpoint must be https (http only on loopback)", httpStatus: null };
  if (!isOAuthError(err)) return null;
  const status = /^HTTP (\d{3}):/.exec(err.message)?.[1];
  if (status && /Invalid OAuth error response/.test(err.message)) {
    return { class: "http", message: `the authorization server answered HTTP ${status} without an OAuth error`, httpStatus: Number(status) };
  }
  return { class: "auth", message: `the authorization server answered ${err.code}`, httpStatus: null };
}

function metadataOf(setup: OAuthSetup, client?: OAuthClientIdentity): AuthorizationServerMetadata {
  return {
    issuer: setup.issuer,
    authorization_endpoint: setup.authorizationEndpoint ?? setup.tokenEndpoint,
    token_endpoint: setup.tokenEndpoint,
    response_types_supported: ["code"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: [client?.authMethod ?? setup.tokenAuthMethod],
  } as AuthorizationServerMetadata;
}

function clientInformation(client: OAuthClientIdentity) {
  const secret = client.authMethod !== "none" && client.authMethod !== "private_key_jwt" && client.clientSecret ? { client_secret: client.clientSecret } : {};
  return { client_id: client.clientId, token_endpoint_auth_method: client.authMethod, ...secret };
}

/** RFC 7591 §2: client_secret_basic unless the server lists only others. */
function preferredAuthMethod(supported: string[] | undefined): string {
  if (!supported || supported.length === 0 || supported.includes("client_secret_basic")) return "client_secret_basic";
  if (supported.includes("client_secret_post")) return "client_secret_post";
  return supported.includes("none") ? "none" : "client_secret_basic";
}

export function createOAuthClient(fetch: GuardedFetch) {
  const fetchFn = fetch as unknown as typeof globalThis.fetch;

  return {
    /**
     * RFC 9728 then RFC 8414 / OpenID discovery, starting from the MCP server's own 401
     * (its WWW-Authenticate `resource_metadata`), then the well-known URLs.
     *
     * With a pinned token endpoint, metadata is only fetched from an authorization server on
     * that endpoint's origin, and only its issuer and revocation endpoint are taken, when its
     * token endpoint is the pinned one: a server cannot steer the product elsewhere.
     */
    async discover(serverUrl: string, pinned: { tokenEndpoint: string | null } = { tokenEndpoint: null }): Promise<Discovered> {
      const { extractWWWAuthenticateParams, discoverOAuthProtectedResourceMetadata, checkResourceAllowed, discoverAuthorizationServerMetadata } = await loadSdk();
      let resourceMetadataUrl: URL | undefined;
      let challengeScope: string | undefined;
      try {
        const probe = await fetch(serverUrl, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
        });
        if (probe.status === 401) ({ resourceMetadataUrl, scope: challengeScope } = extractWWWAuthenticateParams(probe as never));
        await probe.body?.cancel();
      } catch {
        // The well-known URLs may still answer.
      }
      let prm: OAuthProtectedResourceMetadata | null = null;
      try {
        prm = await discoverOAuthProtectedResourceMetadata(serverUrl, { resourceMetadataUrl }, fetchFn);
      } catch (err) {
        // 2025-03-26 servers have no protected resource metadata (the well-known URLs answer 404):
        // the server's origin is the AS. Any other failure is not "no metadata" (issue 20).
        if (!/does not implement OAuth 2\.0 Protected Resource Metadata/.test((err as Error).message ?? "")) {
          const where = resourceMetadataUrl?.href ?? `${new URL(serverUrl).origin}/.well-known/oauth-protected-resource`;
          const why = /^HTTP \d{3}/.test((err as Error).message ?? "") ? (err as Error).message.replace(/ trying.*$/, "") : describeOutboundError(err).message;
          throw new DiscoveryFailed(`the protected resource metadata at ${redact(where)} could not be fetched: ${why}`);
        }
      }
      if (prm && !checkResourceAllowed({ requestedResource: serverUrl, configuredResource: prm.resource })) {
        throw new ResourceMismatch(
          `the server's protected resource metadata names the resource ${redact(prm.resource)}, not this server's URL (RFC 9728 §3.3); refusing to use it`,
        );
      }
      const resource = prm?.resource ?? serverUrl;
      const scopes = challengeScope ?? (prm?.scopes_supported?.length ? prm.scopes_supported.join(" ") : null);
      const authorizationServer = prm?.authorization_servers?.[0] ?? new URL(serverUrl).origin;
      const nothing: Discovered = {
        issuer: null,
        authorizationEndpoint: null,
        tokenEndpoint: null,
        revocationEndpoint: null,
        tokenAuthMethod: null,
        resource,
        registrationEndpoint: null,
        clientIdMetadataDocumentSupported: false,
        issParameterSupported: false,
        scopes,
        offlineAccess: false,
        tokenAuthMethods: null,
      };
      if (pinned.tokenEndpoint && new URL(authorizationServer).origin !== new URL(pinned.tokenEndpoint).origin) return nothing;
      let metadata: AuthorizationServerMetadata | undefined;
      try {
        metadata = await discoverAuthorizationServerMetadata(authorizationServer, { fetchFn });
      } catch (err) {
        const why = /^HTTP \d{3}/.test((err as Error).message ?? "") ? (err as Error).message : describeOutboundError(err).message;
        throw new DiscoveryFailed(`the authorization server metadata of ${redact(authorizationServer)} could not be fetched: ${why}`);
      }
      if (!metadata) {
        if (prm || pinned.tokenEndpoint) throw new DiscoveryFailed("no authorization server metadata was found (RFC 9728 / RFC 8414 discovery)");
        // The 2025-03-26 fallback for servers without metadata: default paths on the server's origin.
        return {
          ...nothing,
          issuer: authorizationServer,
          authorizationEndpoint: `${authorizationServer}/authorize`,
          tokenEndpoint: `${authorizationServer}/token`,
          registrationEndpoint: `${authorizationServer}/register`,
          tokenAuthMethod: "client_secret_basic",
        };
      }
      // RFC 8414 §3.3: the metadata must name the issuer it was fetched for.
      if (metadata.issuer !== authorizationServer) {
        throw new DiscoveryFailed(
          `the authorization server metadata names the issuer ${redact(metadata.issuer)}, not ${redact(authorizationServer)} where it was fetched (RFC 8414 §3.3)`,
        );
      }
      if (pinned.tokenEndpoint) {
        if (metadata.token_endpoint !== pinned.tokenEndpoint) return nothing;
      } else if (!metadata.code_challenge_methods_supported?.includes("S256")) {
        throw new DiscoveryFailed("the authorization server does not offer S256 PKCE, which the MCP authorization spec requires");
      }
      const extra = metadata as { revocation_endpoint?: string; client_id_metadata_document_supported?: boolean; authorization_response_iss_parameter_supported?: boolean };
      return {
        issuer: metadata.issuer,
        authorizationEndpoint: metadata.authorization_endpoint ?? null,
        tokenEndpoint: metadata.token_endpoint ?? null,
        revocationEndpoint: extra.revocation_endpoint ?? null,
        tokenAuthMethod: preferredAuthMethod(metadata.token_endpoint_auth_methods_supported),
        resource,
        registrationEndpoint: metadata.registration_endpoint ?? null,
        clientIdMetadataDocumentSupported: extra.client_id_metadata_document_supported === true,
        issParameterSupported: extra.authorization_response_iss_parameter_supported === true,
        scopes,
        offlineAccess: metadata.scopes_supported?.includes("offline_access") ?? false,
        tokenAuthMethods: metadata.token_endpoint_auth_methods_supported ?? null,
      };
    },

    /** RFC 7591 dynamic registration of the product as a client of the authorization server. */
    async register(registrationEndpoint: string, options: { redirectUri: string; scope: string | null; supportedAuthMethods?: string[] }): Promise<OAuthClientIdentity> {
      const { registerClient } = await loadSdk();
      const authMethod = preferredAuthMethod(options.supportedAuthMethods);
      const info = await registerClient(registrationEndpoint, {
        metadata: { issuer: registrationEndpoint, registration_endpoint: registrationEndpoint } as AuthorizationServerMetadata,
        clientMetadata: {
          client_name: "mcp-servers-api",
          redirect_uris: [options.redirectUri],
          grant_types: ["authorization_code", "refresh_token"],
          response_types: ["code"],
          token_endpoint_auth_method: authMethod,
          application_type: "web",
        } as never,
        scope: options.scope ?? undefined,
        fetchFn,
      });
      return { clientId: info.client_id, clientSecret: info.client_secret ?? null, authMethod: info.token_endpoint_auth_method ?? (info.client_secret ? authMethod : "none") };
    },

    async authorizationUrl(setup: OAuthSetup, client: OAuthClientIdentity, options: { redirectUrl: string; scope: string | null; state: string }) {
      const { startAuthorization } = await loadSdk();
      return startAuthorization(setup.issuer, {
        metadata: metadataOf(setup, client),
        clientInformation: clientInformation(client),
        redirectUrl: options.redirectUrl,
        scope: options.scope ?? undefined,
        state: options.state,
        resource: new URL(setup.resource),
      });
    },

    async exchange(setup: OAuthSetup, client: OAuthClientIdentity, code: string, codeVerifier: string, redirectUri: string): Promise<OAuthTokens> {
      const loaded = await loadSdk();
      return loaded.exchangeAuthorization(setup.issuer, {
        metadata: metadataOf(setup, client),
        clientInformation: clientInformation(client),
        authorizationCode: code,
        codeVerifier,
        redirectUri,
        resource: new URL(setup.resource),
        addClientAuthentication: clientAssertion(loaded, setup, client),
        fetchFn,
      });
    },

    async refresh(setup: OAuthSetup, client: OAuthClientIdentity, refreshToken: string): Promise<OAuthTokens> {
      const loaded = await loadSdk();
      return loaded.refreshAuthorization(setup.issuer, {
        metadata: metadataOf(setup, client),
        clientInformation: clientInformation(client),
        refreshToken,
        resource: new URL(setup.resource),
        addClientAuthentication: clientAssertion(loaded, setup, client),
        fetchFn,
      });
    },

    async clientCredentials(setup: OAuthSetup, client: OAuthClientIdentity, scope: string | null): Promise<OAuthTokens> {
      const loaded = await loadSdk();
      // A minimal provider: fetchToken asks it for the grant and the client's identity.
      const provider = {
        clientMetadata: { redirect_uris: [], grant_types: ["client_credentials"], scope: scope ?? undefined },
        clientInformation: () => clientInformation(client),
        addClientAuthentication: clientAssertion(loaded, setup, client),
        prepareTokenRequest: (s?: string) => {
          const params = new URLSearchParams({ grant_type: "client_credentials" });
          if (s) params.set("scope", s);
          return params;
        },
      } as unknown as OAuthClientProvider;
      return loaded.fetchToken(provider, setup.issuer, { metadata: metadataOf(setup, client), resource: new URL(setup.resource), fetchFn });
    },

    /** RFC 7009 revocation; best effort (the tokens are forgotten either way). */
    async revoke(setup: OAuthSetup, client: OAuthClientIdentity, token: string, hint: "access_token" | "refresh_token"): Promise<boolean> {
      if (!setup.revocationEndpoint) return false;
      const params = new URLSearchParams({ token, token_type_hint: hint });
      const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
      const assertion = client.authMethod === "private_key_jwt" ? clientAssertion(await loadSdk(), setup, client) : undefined;
      if (assertion) {
        params.set("client_id", client.clientId);
        await assertion(new Headers(), params, setup.revocationEndpoint);
      } else if (client.authMethod !== "client_secret_basic" || !client.clientSecret) {
        params.set("client_id", client.clientId);
        if (client.clientSecret && client.authMethod === "client_secret_post") params.set("client_secret", client.clientSecret);
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
