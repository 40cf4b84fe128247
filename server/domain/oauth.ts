// The product's OAuth connection to each `oauth` MCP server: authorization code with PKCE,
// client credentials, refresh before use (one refresher per server across processes),
// revocation, and discovery of what the record leaves out.
import { createHash, randomBytes } from "node:crypto";
import type { McpServerRepo, OAuthClientRegistration, OAuthInternals, Secrets, ServerFields, StoredServer } from "../data/mcp-server-repo.js";
import type { OAuthRegistrationRepo } from "../data/oauth-registration-repo.js";
import type { OAuthStateRepo } from "../data/oauth-state-repo.js";
import type { TokenRepo } from "../data/token-repo.js";
import {
  describeTokenError,
  DiscoveryFailed,
  isClientRejected,
  isGrantRejected,
  ResourceMismatch,
  type OAuthClient,
  type OAuthClientIdentity,
  type OAuthSetup,
  type OAuthTokens,
} from "../outbound/oauth-client.js";
import { describeOutboundError } from "../outbound/guarded-fetch.js";
import type { ConnectionError, OAuthAuthorization } from "../wire.js";
import { NotFound, UpstreamFailure, ValidationFailed } from "./errors.js";
import type { Versioned } from "./mcp-servers.js";
import type { Actor } from "./tokens.js";

export const STATE_TTL_MS = 10 * 60 * 1000;
export const REFRESH_MARGIN_MS = 60 * 1000;
const LOCK_MS = 30 * 1000;
const LOCK_WAIT_MS = 10 * 1000;

export interface OAuthServiceDeps {
  repo: McpServerRepo;
  states: OAuthStateRepo;
  tokens: TokenRepo;
  registrations: OAuthRegistrationRepo;
  client: OAuthClient;
  /** The product's public base URL; the callback is `<publicUrl>/api/oauth/callback`. */
  publicUrl: () => string;
  /** Allowed prefixes for `returnUrl`. */
  returnUrlPrefixes: string[];
  now?: () => Date;
}

export type TokenOutcome =
  | { ok: true; accessToken: string; stored: StoredServer }
  | { ok: false; connectorStatus: "disconnected" | "error"; error: ConnectionError; stored: StoredServer };

/** What the callback answers: a redirect to the caller's returnUrl, or a page to show. */
export type CallbackOutcome =
  | { status: 302; location: string }
  | { status: 200 | 400 | 403 | 502; title: string; message: string };

const REAUTHORIZE = "re-authorize with POST /api/mcp-servers/{id}/oauth/authorize";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function expiresAtOf(tokens: OAuthTokens, now: Date): string | null {
  return typeof tokens.expires_in === "number" ? new Date(now.getTime() + tokens.expires_in * 1000).toISOString() : null;
}

/**
 * A return URL is allowed when it has the origin of an allowed one exactly, its path lies
 * under that one's path (on a segment boundary), and it carries no userinfo.
 */
export function returnUrlAllowed(candidate: string, allowed: string[]): boolean {
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    return false;
  }
  if (url.username || url.password || (url.protocol !== "https:" && url.protocol !== "http:")) return false;
  return allowed.some((entry) => {
    let base: URL;
    try {
      base = new URL(entry);
    } catch {
      return false;
    }
    if (base.origin !== url.origin) return false;
    const dir = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
    return url.pathname === base.pathname || url.pathname.startsWith(dir);
  });
}

function authError(message: string): ConnectionError {
  return { class: "auth", message, httpStatus: null };
}

