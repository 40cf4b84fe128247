// Configuration from the environment. README's configuration table lists every variable.
export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  encryptionKey: string | null;
  /** Keys that sealed older secrets: still opened, never used to seal (key rotation). */
  previousEncryptionKeys: string[];
  logLevel: string;
  validateResponses: boolean;
  shutdownTimeoutMs: number;
  connectTimeoutMs: number;
  /** Deadline of one MCP request through the gateway, tools/call included (MCP_API_TOOL_TIMEOUT_MS). */
  toolTimeoutMs: number;
  /** How long a tool_called event may wait in memory before it is written (MCP_API_AUDIT_FLUSH_MS): what a crash can lose at most. */
  auditFlushMs: number;
  /** An upstream session unused this long is closed (MCP_API_UPSTREAM_IDLE_MS). */
  upstreamIdleMs: number;
  /** Upstream sessions kept per process at most (MCP_API_UPSTREAM_POOL_MAX). */
  upstreamPoolMax: number;
  /** How often a kept 2026-07-28 client's silent listen stream is checked for life (MCP_API_LISTEN_CHECK_MS). */
  listenCheckMs: number;
  /** How long a workspace-endpoint agent session lasts from its initialize (MCP_API_WORKSPACE_SESSION_MAX_MS); its stored traces go after it. */
  workspaceSessionMaxMs: number;
  /** How long a member's list without its own ttlMs is served from the process's cache (MCP_API_LIST_TTL_MS). */
  listTtlMs: number;
  /** A workspace endpoint with one enabled member serves its names and URIs unprefixed (MCP_API_WORKSPACE_BARE_NAMES). */
  workspaceBareNames: boolean;
  /** Largest MCP response body read from a server (MCP_API_MAX_RESPONSE_BYTES). */
  maxResponseBytes: number;
  allowPrivateNetwork: boolean;
  rateLimitPerMinute: number;
  /** Days an audit event is kept (MCP_API_EVENT_RETENTION_DAYS). */
  eventRetentionDays: number;
  /** The product's public base URL (OAuth redirect URI); null: http://localhost:<port>. */
  publicUrl: string | null;
  oauthReturnUrlPrefixes: string[];
  database: { poolMax: number; statementTimeoutMs: number; ssl: boolean | { rejectUnauthorized: boolean } | undefined };
}

function sslMode(value: string | undefined): Config["database"]["ssl"] {
  switch (value ?? "") {
    case "":
      return undefined; // whatever sslmode the URL says
    case "disable":
      return false;
    case "require":
      return { rejectUnauthorized: false };
    case "verify-full":
      return { rejectUnauthorized: true };
    default:
      throw new Error(`DATABASE_SSL_MODE must be disable, require or verify-full; got '${value}'`);
  }
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === "") return fallback;
  return ["1", "true", "yes", "on"].includes(value.toLowerCase());
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number; got '${value}'`);
  return n;
}

/**
 * The product's public URL is its OAuth client id's home (the metadata document) and the
 * redirect URI's: https, or http on a loopback address for development and tests.
 */
function publicUrl(value: string | undefined): string | null {
  if (!value) return null;
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {
    /* reported below */
  }
  const loopback = url !== null && (url.hostname === "localhost" || url.hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
  if (!url || url.username || url.password || url.search || url.hash || !(url.protocol === "https:" || (url.protocol === "http:" && loopback))) {
    throw new Error(`MCP_API_PUBLIC_URL must be an https URL (http only on localhost or 127.0.0.1, for development), without user, query or fragment; got '${value}'`);
  }
  return value.replace(/\/$/, "");
}

/** Allowed OAuth return URLs: absolute http(s) URLs without userinfo, compared as parsed URLs. */
function returnUrls(value: string | undefined): string[] {
  const entries = (value ?? "").split(",").map((u) => u.trim()).filter(Boolean);
  for (const entry of entries) {
    let url: URL | null = null;
    try {
      url = new URL(entry);
    } catch {
      /* reported below */
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.username || url.password) {
      throw new Error(`MCP_API_OAUTH_RETURN_URLS must be a comma-separated list of http(s) URLs without user names; got '${entry}'`);
    }
  }
  return entries;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = Number(env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number; got '${env.PORT}'`);
  return {
    port,
    host: env.HOST || "0.0.0.0",
    databaseUrl: env.DATABASE_URL || "sqlite:./data/mcp-api.sqlite",
    encryptionKey: env.MCP_API_ENCRYPTION_KEY || null,
    previousEncryptionKeys: (env.MCP_API_ENCRYPTION_KEYS_PREVIOUS ?? "").split(",").map((k) => k.trim()).filter(Boolean),
    logLevel: env.LOG_LEVEL || "info",
    validateResponses: bool(env.MCP_API_VALIDATE_RESPONSES, true),
    shutdownTimeoutMs: Number(env.MCP_API_SHUTDOWN_TIMEOUT_MS ?? 10000),
    connectTimeoutMs: positiveInt(env.MCP_API_CONNECT_TIMEOUT_MS, 10000, "MCP_API_CONNECT_TIMEOUT_MS"),
    toolTimeoutMs: positiveInt(env.MCP_API_TOOL_TIMEOUT_MS, 60000, "MCP_API_TOOL_TIMEOUT_MS"),
    auditFlushMs: positiveInt(env.MCP_API_AUDIT_FLUSH_MS, 100, "MCP_API_AUDIT_FLUSH_MS"),
    upstreamIdleMs: positiveInt(env.MCP_API_UPSTREAM_IDLE_MS, 300000, "MCP_API_UPSTREAM_IDLE_MS"),
    upstreamPoolMax: positiveInt(env.MCP_API_UPSTREAM_POOL_MAX, 1000, "MCP_API_UPSTREAM_POOL_MAX"),
    listenCheckMs: positiveInt(env.MCP_API_LISTEN_CHECK_MS, 30000, "MCP_API_LISTEN_CHECK_MS"),
    listTtlMs: positiveInt(env.MCP_API_LIST_TTL_MS, 60000, "MCP_API_LIST_TTL_MS"),
    workspaceBareNames: bool(env.MCP_API_WORKSPACE_BARE_NAMES, false),
    workspaceSessionMaxMs: positiveInt(env.MCP_API_WORKSPACE_SESSION_MAX_MS, 86_400_000, "MCP_API_WORKSPACE_SESSION_MAX_MS"),
    maxResponseBytes: positiveInt(env.MCP_API_MAX_RESPONSE_BYTES, 10 * 1024 * 1024, "MCP_API_MAX_RESPONSE_BYTES"),
    allowPrivateNetwork: bool(env.MCP_API_ALLOW_PRIVATE_NETWORK, false),
    rateLimitPerMinute: positiveInt(env.MCP_API_RATE_LIMIT, 600, "MCP_API_RATE_LIMIT"),
    eventRetentionDays: positiveInt(env.MCP_API_EVENT_RETENTION_DAYS, 90, "MCP_API_EVENT_RETENTION_DAYS"),
    publicUrl: publicUrl(env.MCP_API_PUBLIC_URL),
    oauthReturnUrlPrefixes: returnUrls(env.MCP_API_OAUTH_RETURN_URLS),
    database: {
      poolMax: positiveInt(env.DATABASE_POOL_MAX, 10, "DATABASE_POOL_MAX"),
      statementTimeoutMs: positiveInt(env.DATABASE_STATEMENT_TIMEOUT_MS, 5000, "DATABASE_STATEMENT_TIMEOUT_MS"),
      ssl: sslMode(env.DATABASE_SSL_MODE),
    },
  };
}
