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
