// Recognising an MCP server's step-up demand (RFC 6750 §3.1, MCP 2025-11-25 "scope challenge
// handling"): HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`.
// Kept free of the SDK so the gateway's hot path does not load it.

const PARAM = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))/g;

/** The Bearer challenge's auth-params (lowercased names); other schemes' params are ignored. */
function bearerParams(header: string): Map<string, string> {
  const params = new Map<string, string>();
  const at = header.search(/(^|[\s,])Bearer(\s|$)/i);
  if (at < 0) return params;
  const rest = header.slice(at).replace(/^[\s,]*Bearer/i, "");
  for (const m of rest.slice(0, 4096).matchAll(PARAM)) {
    const name = m[1].toLowerCase();
    if (!params.has(name)) params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]);
  }
  return params;
}

/**
 * The scopes a 403's challenge demands when it says insufficient_scope ("" when it names none);
 * null when the answer is not a step-up demand.
 */
export function insufficientScopeChallenge(status: number, header: string | null | undefined): string | null {
  if (status !== 403 || !header) return null;
  const params = bearerParams(header);
  if (params.get("error") !== "insufficient_scope") return null;
  return (params.get("scope") ?? "").slice(0, 2000);
}

/**
 * The scopes demanded, when `err` is the SDK's InsufficientScopeError (a client without an
 * OAuth provider of its own throws it on such a 403); null otherwise. Recognised by the SDK's
 * brand, so this module need not load the SDK.
 */
export function insufficientScopeOf(err: unknown): string | null {
  const brand = (err as { constructor?: { mcpBrand?: unknown } } | null)?.constructor?.mcpBrand;
  if (brand !== "mcp.InsufficientScopeError") return null;
  const scope = (err as { requiredScope?: unknown }).requiredScope;
  return typeof scope === "string" ? scope.slice(0, 2000) : "";
}
