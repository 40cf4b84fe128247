// Rules for MCP server records that the schema alone cannot express. Pure functions.
import type { AuthType, ProblemFieldError } from "../wire.js";

export const CONNECTOR_CONFIG_MAX_BYTES = 16 * 1024;

// Framing and hop-by-hop headers would let a record break the HTTP exchange itself;
// Mcp-Session-Id belongs to the protocol client.
const FORBIDDEN_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "mcp-session-id",
]);

export function urlProblems(value: string, path: string): ProblemFieldError[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [{ path, message: "must be an absolute http(s) URL" }];
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return [{ path, message: "must be an absolute http(s) URL" }];
  if (!url.hostname) return [{ path, message: "must name a host" }];
  if (url.username || url.password) {
    return [{ path, message: "must not carry credentials; use apiKey or the oauth fields instead" }];
  }
  return [];
}

export function headerProblems(headers: Record<string, string>, authType: AuthType, field = "headers"): ProblemFieldError[] {
  const problems: ProblemFieldError[] = [];
  const seen = new Set<string>();
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    const path = `/${field}/${name}`;
    if (seen.has(lower)) problems.push({ path, message: "is given twice (header names are case-insensitive)" });
    seen.add(lower);
    if (FORBIDDEN_HEADERS.has(lower)) problems.push({ path, message: `the ${name} header cannot be set; the HTTP client manages it` });
    else if (lower === "authorization" && authType !== "none") {
      problems.push({ path, message: `cannot be set when authType is ${authType}; the product sets Authorization itself` });
    }
  }
  return problems;
}

export function connectorConfigProblems(config: Record<string, unknown> | null | undefined): ProblemFieldError[] {
  if (config == null) return [];
  const bytes = Buffer.byteLength(JSON.stringify(config), "utf8");
  if (bytes > CONNECTOR_CONFIG_MAX_BYTES) {
    return [{ path: "/connectorConfig", message: `must be at most 16 KiB as JSON (it is ${bytes} bytes)` }];
  }
  return [];
}

export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** NUL cannot be stored in a PostgreSQL text column; refuse it in every string field. */
export function nulProblems(body: Record<string, unknown>): ProblemFieldError[] {
  return Object.entries(body)
    .filter(([, v]) => typeof v === "string" && v.includes("\u0000"))
    .map(([k]) => ({ path: `/${k}`, message: "must not contain the NUL character" }));
}

/** Secret headers follow the rules of headers, and a name may not be in both (case-insensitive). */
export function secretHeaderProblems(secretHeaders: Record<string, string>, headers: Record<string, string>, authType: AuthType): ProblemFieldError[] {
  const plain = new Set(Object.keys(headers).map((n) => n.toLowerCase()));
  return [
    ...headerProblems(secretHeaders, authType, "secretHeaders"),
    ...Object.keys(secretHeaders)
      .filter((n) => plain.has(n.toLowerCase()))
      .map((n) => ({ path: `/secretHeaders/${n}`, message: `is also in headers; a header is either secret or not` })),
  ];
}
