// Pure rules of the OAuth connection: which grant, which scopes, where a user may return,
// and how an outbound failure is described.
import { createHash } from "node:crypto";
import type { StoredServer } from "../../data/mcp-server-repo.js";
import { describeTokenError, DiscoveryFailed, ResourceMismatch, type OAuthTokens } from "../../outbound/oauth-client.js";
import { describeOutboundError } from "../../outbound/guarded-fetch.js";
import type { ConnectionError } from "../../wire.js";
import { UpstreamFailure } from "../errors.js";

export const STATE_TTL_MS = 10 * 60 * 1000;
export const REFRESH_MARGIN_MS = 60 * 1000;

/**
 * A token is renewed when less than min(60 s, half its lifetime) remains (issue 18), so a
 * 30-second token is not renewed on every call. A token of unknown lifetime gets the 60 s.
 */
export function needsRenewal(expiresAt: string | null, obtainedAt: string | null, now: number): boolean {
  if (expiresAt === null) return false;
  const expires = Date.parse(expiresAt);
  const lifetime = obtainedAt === null ? Infinity : expires - Date.parse(obtainedAt);
  return expires - now <= Math.min(REFRESH_MARGIN_MS, lifetime / 2);
}

export const REAUTHORIZE = "re-authorize with POST /api/mcp-servers/{id}/oauth/authorize";

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export function expiresAtOf(tokens: OAuthTokens, now: Date): string | null {
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

export function authError(message: string): ConnectionError {
  return { class: "auth", message, httpStatus: null };
}

/** The grant: what the record says, else client credentials for a token endpoint without an authorization endpoint. */
export const usesClientCredentials = (s: StoredServer) =>
  s.server.oauthGrantType === "client_credentials" ||
  (s.server.oauthGrantType === null && s.server.oauthTokenEndpoint !== null && s.server.oauthAuthorizationEndpoint === null);

/**
 * The scopes to ask for: the record's, else the server's challenge or metadata, with those the
 * server demanded since (step-up, issue 20); offline_access where offered.
 */
export function scopesFor(stored: StoredServer): string | null {
  const d = stored.oauth.discovery;
  const asked = stored.server.oauthScopes ?? d?.scopes ?? null;
  const demanded = stored.oauth.stepUp?.required ?? [];
  const base = demanded.length === 0 ? asked : [...new Set([...(asked ?? "").split(" ").filter(Boolean), ...demanded])].join(" ");
  if (!d?.offlineAccess || usesClientCredentials(stored)) return base;
  const list = (base ?? "").split(" ").filter(Boolean);
  return list.includes("offline_access") ? base : [...list, "offline_access"].join(" ");
}

export function upstream(err: unknown): UpstreamFailure {
  if (err instanceof ResourceMismatch) return new UpstreamFailure({ class: "auth", message: err.message, httpStatus: null });
  if (err instanceof DiscoveryFailed) return new UpstreamFailure({ class: "protocol", message: err.message.slice(0, 300), httpStatus: null });
  const tokenError = describeTokenError(err);
  if (tokenError) return new UpstreamFailure(tokenError);
  const d = describeOutboundError(err);
  return new UpstreamFailure({ class: d.class === "protocol" ? "auth" : d.class, message: d.message.slice(0, 300), httpStatus: null });
}

