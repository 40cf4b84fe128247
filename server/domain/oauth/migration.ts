// Authorization-server migration noticed after the connection was made (issue 20 item 6,
// SEP-2352): an MCP server that refuses the stored token (401), or whose token endpoint no
// longer renews it, may have moved to another authorization server. Discovery runs again; when
// the protected resource metadata names another authorization server than the connection's,
// the connection's tokens are dropped (they are never presented to the new server) and it needs
// re-authorization, which discovers afresh and goes to the new server. Endpoints the user set
// never move.
import type { StoredServer } from "../../data/mcp-server-repo.js";
import type { ConnectionError } from "../../wire.js";
import type { OAuthContext } from "./context.js";
import { authError, usesClientCredentials } from "./rules.js";
import { writeDisconnected } from "./versioned.js";

export type MigrationOutcome = { movedTo: string; error: ConnectionError };

export function createMigration(ctx: OAuthContext) {
  const { repo, client, now } = ctx;

  /** The issuer the server's metadata names now, when it is not the connection's; null otherwise (or when discovery fails). */
  async function movedTo(stored: StoredServer): Promise<string | null> {
    const { server, oauth } = stored;
    if (server.authType !== "oauth" || usesClientCredentials(stored)) return null;
    // Only what discovery filled in may move; a record with endpoints of its own is pinned.
    if (oauth.discovery?.endpointsDiscovered !== true || !oauth.issuer) return null;
    try {
      const found = await client.discover(server.url);
      return found.issuer !== null && found.issuer !== oauth.issuer ? found.issuer : null;
    } catch {
      return null;
    }
  }

  const movedError = (from: string, to: string, reauthorize: string) =>
    authError(`the MCP server's protected resource metadata now names another authorization server (${to}) than the one this connection was made with (${from}); the old tokens were dropped: ${reauthorize}`);

  /**
   * The record's own connection (workspace scope) after the MCP server refused its token or its
   * refresh failed: when the authorization server moved, the record's tokens are cleared and it
   * is disconnected; null when nothing moved (or the record changed meanwhile).
   */
  async function authorizationServerMoved(snapshot: StoredServer): Promise<MigrationOutcome | null> {
    if (snapshot.server.connectionScope === "user") return null;
    const to = await movedTo(snapshot);
    if (to === null) return null;
    const stored = (await repo.find([snapshot.server.workspaceId], snapshot.server.id)) ?? snapshot;
    const error = movedError(snapshot.oauth.issuer!, to, `re-authorize with POST /api/mcp-servers/${stored.server.id}/oauth/authorize or the connect page`);
    const at = now().toISOString();
    try {
      await writeDisconnected(repo, stored, error, at);
    } catch {
      return null;
    }
    return { movedTo: to, error };
  }

  return { movedTo, authorizationServerMoved };
}

export type Migration = ReturnType<typeof createMigration>;
