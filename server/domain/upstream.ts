// What goes upstream to a registered MCP server: the one place the request headers are built
// from a record, for the live checks (/test, /tools) and the gateway alike.
import type { Secrets, StoredServer } from "../data/mcp-server-repo.js";

export interface UpstreamHeaders {
  /** The record's headers, its secret headers, and its credential as Authorization. */
  headers: Record<string, string>;
  /** Every secret value among them, to be kept out of anything shown to a caller or logged. */
  secrets: string[];
}

/** The secret headers of a record, opened: name → value. */
export function secretHeadersOf(secrets: Pick<Secrets, "secretHeaders">): Record<string, string> {
  return secrets.secretHeaders === null ? {} : (JSON.parse(secrets.secretHeaders) as Record<string, string>);
}

/**
 * The headers to send to `stored`'s server. `secrets` are the record's opened secrets
 * (repo.openSecrets); `accessToken` is the OAuth access token of an `oauth` record.
 */
export function upstreamHeaders(stored: StoredServer, secrets: Secrets, accessToken: string | null = null): UpstreamHeaders {
  const { server } = stored;
  const secretHeaders = secretHeadersOf(secrets);
  const headers: Record<string, string> = { ...server.headers, ...secretHeaders };
  if (server.authType === "api_key" && secrets.apiKey) headers.Authorization = `Bearer ${secrets.apiKey}`;
  if (server.authType === "oauth" && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const connectorSecrets = secrets.connectorSecrets === null ? {} : (JSON.parse(secrets.connectorSecrets) as Record<string, string>);
  const values = [
    secrets.apiKey,
    secrets.oauthClientSecret,
    secrets.oauthAccessToken,
    secrets.oauthRefreshToken,
    accessToken,
    ...Object.values(secretHeaders),
    ...Object.values(connectorSecrets),
    ...Object.values(server.headers),
  ];
  return { headers, secrets: values.filter((v): v is string => typeof v === "string" && v.length > 0) };
}

/** A person's own credential on a user-scope record (issue 20). */
export interface PersonalCredential {
  apiKey: string | null;
  secretHeaders: Record<string, string>;
  accessToken: string | null;
}

/**
 * The headers for one person's call to a user-scope record: the record's shared headers, then
 * the person's own secret headers and credential. The record's own credential is never sent.
 */
export function personalUpstreamHeaders(stored: StoredServer, secrets: Secrets, mine: PersonalCredential): UpstreamHeaders {
  const shared = upstreamHeaders(stored, { ...secrets, apiKey: null, oauthAccessToken: null, oauthRefreshToken: null }, null);
  const headers: Record<string, string> = { ...shared.headers };
  for (const [name, value] of Object.entries(mine.secretHeaders)) {
    for (const known of Object.keys(headers)) if (known.toLowerCase() === name.toLowerCase()) delete headers[known];
    headers[name] = value;
  }
  const { authType } = stored.server;
  if (authType === "api_key" && mine.apiKey) headers.Authorization = `Bearer ${mine.apiKey}`;
  if (authType === "oauth" && mine.accessToken) headers.Authorization = `Bearer ${mine.accessToken}`;
  const values = [...shared.secrets, mine.apiKey, mine.accessToken, ...Object.values(mine.secretHeaders)];
  return { headers, secrets: values.filter((v): v is string => typeof v === "string" && v.length > 0) };
}
