// Access tokens for outbound calls: stored, renewed before use (one renewer per server across
// processes), or cleared when the authorization server rejects the grant.
import { randomUUID } from "node:crypto";
import type { StoredServer } from "../../data/mcp-server-repo.js";
import { isGrantRejected, type OAuthSetup, type OAuthTokens } from "../../outbound/oauth-client.js";
import type { ConnectionError } from "../../wire.js";
import { NotFound, ValidationFailed } from "../errors.js";
import type { OAuthContext } from "./context.js";
import type { ChosenIdentity, Identity } from "./identity.js";
import { authError, expiresAtOf, needsRenewal, REAUTHORIZE, scopesFor, upstream, usesClientCredentials } from "./rules.js";
import type { Migration } from "./migration.js";
import type { Pending, Setup } from "./setup.js";
import { RecordChanged, writeAfterWork, writeDisconnected } from "./versioned.js";

const LOCK_MS = 30 * 1000;
const LOCK_WAIT_MS = 10 * 1000;

export type TokenOutcome =
  | { ok: true; accessToken: string; stored: StoredServer }
  /** `moved`: the refresh failed because the authorization server moved (the tokens were dropped; issue 20 item 6). */
  | { ok: false; connectorStatus: "disconnected" | "error"; error: ConnectionError; stored: StoredServer; moved?: true };

export function createTokens(ctx: OAuthContext, { setupFor }: Setup, { identity, forgetRejectedRegistration }: Identity, migration: Migration) {
  const { repo, client, now } = ctx;

  /** The tokens a flow obtained, with what its discovery learned, on the record the flow started from (or RecordChanged). */
  async function storeTokens(
    snapshot: StoredServer,
    tokens: OAuthTokens,
    keepRefresh: boolean,
    pending: Pending | null,
    /** Whether these tokens establish the connection (callback, first grant) rather than renew it. */
    connects: boolean,
    event?: { actor: string; tokenId: string | null; requestId: string | null },
  ) {
    const at = now();
    const refresh = tokens.refresh_token ?? (keepRefresh ? undefined : null);
    return writeAfterWork(
      repo,
      snapshot,
      {
        secrets: { oauthAccessToken: tokens.access_token, ...(refresh !== undefined ? { oauthRefreshToken: refresh } : {}) },
        fields: { ...pending?.fields, oauthExpiresAt: expiresAtOf(tokens, at), connectorStatus: "connected" },
        internals: { ...pending?.internals, tokenObtainedAt: at.toISOString(), ...(connects ? { generation: randomUUID() } : {}) },
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
    try {
      const updated = await writeDisconnected(repo, stored, error, at);
      return { ok: false, connectorStatus: "disconnected", error, stored: updated };
    } catch (err) {
      return failure(err, stored);
    }
  }

  /** A record changed (or deleted) during the renewal: nothing was written; the caller may try again. */
  function failure(err: unknown, stored: StoredServer): TokenOutcome {
    if (err instanceof RecordChanged || err instanceof NotFound) return { ok: false, connectorStatus: "error", error: authError(err.message), stored };
    throw err;
  }

  const fresh = (stored: StoredServer, hasToken: boolean) => hasToken && !needsRenewal(stored.server.oauthExpiresAt, stored.oauth.tokenObtainedAt, now().getTime());

  /** Gets a new token (refresh or client credentials) while holding the server's lock. */
  async function renew(snapshot: StoredServer): Promise<TokenOutcome> {
    let chosen: ChosenIdentity;
    let stored = snapshot;
    let pending: Pending | null;
    try {
      let setup: OAuthSetup;
      ({ setup, stored, pending } = await setupFor(snapshot));
      chosen = await identity(stored, setup, usesClientCredentials(stored) ? "pre_registered" : stored.server.oauthClientRegistration);
    } catch (err) {
      const error = err instanceof ValidationFailed ? authError(err.message) : upstream(err).connectionError;
      return { ok: false, connectorStatus: "error", error, stored };
    }
    const { setup, client: who, secrets } = chosen;
    try {
      if (usesClientCredentials(stored)) {
        const tokens = await client.clientCredentials(setup, who, scopesFor(stored));
        try {
          return { ok: true, accessToken: tokens.access_token, stored: await storeTokens(snapshot, tokens, false, pending, snapshot.oauth.generation === null || !snapshot.secretsSet.oauthAccessToken) };
        } catch (err) {
          return failure(err, stored);
        }
      }
      if (!secrets.oauthRefreshToken) {
        return disconnectFor(snapshot, secrets.oauthAccessToken ? `the access token expired and there is no refresh token; ${REAUTHORIZE}` : `not authorized yet; ${REAUTHORIZE}`);
      }
      const tokens = await client.refresh(setup, who, secrets.oauthRefreshToken);
      try {
        return { ok: true, accessToken: tokens.access_token, stored: await storeTokens(snapshot, tokens, true, pending, false) };
      } catch (err) {
        return failure(err, stored);
      }
    } catch (err) {
      await forgetRejectedRegistration(err, chosen, setup.tokenEndpoint);
      if (!usesClientCredentials(stored)) {
        // A failed refresh may mean the MCP server moved to another authorization server: its tokens are dropped, never sent there.
        const moved = await migration.authorizationServerMoved(snapshot);
        if (moved) return { ok: false, connectorStatus: "disconnected", error: moved.error, stored: (await repo.find([stored.server.workspaceId], stored.server.id)) ?? stored, moved: true };
      }
      if (isGrantRejected(err)) {
        if (usesClientCredentials(stored)) {
          return { ok: false, connectorStatus: "error", error: authError("the authorization server refused the client credentials"), stored };
        }
        return disconnectFor(snapshot, `the authorization server rejected the refresh token; ${REAUTHORIZE}`);
      }
      return { ok: false, connectorStatus: "error", error: upstream(err).connectionError, stored };
    }
  }

  // One acquisition per record version in this process: callers that arrive while one runs share its
  // outcome, so a hanging or failing authorization server is asked once, not once per waiter
  // that wins the lock after it (and waiters do not poll the store while it runs).
  const inFlight = new Map<string, Promise<TokenOutcome>>();

  /**
   * A usable access token for an outbound call, refreshed or fetched first when it is missing
   * or about to expire (see needsRenewal). Only one process refreshes a server at a time:
   * the lock is a conditional update on the record, so it holds across processes.
   */
  function accessToken(stored: StoredServer): Promise<TokenOutcome> {
    const key = `${stored.server.workspaceId}/${stored.server.id}@${stored.version}`;
    const running = inFlight.get(key);
    if (running) return running;
    const started = acquire(stored).finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  }

  async function acquire(stored: StoredServer): Promise<TokenOutcome> {
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
