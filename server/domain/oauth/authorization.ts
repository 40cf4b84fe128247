// The authorization-code flow a user goes through (start, the callback) and disconnecting.
import { randomBytes } from "node:crypto";
import type { StoredServer } from "../../data/mcp-server-repo.js";
import type { OAuthSetup, OAuthTokens } from "../../outbound/oauth-client.js";
import type { ConnectionError, OAuthAuthorization } from "../../wire.js";
import { NotFound, UpstreamFailure, ValidationFailed } from "../errors.js";
import type { Versioned } from "../mcp-servers.js";
import type { Actor } from "../tokens.js";
import type { OAuthContext } from "./context.js";
import type { ChosenIdentity, Identity } from "./identity.js";
import { authError, returnUrlAllowed, scopesFor, sha256, STATE_TTL_MS, upstream, usesClientCredentials } from "./rules.js";
import { fromStored, type Pending, type Setup } from "./setup.js";
import { assertUnchanged, RecordChanged, writeAfterWork } from "./versioned.js";
import type { createTokens } from "./tokens.js";
import type { UserTokens } from "./user-tokens.js";
import type { StepUp } from "./step-up.js";

/** What the callback answers: a redirect to the caller's returnUrl, or a page to show. */
export type CallbackOutcome =
  | { status: 302; location: string }
  | { status: 200 | 400 | 403 | 409 | 502; title: string; message: string };

