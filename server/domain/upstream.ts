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
