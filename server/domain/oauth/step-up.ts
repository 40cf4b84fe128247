// Scope step-up (issue 20 item 6): an MCP server that answers 403 with
// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` marks the connection it
// refused (the record's, or the calling person's) as needing those scopes; the next
// authorization of that connection asks for the union of what it asks for already and them.
// Retry limit: once a demand names nothing new (every scope in it was asked for already),
// one more re-authorization is asked for; the next such refusal is final until the connection
// is disconnected (or removed) and connected again.
import type { StepUpState, StoredServer } from "../../data/mcp-server-repo.js";
import type { UserConnectionRepo } from "../../data/user-connection-repo.js";
import type { ConnectionError } from "../../wire.js";
import type { OAuthContext } from "./context.js";
import { authError, scopesFor, usesClientCredentials } from "./rules.js";

/** Re-authorizations asked for scopes that were already asked for, before the refusal is final. */
export const MAX_STEP_UP_RETRIES = 1;
/** At most this many demanded scopes are kept per connection; a demand past it counts as nothing new. */
const MAX_REQUIRED_SCOPES = 20;
const MAX_SCOPE_LENGTH = 200;

export const scopeList = (scope: string | null | undefined): string[] => (scope ?? "").split(/\s+/).filter((s) => s.length > 0 && s.length <= MAX_SCOPE_LENGTH);

/** The scopes of all `lists`, each once, in first-seen order; null when there are none. */
export function unionScopes(...lists: (string | null | undefined)[]): string | null {
  const all = [...new Set(lists.flatMap(scopeList))];
  return all.length > 0 ? all.join(" ") : null;
}

/**
 * A refusal's effect on a connection's step-up state. `held` is what the connection's
 * authorization asks for (and was granted). New scopes are remembered and a re-authorization
 * is asked for; a demand of nothing new counts against the retry limit.
 */
export function stepUpAfter(state: StepUpState | null, demanded: string | undefined, held: string | null): { state: StepUpState; verdict: "reauthorize" | "limit"; missing: string[] } {
  const required = state?.required ?? [];
  const known = new Set([...required, ...scopeList(held)]);
  const wanted = scopeList(demanded);
  const fresh = wanted.filter((s) => !known.has(s));
  if (fresh.length > 0 && required.length + fresh.length <= MAX_REQUIRED_SCOPES) {
    return { state: { required: [...required, ...fresh], attempts: state?.attempts ?? 0 }, verdict: "reauthorize", missing: wanted };
  }
  const attempts = (state?.attempts ?? 0) + 1;
  return { state: { required, attempts }, verdict: attempts > MAX_STEP_UP_RETRIES ? "limit" : "reauthorize", missing: wanted };
}

/** What the gateway or a check does next about a refusal for insufficient scope. */
export type StepUpOutcome =
  /** A person (or an administrator, for the record's own connection) must authorize again; it will ask for `scope`. */
  | { verdict: "reauthorize"; scope: string | null; missing: string[]; error: ConnectionError }
  /** Client credentials: the next token is requested with `scope`; the caller may simply try again. */
  | { verdict: "retry"; scope: string | null; missing: string[]; error: ConnectionError }
  /** The retry limit: the refusal is final. */
  | { verdict: "limit"; missing: string[]; error: ConnectionError };

export function createStepUp(ctx: OAuthContext, connections: UserConnectionRepo) {
  const { repo, now } = ctx;

  const named = (missing: string[]) => (missing.length > 0 ? `scope ${missing.join(" ")}` : "a scope it did not name");
  const limitError = (missing: string[]) =>
    authError(
      `the MCP server still refuses for insufficient scope (it requires ${named(missing)}) after a re-authorization that asked for it; the retry limit is reached: grant that scope at the authorization server, then disconnect and connect again`,
    );

  /** What a user-scope record's authorization asks for on behalf of `userId`. */
  async function userScopes(stored: StoredServer, userId: string): Promise<string | null> {
    const mine = await connections.find(stored.server.id, userId);
    return unionScopes(scopesFor(stored), mine?.stepUp?.required.join(" "));
  }

  /**
   * Records a 403 insufficient_scope from `stored`'s MCP server on the connection that was used:
   * `userId`'s own on a user-scope record, else the record's.
   */
  async function insufficientScope(snapshot: StoredServer, userId: string | null, demanded: string | undefined): Promise<StepUpOutcome> {
    const at = now().toISOString();
    if (userId !== null && snapshot.server.connectionScope === "user") {
      const mine = await connections.find(snapshot.server.id, userId);
      const after = stepUpAfter(mine?.stepUp ?? null, demanded, unionScopes(scopesFor(snapshot), mine?.oauthScopes));
      const scope = unionScopes(scopesFor(snapshot), mine?.oauthScopes, after.state.required.join(" "));
      const error =
        after.verdict === "limit"
          ? limitError(after.missing)
          : authError(`the MCP server requires ${named(after.missing)}, which your connection does not grant; connect again at the connect page (it will ask for ${scope ?? "no particular scope"})`);
      if (mine) await connections.write(snapshot.server, userId, { status: "error", lastError: error, stepUp: after.state }, at);
      return after.verdict === "limit" ? { verdict: "limit", missing: after.missing, error } : { verdict: "reauthorize", scope, missing: after.missing, error };
    }
    // The record's own connection: read afresh, so concurrent refusals count once each against the current state.
    const stored = (await repo.find([snapshot.server.workspaceId], snapshot.server.id)) ?? snapshot;
    const after = stepUpAfter(stored.oauth.stepUp, demanded, scopesFor(stored));
    const scope = unionScopes(scopesFor(stored), after.state.required.join(" "));
    const machine = usesClientCredentials(stored);
    const error =
      after.verdict === "limit"
        ? limitError(after.missing)
        : machine
          ? authError(`the MCP server requires ${named(after.missing)}; the next token is requested with ${scope}: try again`)
          : authError(`the MCP server requires ${named(after.missing)}, which the connection does not grant; re-authorize with POST /api/mcp-servers/${stored.server.id}/oauth/authorize or the connect page (it will ask for ${scope ?? "no particular scope"})`);
    await repo.writeOAuth(
      stored,
      {
        internals: { stepUp: after.state },
        // Client credentials need no person: the token is dropped, and the next one asks for the union.
        ...(machine && after.verdict !== "limit" ? { secrets: { oauthAccessToken: null } } : {}),
        fields: { connectorStatus: "error", ...(machine && after.verdict !== "limit" ? { oauthExpiresAt: null } : {}) },
        lastError: error,
        lastCheckedAt: at,
      },
      at,
      stored.server.connectorStatus !== "error" ? { type: "status_changed", actor: "system", tokenId: null, requestId: null, fields: [{ name: "connectorStatus", change: "changed" }] } : undefined,
      // Only the step-up state, status and error are written: safe on any version.
      { anyVersion: true },
    );
    if (after.verdict === "limit") return { verdict: "limit", missing: after.missing, error };
    return { verdict: machine ? "retry" : "reauthorize", scope, missing: after.missing, error };
  }

  return { insufficientScope, userScopes };
}

export type StepUp = ReturnType<typeof createStepUp>;