export function createAuthorization(
  ctx: OAuthContext,
  { setupFor }: Setup,
  { identity, keepRegistration, forgetRejectedRegistration }: Identity,
  { storeTokens }: ReturnType<typeof createTokens>,
  { storeUserTokens, revokeUserTokens }: UserTokens,
  { userScopes }: StepUp,
) {
  const { repo, client, deps, redirectUri, now } = ctx;
  const { states } = deps;

  async function start(actor: Actor, id: string, options: { returnUrl?: string }): Promise<OAuthAuthorization> {
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
      ({ setup, stored, pending } = await setupFor(stored, { fresh: true }));
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
    let chosen: ChosenIdentity;
    try {
      chosen = await identity(stored, setup, undefined, { register: true });
      // A person's own connection asks for what their refusals demanded too (step-up); the record's, for the record's.
      const scope = stored.server.connectionScope === "user" ? await userScopes(stored, actor.userId) : scopesFor(stored);
      started = await client.authorizationUrl(chosen.setup, chosen.client, { redirectUrl: redirectUri(), scope, state });
    } catch (err) {
      if (err instanceof ValidationFailed) throw err;
      throw upstream(err);
    }
    // Everything learned above is for the record as it was read: written only onto that (or RecordChanged, 409).
    if (pending || original.server.oauthClientRegistration !== chosen.kind) {
      const fields = { ...pending?.fields, oauthClientRegistration: chosen.kind };
      // Moving to another authorization server: the old one's tokens are dropped now, so no refresh ever takes them to the new one.
      const movedAs = pending !== null && original.oauth.discovery?.endpointsDiscovered === true && original.oauth.issuer !== null && pending.internals.discovery?.issuer != null && pending.internals.issuer !== original.oauth.issuer;
      const moved = movedAs && original.server.connectionScope !== "user";
      const dropped = moved ? { secrets: { oauthAccessToken: null, oauthRefreshToken: null }, fields: { ...fields, oauthExpiresAt: null, connectorStatus: "disconnected" as const }, internals: { ...pending!.internals, generation: null } } : null;
      stored = await writeAfterWork(repo, original, dropped ?? { fields, ...(pending ? { internals: pending.internals } : {}) }, now().toISOString());
      // On a user-scope record every person's tokens are the old server's: dropped too, so nobody's refresh goes to the new one.
      if (movedAs && !moved) {
        const reason = `the MCP server's protected resource metadata now names another authorization server (${pending!.internals.issuer}) than the one this connection was made with (${original.oauth.issuer}); the old tokens were dropped: connect again at /connect/${original.server.id}`;
        await deps.userConnections.dropOAuthTokens(original.server.id, now().toISOString(), authError(reason));
      }
    } else {
      stored = await assertUnchanged(repo, original);
    }
    await keepRegistration(chosen);
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
      // On a user-scope record the flow connects the caller, and only the caller's browser may finish it.
      connectionUserId: stored.server.connectionScope === "user" ? actor.userId : null,
    });
    return { authorizationUrl: started.authorizationUrl.toString(), expiresAt };
  }

  /**
   * The authorization server's redirect back. The state is the credential; a user-scope flow
   * also needs the browser to be signed in (`browserUserId`, from its session) as the same person.
   */
  async function complete(query: { state?: string; code?: string; error?: string; error_description?: string; iss?: string }, browserUserId: string | null = null): Promise<CallbackOutcome> {
    const failed = (status: 400 | 403 | 502, message: string): CallbackOutcome => ({ status, title: "Authorization failed", message });
    if (!query.state) return failed(400, "The request has no state. Start again from the product.");
    const claim = await states.consume(sha256(query.state), now().toISOString());
    if (claim === "unknown") return failed(400, "This authorization request is unknown. Start again from the product.");
    if (claim === "replayed") return failed(400, "This authorization request was already used. Start again from the product.");
    if (claim === "expired") return failed(400, "This authorization request expired. Start again from the product.");
    // Otherwise tokens could land on the account of whoever sent the link (issue 20). The state stays used up.
    if (claim.connectionUserId && browserUserId === null) {
      return failed(403, "This connection belongs to a person, and this browser is not signed in to the product. Nothing was connected: sign in at /console, then open the connect link again.");
    }
    if (claim.connectionUserId && browserUserId !== claim.connectionUserId) {
      return failed(403, "This connection was started by another person than the one signed in to the product in this browser. Nothing was connected: the person it belongs to must open the connect link in their own signed-in browser.");
    }

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
    const changedPage = (err: RecordChanged): CallbackOutcome => {
      const location = back("error");
      return location ? { status: 302, location } : { status: 409, title: "Authorization failed", message: `${err.message.replace(/^the/, "The")}.` };
    };
    const recordFailure = async (error: ConnectionError, status: 400 | 502, message: string): Promise<CallbackOutcome> => {
      try {
        await writeAfterWork(repo, stored, { lastError: error }, now().toISOString());
      } catch (err) {
        if (err instanceof RecordChanged) return changedPage(err);
        if (!(err instanceof NotFound)) throw err;
      }
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
    let pending: Pending | null = null;
    try {
      const found = await setupFor(stored);
      pending = found.pending;
      const chosen = await identity(found.stored, found.setup, found.stored.server.oauthClientRegistration);
      tokens = await client.exchange(chosen.setup, chosen.client, query.code, claim.codeVerifier, claim.redirectUri).catch(async (err) => {
        await forgetRejectedRegistration(err, chosen, chosen.setup.tokenEndpoint);
        throw err;
      });
    } catch (err) {
      const error = err instanceof UpstreamFailure ? err.connectionError : err instanceof ValidationFailed ? authError(err.message) : upstream(err).connectionError;
      return recordFailure({ ...error, message: `the code exchange failed: ${error.message}` }, 502, "The authorization server did not accept the code exchange.");
    }
    try {
      if (claim.connectionUserId) await storeUserTokens(stored, claim.connectionUserId, tokens, false, { actor: claim.userId, tokenId: claim.tokenId, requestId: null });
      else await storeTokens(stored, tokens, false, pending, true, { actor: claim.userId, tokenId: claim.tokenId, requestId: null });
    } catch (err) {
      if (err instanceof RecordChanged) return changedPage(err);
      if (err instanceof NotFound) return failed(400, "The MCP server no longer exists or no longer uses OAuth.");
      throw err;
    }
    const location = back("connected");
    return location ? { status: 302, location } : { status: 200, title: "Connected", message: "The MCP server is connected. You can close this page." };
  }

  async function disconnect(actor: Actor, id: string): Promise<Versioned> {
    const stored = await repo.find(actor.workspaces, id);
    if (!stored) throw new NotFound(`MCP server ${id}`);
    if (stored.server.authType !== "oauth") throw new ValidationFailed([{ path: "/authType", message: `must be oauth to disconnect (it is ${stored.server.authType})` }]);
    if (stored.server.connectionScope === "user") return disconnectMine(actor, stored);
    const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
    // No token endpoint: nothing was ever issued there, so there is nothing to revoke.
    const who = stored.server.oauthTokenEndpoint
      ? await identity(stored, fromStored(stored, stored.oauth), stored.server.oauthClientRegistration).catch(() => null)
      : null;
    if (who && (secrets.oauthRefreshToken || secrets.oauthAccessToken)) {
      if (secrets.oauthRefreshToken) await client.revoke(who.setup, who.client, secrets.oauthRefreshToken, "refresh_token");
      if (secrets.oauthAccessToken) await client.revoke(who.setup, who.client, secrets.oauthAccessToken, "access_token");
    }
    const at = now().toISOString();
    const fields = [
      ...(secrets.oauthAccessToken ? [{ name: "oauthAccessToken", change: "cleared" as const }] : []),
      ...(secrets.oauthRefreshToken ? [{ name: "oauthRefreshToken", change: "cleared" as const }] : []),
    ];
    const updated = await repo.writeOAuth(
      stored,
      { secrets: { oauthAccessToken: null, oauthRefreshToken: null }, fields: { oauthExpiresAt: null, connectorStatus: "disconnected" }, internals: { generation: null, stepUp: null } },
      at,
      { type: "oauth_disconnected", actor: actor.userId, tokenId: actor.tokenId, requestId: actor.requestId ?? null, fields },
      // Forgetting tokens is safe on any version.
      { anyVersion: true },
    );
    if (!updated) throw new NotFound(`MCP server ${id}`);
    return updated;
  }

  /** On a user-scope record: the caller's own connection, as start connects it; nobody else's. */
  async function disconnectMine(actor: Actor, stored: StoredServer): Promise<Versioned> {
    const connections = deps.userConnections;
    const mine = await connections.find(stored.server.id, actor.userId);
    if (mine) {
      const secrets = await connections.openSecrets(stored.server, actor.userId).catch(() => null);
      if (secrets) await revokeUserTokens(stored, secrets);
      await connections.remove(stored.server, actor.userId, now().toISOString(), {
        type: "connection_removed",
        actor: actor.userId,
        tokenId: actor.tokenId,
        requestId: actor.requestId ?? null,
        fields: mine.hasOAuthTokens ? [{ name: "oauthAccessToken", change: "cleared" }] : [],
        subjectUserId: actor.userId,
      });
    }
    return { server: { ...stored.server, connectorStatus: "disconnected", oauthExpiresAt: null }, version: stored.version };
  }

  return { start, complete, disconnect };
}
