// Access tokens for outbound calls: stored, renewed before use (one renewer per server across
// processes), or cleared when the authorization server rejects the grant.
import type { Secrets, StoredServer } from "../../data/mcp-server-repo.js";
import { isGrantRejected, type OAuthClientIdentity, type OAuthSetup, type OAuthTokens } from "../../outbound/oauth-client.js";
import type { ConnectionError } from "../../wire.js";
import { ValidationFailed } from "../errors.js";
import type { OAuthContext } from "./context.js";
import type { Identity } from "./identity.js";
import { authError, expiresAtOf, REAUTHORIZE, REFRESH_MARGIN_MS, scopesFor, upstream, usesClientCredentials } from "./rules.js";
import type { Setup } from "./setup.js";

const LOCK_MS = 30 * 1000;
const LOCK_WAIT_MS = 10 * 1000;

export type TokenOutcome =
  | { ok: true; accessToken: string; stored: StoredServer }
  | { ok: false; connectorStatus: "disconnected" | "error"; error: ConnectionError; stored: StoredServer };

export function createTokens(ctx: OAuthContext, { setupFor }: Setup, { identity, forgetRejectedRegistration }: Identity) {
  const { repo, client, now } = ctx;

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

  /**
   * A usable access token for an outbound call, refreshed or fetched first when it is
   * missing or expires within a minute. Only one process refreshes a server at a time:
   * the lock is a conditional update on the record, so it holds across processes.
   */
  async function accessToken(stored: StoredServer): Promise<TokenOutcome> {
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
  }

  return { storeTokens, accessToken };
}
