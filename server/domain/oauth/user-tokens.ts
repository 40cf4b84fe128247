// A person's own OAuth tokens for a user-scope server (issue 20): stored on their connection,
// renewed before use by one refresher per (server, user) across processes, revoked on removal.
// One user's renewal never waits on another's: locks and in-flight renewals are per person.
import { randomUUID } from "node:crypto";
import type { StoredServer } from "../../data/mcp-server-repo.js";
import type { UserConnectionRepo } from "../../data/user-connection-repo.js";
import { isGrantRejected, type OAuthTokens } from "../../outbound/oauth-client.js";
import type { ConnectionError } from "../../wire.js";
import { ValidationFailed } from "../errors.js";
import type { OAuthContext } from "./context.js";
import type { Identity } from "./identity.js";
import { authError, expiresAtOf, REFRESH_MARGIN_MS, upstream } from "./rules.js";
import { fromStored, type Setup } from "./setup.js";

const LOCK_MS = 30 * 1000;
const LOCK_WAIT_MS = 10 * 1000;
const RECONNECT = "connect again at the connect page";

export type UserTokenOutcome =
  /** `generation`: the connection's (kept by a refresh), what sealed sessions are bound to. */
  | { ok: true; accessToken: string; generation: string | null }
  | { ok: false; status: "disconnected" | "error"; error: ConnectionError };

type Event = { actor: string; tokenId: string | null; requestId: string | null };

export function createUserTokens(ctx: OAuthContext, { setupFor }: Setup, { identity }: Identity, connections: UserConnectionRepo) {
  const { client, now } = ctx;
  // Concurrent calls of one person in this process share one renewal.
  const inFlight = new Map<string, Promise<UserTokenOutcome>>();

  async function store(stored: StoredServer, userId: string, tokens: OAuthTokens, keepRefresh: boolean, event?: Event) {
    const at = now();
    const refresh = tokens.refresh_token ?? (keepRefresh ? undefined : null);
    await connections.write(
      stored.server,
      userId,
      {
        secrets: { oauthAccessToken: tokens.access_token, ...(refresh !== undefined ? { oauthRefreshToken: refresh } : {}) },
        oauthExpiresAt: expiresAtOf(tokens, at),
        ...(typeof tokens.scope === "string" ? { oauthScopes: tokens.scope } : {}),
        // A new grant (the callback) establishes the connection anew; a refresh keeps it.
        ...(keepRefresh ? {} : { generation: randomUUID() }),
        status: "connected",
        lastError: null,
      },
      at.toISOString(),
      event ? { type: "connection_set", actor: event.actor, tokenId: event.tokenId, requestId: event.requestId, fields: [{ name: "oauthAccessToken", change: "set" }], subjectUserId: userId } : undefined,
    );
  }

  const fresh = (expiresAt: string | null) => expiresAt === null || Date.parse(expiresAt) - now().getTime() > REFRESH_MARGIN_MS;

  async function renew(stored: StoredServer, userId: string, refreshToken: string | null, generation: string | null): Promise<UserTokenOutcome> {
    const fail = async (status: "disconnected" | "error", error: ConnectionError): Promise<UserTokenOutcome> => {
      await connections.write(stored.server, userId, { status, lastError: error, ...(status === "disconnected" ? { secrets: { oauthAccessToken: null, oauthRefreshToken: null }, oauthExpiresAt: null } : {}) }, now().toISOString());
      return { ok: false, status, error };
    };
    if (!refreshToken) return fail("disconnected", authError(`the access token expired and there is no refresh token; ${RECONNECT}`));
    let setup;
    let who;
    try {
      ({ setup, stored } = await setupFor(stored));
      ({ client: who } = await identity(stored, setup, stored.server.oauthClientRegistration));
    } catch (err) {
      return { ok: false, status: "error", error: err instanceof ValidationFailed ? authError(err.message) : upstream(err).connectionError };
    }
    let tokens: OAuthTokens;
    try {
      tokens = await client.refresh(setup, who, refreshToken);
    } catch (err) {
      if (isGrantRejected(err)) return fail("disconnected", authError(`the authorization server rejected the refresh token; ${RECONNECT}`));
      return { ok: false, status: "error", error: upstream(err).connectionError };
    }
    // A rotated refresh token exists only in this answer: the write is retried rather than lost.
    for (let attempt = 1; ; attempt++) {
      try {
        await store(stored, userId, tokens, true);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
    return { ok: true, accessToken: tokens.access_token, generation };
  }

  async function acquire(stored: StoredServer, userId: string): Promise<UserTokenOutcome> {
    const deadline = now().getTime() + LOCK_WAIT_MS;
    for (;;) {
      const connection = await connections.find(stored.server.id, userId);
      const secrets = connection && (await connections.openSecrets(stored.server, userId));
      if (!connection || !secrets || (!secrets.oauthAccessToken && !secrets.oauthRefreshToken)) {
        return { ok: false, status: "disconnected", error: authError(`not connected yet; ${RECONNECT}`) };
      }
      if (secrets.oauthAccessToken && fresh(connection.oauthExpiresAt)) return { ok: true, accessToken: secrets.oauthAccessToken, generation: connection.generation };
      const t = now();
      if (await connections.tryRefreshLock(stored.server.id, userId, new Date(t.getTime() + LOCK_MS).toISOString(), t.toISOString())) {
        try {
          // Another process may have renewed it between our read and the lock.
          const again = await connections.find(stored.server.id, userId);
          const current = again && (await connections.openSecrets(stored.server, userId));
          if (again && current?.oauthAccessToken && fresh(again.oauthExpiresAt)) return { ok: true, accessToken: current.oauthAccessToken, generation: again.generation };
          return await renew(stored, userId, current?.oauthRefreshToken ?? null, again?.generation ?? null);
        } finally {
          await connections.releaseRefreshLock(stored.server.id, userId);
        }
      }
      if (now().getTime() > deadline) return { ok: false, status: "error", error: { class: "timeout", message: "another process is renewing the token; try again", httpStatus: null } };
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    storeUserTokens: store,

    /** A usable access token of `userId`'s own connection, renewed first when it expires within a minute. */
    userAccessToken(stored: StoredServer, userId: string): Promise<UserTokenOutcome> {
      const key = `${stored.server.id}/${userId}`;
      const running = inFlight.get(key);
      if (running) return running;
      const started = acquire(stored, userId).finally(() => inFlight.delete(key));
      inFlight.set(key, started);
      return started;
    },

    /** Revokes a person's tokens where the authorization server offers revocation (RFC 7009); failures are not fatal. */
    async revokeUserTokens(stored: StoredServer, tokens: { oauthAccessToken: string | null; oauthRefreshToken: string | null }): Promise<void> {
      if (!stored.server.oauthTokenEndpoint || (!tokens.oauthAccessToken && !tokens.oauthRefreshToken)) return;
      const setup = fromStored(stored, stored.oauth);
      const who = await identity(stored, setup, stored.server.oauthClientRegistration)
        .then((i) => i.client)
        .catch(() => null);
      if (!who) return;
      if (tokens.oauthRefreshToken) await client.revoke(setup, who, tokens.oauthRefreshToken, "refresh_token").catch(() => false);
      if (tokens.oauthAccessToken) await client.revoke(setup, who, tokens.oauthAccessToken, "access_token").catch(() => false);
    },
  };
}

export type UserTokens = ReturnType<typeof createUserTokens>;