export function createOAuthService(deps: OAuthServiceDeps) {
  const { repo, states, client, now = () => new Date() } = deps;
  const redirectUri = () => `${deps.publicUrl().replace(/\/$/, "")}/api/oauth/callback`;

  /** The product's Client ID Metadata Document URL: its client id where CIMD is supported. */
  const metadataDocumentUrl = () => `${deps.publicUrl().replace(/\/$/, "")}/client-metadata.json`;

  /**
   * Who the product is at the record's authorization server, in the MCP spec's order: the
   * record's own client id; else its metadata document URL (CIMD); else a client registered
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

  /** The grant: what the record says, else client credentials for a token endpoint without an authorization endpoint. */
  const usesClientCredentials = (s: StoredServer) =>
    s.server.oauthGrantType === "client_credentials" ||
    (s.server.oauthGrantType === null && s.server.oauthTokenEndpoint !== null && s.server.oauthAuthorizationEndpoint === null);

  /** The scopes to ask for: the record's, else the server's challenge or metadata; offline_access where offered. */
  function scopesFor(stored: StoredServer): string | null {
    const d = stored.oauth.discovery;
    const base = stored.server.oauthScopes ?? d?.scopes ?? null;
    if (!d?.offlineAccess || usesClientCredentials(stored)) return base;
    const list = (base ?? "").split(" ").filter(Boolean);
    return list.includes("offline_access") ? base : [...list, "offline_access"].join(" ");
  }

  /**
   * The authorization server setup for a record: what the record says, completed by discovery
   * (once; what was found is stored). Endpoints the user gave always win, and what discovery
   * says about another authorization server than the pinned token endpoint's is not used.
   */
  async function setupFor(
    stored: StoredServer,
    options: { defer?: boolean } = {},
  ): Promise<{ setup: OAuthSetup; stored: StoredServer; pending: { fields: Partial<ServerFields>; internals: OAuthInternals } | null }> {
    const s = stored.server;
    const known = stored.oauth;
    if (known.issuer && s.oauthTokenEndpoint) {
      return { setup: fromStored(stored, known), stored, pending: null };
    }
    let found: Awaited<ReturnType<OAuthClient["discover"]>> | null = null;
    try {
      found = await client.discover(s.url, { tokenEndpoint: s.oauthTokenEndpoint });
    } catch (err) {
      // Without endpoints of its own the record depends on discovery; with them it is a bonus.
      // A server that claims another resource is refused either way.
      if (!s.oauthTokenEndpoint || err instanceof ResourceMismatch) throw err;
    }
    const internals: OAuthInternals = {
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
      },
    };
    const fields: { oauthTokenEndpoint?: string; oauthAuthorizationEndpoint?: string } = {};
    if (!s.oauthTokenEndpoint) {
      if (!found?.tokenEndpoint) throw new DiscoveryFailed("the authorization server metadata names no token endpoint");
      fields.oauthTokenEndpoint = found.tokenEndpoint;
      if (!s.oauthAuthorizationEndpoint && found.authorizationEndpoint) fields.oauthAuthorizationEndpoint = found.authorizationEndpoint;
    }
    if (options.defer) {
      // The caller writes it once the rest succeeds, so a failure leaves the record as it was.
      const preview: StoredServer = { ...stored, server: { ...stored.server, ...fields }, oauth: internals };
      return { setup: fromStored(preview, internals), stored: preview, pending: { fields, internals } };
    }
    const updated = (await repo.writeOAuth(stored, { fields, internals }, now().toISOString())) ?? stored;
    return { setup: fromStored(updated, internals), stored: updated, pending: null };
  }

  function fromStored(stored: StoredServer, known: OAuthInternals): OAuthSetup {
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

  function upstream(err: unknown): UpstreamFailure {
    if (err instanceof ResourceMismatch) return new UpstreamFailure({ class: "auth", message: err.message, httpStatus: null });
    if (err instanceof DiscoveryFailed) return new UpstreamFailure({ class: "protocol", message: err.message.slice(0, 300), httpStatus: null });
    const tokenError = describeTokenError(err);
    if (tokenError) return new UpstreamFailure(tokenError);
    const d = describeOutboundError(err);
    return new UpstreamFailure({ class: d.class === "protocol" ? "auth" : d.class, message: d.message.slice(0, 300), httpStatus: null });
  }

  async function storeTokens(stored: StoredServer, tokens: OAuthTokens, keepRefresh: boolean, event?: { actor: string; tokenId: string | null; requestId: string | null }) {
    const at = now();
    const refresh = tokens.refresh_token ?? (keepRefresh ? undefined : null);
    return repo.writeOAuth(
      stored,
      {
        secrets: { oauthAccessToken: tokens.access_token, ...(refresh !== undefined ? { oauthRefreshToken: refresh } : {}) },
        fields: { oauthExpiresAt: expiresAtOf(tokens, at), connectorStatus: "connected" },
        lastError: null,
      },
      at.toISOString(),
      event
        ? { type: "oauth_connected", actor: event.actor, tokenId: event.tokenId, requestId: event.requestId, fields: [{ name: "oauthAccessToken", change: "set" }] }
        : undefined,
    );
  }

  async function disconnectFor(stored: StoredServer, message: string): Promise<TokenOutcome> {
    const at = now().toISOString();
    const error = authError(message);
    const updated =
      (await repo.writeOAuth(
        stored,
        {
          secrets: { oauthAccessToken: null, oauthRefreshToken: null },
          fields: { oauthExpiresAt: null, connectorStatus: "disconnected" },
          lastError: error,
          lastCheckedAt: at,
        },
        at,
        stored.server.connectorStatus !== "disconnected"
          ? { type: "status_changed", actor: "system", tokenId: null, requestId: null, fields: [{ name: "connectorStatus", change: "changed" }] }
          : undefined,
      )) ?? stored;
    return { ok: false, connectorStatus: "disconnected", error, stored: updated };
  }

  const fresh = (stored: StoredServer, hasToken: boolean) =>
    hasToken && (stored.server.oauthExpiresAt === null || Date.parse(stored.server.oauthExpiresAt) - now().getTime() > REFRESH_MARGIN_MS);

  /** Gets a new token (refresh or client credentials) while holding the server's lock. */
  async function renew(stored: StoredServer): Promise<TokenOutcome> {
    let setup: OAuthSetup;
    let who: OAuthClientIdentity;
    let secrets: Secrets;
    try {
      ({ setup, stored } = await setupFor(stored));
      ({ client: who, secrets } = await identity(stored, setup, usesClientCredentials(stored) ? "pre_registered" : stored.server.oauthClientRegistration));
    } catch (err) {
      const error = err instanceof ValidationFailed ? authError(err.message) : upstream(err).connectionError;
      return { ok: false, connectorStatus: "error", error, stored };
    }
    try {
      if (usesClientCredentials(stored)) {
        const tokens = await client.clientCredentials(setup, who, scopesFor(stored));
        const updated = (await storeTokens(stored, tokens, false)) ?? stored;
        return { ok: true, accessToken: tokens.access_token, stored: updated };
      }
      if (!secrets.oauthRefreshToken) {
        return disconnectFor(stored, secrets.oauthAccessToken ? `the access token expired and there is no refresh token; ${REAUTHORIZE}` : `not authorized yet; ${REAUTHORIZE}`);
      }
      const tokens = await client.refresh(setup, who, secrets.oauthRefreshToken);
      const updated = (await storeTokens(stored, tokens, true)) ?? stored;
      return { ok: true, accessToken: tokens.access_token, stored: updated };
    } catch (err) {
      await forgetRejectedRegistration(err, stored, setup);
      if (isGrantRejected(err)) {
        if (usesClientCredentials(stored)) {
          return { ok: false, connectorStatus: "error", error: authError("the authorization server refused the client credentials"), stored };
        }
        return disconnectFor(stored, `the authorization server rejected the refresh token; ${REAUTHORIZE}`);
      }
      return { ok: false, connectorStatus: "error", error: upstream(err).connectionError, stored };
    }
  }

  return {
    /** The product's Client ID Metadata Document, served at its own URL (its client id). */
    clientMetadata() {
      return {
        client_id: metadataDocumentUrl(),
        client_name: "mcp-servers-api",
        client_uri: deps.publicUrl().replace(/\/$/, ""),
        redirect_uris: [redirectUri()],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
        application_type: "web",
      };
    },

    /**
     * A usable access token for an outbound call, refreshed or fetched first when it is
     * missing or expires within a minute. Only one process refreshes a server at a time:
     * the lock is a conditional update on the record, so it holds across processes.
     */
    async accessToken(stored: StoredServer): Promise<TokenOutcome> {
      const deadline = now().getTime() + LOCK_WAIT_MS;
      for (;;) {
        const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
        if (fresh(stored, secrets.oauthAccessToken !== null)) return { ok: true, accessToken: secrets.oauthAccessToken!, stored };
        const t = now();
        if (await repo.tryRefreshLock(stored, new Date(t.getTime() + LOCK_MS).toISOString(), t.toISOString())) {
          try {
            // Someone may have renewed it between our read and the lock.
            const current = (await repo.find([stored.server.workspaceId], stored.server.id)) ?? stored;
            const again = await repo.openSecrets(current.server.workspaceId, current.server.id);
            if (fresh(current, again.oauthAccessToken !== null)) return { ok: true, accessToken: again.oauthAccessToken!, stored: current };
            return await renew(current);
          } finally {
            await repo.releaseRefreshLock(stored);
          }
        }
        if (now().getTime() > deadline) {
          return { ok: false, connectorStatus: "error", error: { class: "timeout", message: "another process is renewing the token; try again", httpStatus: null }, stored };
        }
        await new Promise((r) => setTimeout(r, 100));
        stored = (await repo.find([stored.server.workspaceId], stored.server.id)) ?? stored;
      }
    },

    async start(actor: Actor, id: string, options: { returnUrl?: string }): Promise<OAuthAuthorization> {
      let stored = await repo.find(actor.workspaces, id);
      if (!stored) throw new NotFound(`MCP server ${id}`);
      if (stored.server.authType !== "oauth") throw new ValidationFailed([{ path: "/authType", message: `must be oauth to authorize (it is ${stored.server.authType})` }]);
      if (options.returnUrl && !returnUrlAllowed(options.returnUrl, deps.returnUrlPrefixes)) {
        throw new ValidationFailed([{ path: "/returnUrl", message: "is not on the allowlist (MCP_API_OAUTH_RETURN_URLS)" }]);
      }
      const original = stored;
      let setup: OAuthSetup;
      let pending: Awaited<ReturnType<typeof setupFor>>["pending"];
      try {
        ({ setup, stored, pending } = await setupFor(stored, { defer: true }));
      } catch (err) {
        throw upstream(err);
      }
      if (!setup.authorizationEndpoint || usesClientCredentials(stored)) {
        throw new ValidationFailed([
          { path: "/oauthGrantType", message: "is client_credentials (or inferred so): this server needs no authorization in a browser; use POST /test" },
        ]);
      }
      const state = randomBytes(32).toString("base64url");
      let started;
      let kind: OAuthClientRegistration;
      try {
        const chosen = await identity(stored, setup);
        kind = chosen.kind;
        started = await client.authorizationUrl(setup, chosen.client, { redirectUrl: redirectUri(), scope: scopesFor(stored), state });
      } catch (err) {
        if (err instanceof ValidationFailed) throw err;
        throw upstream(err);
      }
      if (pending || original.server.oauthClientRegistration !== kind) {
        const fields = { ...pending?.fields, oauthClientRegistration: kind };
        stored = (await repo.writeOAuth(original, { fields, ...(pending ? { internals: pending.internals } : {}) }, now().toISOString())) ?? stored;
      }
      const at = now();
      const expiresAt = new Date(at.getTime() + STATE_TTL_MS).toISOString();
      await states.insert({
        stateHash: sha256(state),
        serverId: stored.server.id,
        workspaceId: stored.server.workspaceId,
        userId: actor.userId,
        tokenId: actor.tokenId,
        codeVerifier: started.codeVerifier,
        redirectUri: redirectUri(),
        returnUrl: options.returnUrl ?? null,
        createdAt: at.toISOString(),
        expiresAt,
      });
      return { authorizationUrl: started.authorizationUrl.toString(), expiresAt };
    },

    /** The authorization server's redirect back. The state is the only credential. */
    async complete(query: { state?: string; code?: string; error?: string; error_description?: string; iss?: string }): Promise<CallbackOutcome> {
      const failed = (status: 400 | 403 | 502, message: string): CallbackOutcome => ({ status, title: "Authorization failed", message });
      if (!query.state) return failed(400, "The request has no state. Start again from the product.");
      const claim = await states.consume(sha256(query.state), now().toISOString());
      if (claim === "unknown") return failed(400, "This authorization request is unknown. Start again from the product.");
      if (claim === "replayed") return failed(400, "This authorization request was already used. Start again from the product.");
      if (claim === "expired") return failed(400, "This authorization request expired. Start again from the product.");

      // The user who started the flow must still be able to act on the server.
      const starter = await deps.tokens.findActiveById(claim.tokenId);
      if (!starter || starter.userId !== claim.userId || !starter.workspaces.includes(claim.workspaceId)) {
        return failed(403, "The user who started this authorization may no longer act in this workspace.");
      }
      const stored = await repo.find([claim.workspaceId], claim.serverId);
      if (!stored || stored.server.authType !== "oauth") return failed(400, "The MCP server no longer exists or no longer uses OAuth.");
      const back = (status: "connected" | "error"): string | undefined => {
        if (!claim.returnUrl) return undefined;
        const url = new URL(claim.returnUrl);
        url.searchParams.set("mcpServerId", claim.serverId);
        url.searchParams.set("status", status);
        return url.toString();
      };
      const recordFailure = async (error: ConnectionError, status: 400 | 502, message: string): Promise<CallbackOutcome> => {
        await repo.writeOAuth(stored, { lastError: error }, now().toISOString());
        const location = back("error");
        return location ? { status: 302, location } : failed(status, message);
      };

      if (query.error) {
        const reason = query.error.replace(/[^\w.-]/g, "").slice(0, 60);
        return recordFailure(authError(`the authorization server refused: ${reason}`), 400, `The authorization server refused: ${reason}.`);
      }
      if (!query.code) return recordFailure(authError("the authorization server sent no code"), 400, "The authorization server sent no code.");
      // RFC 9207: a present iss must be the issuer, byte for byte; one the server promised must be present.
      // With pinned endpoints and no metadata, the issuer is unknown and there is nothing to compare.
      const issuer = stored.oauth.discovery?.issuer ?? null;
      if (query.iss !== undefined ? issuer !== null && query.iss !== issuer : stored.oauth.discovery?.issParameterSupported === true) {
        // Whoever sent this response is not trusted to change the record: nothing is written.
        const why = query.iss === undefined ? "did not say which authorization server sent it (no iss), though that server promises to" : "came from another authorization server than the one the flow started at (iss mismatch)";
        const location = back("error");
        return location ? { status: 302, location } : failed(400, `The authorization response ${why}. Start again from the product.`);
      }

      let tokens: OAuthTokens;
      let current = stored;
      try {
        const { setup, stored: s } = await setupFor(stored);
        current = s;
        const { client: who } = await identity(current, setup, current.server.oauthClientRegistration);
        tokens = await client.exchange(setup, who, query.code, claim.codeVerifier, claim.redirectUri).catch(async (err) => {
          await forgetRejectedRegistration(err, current, setup);
          throw err;
        });
      } catch (err) {
        const error = err instanceof UpstreamFailure ? err.connectionError : upstream(err).connectionError;
        return recordFailure({ ...error, message: `the code exchange failed: ${error.message}` }, 502, "The authorization server did not accept the code exchange.");
      }
      await storeTokens(current, tokens, false, { actor: claim.userId, tokenId: claim.tokenId, requestId: null });
      const location = back("connected");
      return location ? { status: 302, location } : { status: 200, title: "Connected", message: "The MCP server is connected. You can close this page." };
    },

    async disconnect(actor: Actor, id: string): Promise<Versioned> {
      const stored = await repo.find(actor.workspaces, id);
      if (!stored) throw new NotFound(`MCP server ${id}`);
      if (stored.server.authType !== "oauth") throw new ValidationFailed([{ path: "/authType", message: `must be oauth to disconnect (it is ${stored.server.authType})` }]);
      const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
      // No token endpoint: nothing was ever issued there, so there is nothing to revoke.
      const who = stored.server.oauthTokenEndpoint
        ? await identity(stored, fromStored(stored, stored.oauth), stored.server.oauthClientRegistration)
            .then((i) => i.client)
            .catch(() => null)
        : null;
      if (stored.server.oauthTokenEndpoint && (secrets.oauthRefreshToken || secrets.oauthAccessToken)) {
        const setup = fromStored(stored, stored.oauth);
        if (who && secrets.oauthRefreshToken) await client.revoke(setup, who, secrets.oauthRefreshToken, "refresh_token");
        if (who && secrets.oauthAccessToken) await client.revoke(setup, who, secrets.oauthAccessToken, "access_token");
      }
      const at = now().toISOString();
      const fields = [
        ...(secrets.oauthAccessToken ? [{ name: "oauthAccessToken", change: "cleared" as const }] : []),
        ...(secrets.oauthRefreshToken ? [{ name: "oauthRefreshToken", change: "cleared" as const }] : []),
      ];
      const updated = await repo.writeOAuth(
        stored,
        { secrets: { oauthAccessToken: null, oauthRefreshToken: null }, fields: { oauthExpiresAt: null, connectorStatus: "disconnected" } },
        at,
        { type: "oauth_disconnected", actor: actor.userId, tokenId: actor.tokenId, requestId: actor.requestId ?? null, fields },
      );
      if (!updated) throw new NotFound(`MCP server ${id}`);
      return updated;
    },
  };
}

export type OAuthService = ReturnType<typeof createOAuthService>;
