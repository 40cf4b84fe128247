// Writes that follow outbound work (discovery, registration, the callback, a refresh) land
// only on the configuration that work was done for (issue 18): conditional on the version
// read when it started; a record whose OAuth settings changed meanwhile gets nothing.
import type { McpServerRepo, StoredServer } from "../../data/mcp-server-repo.js";
import type { AuditEventInput } from "../../data/audit-repo.js";
import type { ConnectionError } from "../../wire.js";
import { Conflict, NotFound } from "../errors.js";

/** The record's fields an OAuth flow depends on; a change to any of them voids the flow's results. */
const OAUTH_INPUTS = ["url", "authType", "oauthClientId", "oauthTokenEndpoint", "oauthAuthorizationEndpoint", "oauthScopes", "oauthGrantType", "hasOauthClientSecret"] as const;

/** What changed between the record a flow started from and the record now. */
export function changedInputs(before: StoredServer, now: StoredServer): string[] {
  const fields: string[] = OAUTH_INPUTS.filter((f) => JSON.stringify(before.server[f]) !== JSON.stringify(now.server[f]));
  // Tokens cleared (a disconnect) or set (another callback) meanwhile: this flow's tokens are not wanted.
  for (const f of ["oauthAccessToken", "oauthRefreshToken"] as const) if (before.secretsSet[f] !== now.secretsSet[f]) fields.push(f);
  return fields;
}

export class RecordChanged extends Conflict {
  constructor(readonly fields: string[]) {
    super(
      `the MCP server's OAuth settings changed while the product was working with its authorization server (${fields.join(", ")} changed); nothing was written; start again`,
    );
  }
}

type Changes = Parameters<McpServerRepo["writeOAuth"]>[1];

/**
 * Writes `changes` at the version `snapshot` was read at. A newer version whose OAuth inputs
 * are those of the snapshot (a rename, a connection check) is written at instead, still
 * conditionally; any other change throws RecordChanged and nothing is written.
 */
export async function writeAfterWork(repo: McpServerRepo, snapshot: StoredServer, changes: Changes, at: string, event?: AuditEventInput): Promise<StoredServer> {
  let current = snapshot;
  for (let attempt = 0; attempt < 5; attempt++) {
    const written = await repo.writeOAuth(current, changes, at, event);
    if (written) return written;
    const latest = await repo.find([snapshot.server.workspaceId], snapshot.server.id);
    if (!latest) throw new NotFound(`MCP server ${snapshot.server.id}`);
    const changed = changedInputs(snapshot, latest);
    if (changed.length > 0) throw new RecordChanged(changed);
    current = latest;
  }
  throw new RecordChanged(["version"]);
}

/** Drops the record's tokens and marks it disconnected with `error` (a status_changed event when it was not already), as writeAfterWork writes. */
export function writeDisconnected(repo: McpServerRepo, snapshot: StoredServer, error: ConnectionError, at: string): Promise<StoredServer> {
  return writeAfterWork(
    repo,
    snapshot,
    {
      secrets: { oauthAccessToken: null, oauthRefreshToken: null },
      fields: { oauthExpiresAt: null, connectorStatus: "disconnected" },
      internals: { generation: null },
      lastError: error,
      lastCheckedAt: at,
    },
    at,
    snapshot.server.connectorStatus !== "disconnected"
      ? { type: "status_changed", actor: "system", tokenId: null, requestId: null, fields: [{ name: "connectorStatus", change: "changed" }] }
      : undefined,
  );
}

/** Throws RecordChanged unless the record still has the OAuth inputs of `snapshot`. */
export async function assertUnchanged(repo: McpServerRepo, snapshot: StoredServer): Promise<StoredServer> {
  const latest = await repo.find([snapshot.server.workspaceId], snapshot.server.id);
  if (!latest) throw new NotFound(`MCP server ${snapshot.server.id}`);
  const changed = changedInputs(snapshot, latest);
  if (changed.length > 0) throw new RecordChanged(changed);
  return latest;
}
