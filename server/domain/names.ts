// Names on the workspace endpoint: each server's tools and prompts appear as
// `<namespace>__<name>`, where the namespace comes from the server's name. Mapped in one
// place, both ways.
//
// The namespace: the name NFKD-normalised, accents dropped, lower-cased, every run of
// characters outside [a-z0-9] turned into one "_", "_" trimmed from both ends ("server" if
// nothing is left). A longer one than 40 characters keeps its first 31 and ends in "_" and 8
// hex digits of the SHA-256 of the whole, so long names that differ late stay apart. It never contains "__", so the first "__" of a
// namespaced name is where the namespace ends. A name that is not a valid MCP name once
// prefixed (only [A-Za-z0-9_.-], at most 128 characters) is left out, never altered.

import { createHash } from "node:crypto";

const MAX_NAMESPACE = 40;
const MAX_NAME = 128;
const SEPARATOR = "__";
const VALID = /^[A-Za-z0-9_.-]+$/;

export function namespaceOf(serverName: string): string {
  const slug = serverName
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  if (slug.length <= MAX_NAMESPACE) return slug || "server";
  const digest = createHash("sha256").update(slug).digest("hex").slice(0, 8);
  return `${slug.slice(0, MAX_NAMESPACE - 9).replace(/_+$/, "")}_${digest}`;
}

/** The name an agent sees on the workspace endpoint, or null when it would not be a valid MCP name. */
export function namespaced(namespace: string, name: string): string | null {
  const full = `${namespace}${SEPARATOR}${name}`;
  return full.length <= MAX_NAME && VALID.test(full) ? full : null;
}

/** The namespace and the upstream name of a namespaced name, or null when it has none. */
export function splitNamespaced(full: string): { namespace: string; name: string } | null {
  const at = full.indexOf(SEPARATOR);
  if (at <= 0 || at + SEPARATOR.length >= full.length) return null;
  return { namespace: full.slice(0, at), name: full.slice(at + SEPARATOR.length) };
}

// Resources on the workspace endpoint: `mcpws://<namespace>/<the server's URI, percent-encoded
// whole>`. The namespace is unique in the workspace and the encoding is reversible, so two
// servers' URIs never collide and every URI maps back to one server and its own URI. In a
// resource template only the literal text is encoded; its `{…}` expressions stay, so an agent
// expanding the namespaced template gets the namespaced form of the URI the server expects.
const URI_PREFIX = "mcpws://";

export function namespacedUri(namespace: string, uri: string): string {
  return `${URI_PREFIX}${namespace}/${encodeURIComponent(uri)}`;
}

export function namespacedUriTemplate(namespace: string, template: string): string {
  const encoded = template
    .split(/(\{[^{}]*\})/)
    .map((part, i) => (i % 2 === 1 ? part : encodeURIComponent(part)))
    .join("");
  return `${URI_PREFIX}${namespace}/${encoded}`;
}

/** The namespace and the server's own URI of a namespaced URI, or null when it is not one. */
export function splitNamespacedUri(full: string): { namespace: string; uri: string } | null {
  const match = /^mcpws:\/\/([a-z0-9_]+)\/(.+)$/s.exec(full);
  if (!match) return null;
  try {
    return { namespace: match[1], uri: decodeURIComponent(match[2]) };
  } catch {
    return null;
  }
}
