// Secrets at rest: AES-256-GCM, each ciphertext tagged with the id of the key
// that sealed it and bound to its record (id, workspace, field) as associated data, and,
// for a credential, to the origin it may be sent to: a record repointed elsewhere cannot
// open it, even through a bug that skips the domain's rules.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

export interface SecretBinding {
  recordId: string;
  workspaceId: string;
  field: string;
  /** The origin (scheme://host:port) the secret may be sent to; absent for non-credentials. */
  origin?: string;
}

export interface SecretBox {
  /** Id of the key new secrets are sealed with. */
  readonly currentKeyId: string;
  seal(plaintext: string, binding: SecretBinding): string;
  open(sealed: string, binding: SecretBinding): string;
  /** The key id a sealed value was written with. */
  keyIdOf(sealed: string): string;
  /** Whether a value was sealed before origin binding (v1). */
  isLegacy(sealed: string): boolean;
}

// v1: sealed before origin binding (associated data without the origin); opened only for
// bindings without an origin, or by the one-time re-seal at start-up (LEGACY_ORIGIN).
// v2: the origin is part of the associated data.
const FORMATS = ["v1", "v2"] as const;
/** Pass as `origin` to open a v1 value that a credential was sealed as before origin binding. */
export const LEGACY_ORIGIN = "\u0000legacy";
/** How a v1 value begins (what `isLegacy` looks for; the start-up re-seal finds such rows in SQL with it). */
export const LEGACY_PREFIX = "v1:";

export function keyIdFor(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}

export function parseKey(base64: string, variable: string): Buffer {
  const key = Buffer.from(base64.trim(), "base64");
  if (key.length !== 32) {
    throw new Error(`${variable} must be 32 random bytes in base64 (e.g. \`openssl rand -base64 32\`); it decodes to ${key.length} bytes`);
  }
  return key;
}

function aad(format: string, b: SecretBinding): Buffer {
  const parts = format === "v1" ? [b.recordId, b.workspaceId, b.field] : [b.recordId, b.workspaceId, b.field, b.origin ?? ""];
  return Buffer.from(JSON.stringify(parts));
}

/** The origin a URL's credentials are bound to, e.g. `https://mcp.example.com:443`. */
export function originOf(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" ? "443" : u.protocol === "http:" ? "80" : "");
  return `${u.protocol}//${u.hostname}:${port}`;
}

/** `keys[0]` seals; every key opens what it sealed. */
export function createSecretBox(keys: Buffer[]): SecretBox {
  if (keys.length === 0) throw new Error("at least one encryption key is needed");
  const byId = new Map(keys.map((k) => [keyIdFor(k), k]));
  const currentKeyId = keyIdFor(keys[0]);
  const current = keys[0];

  return {
    currentKeyId,
    seal(plaintext, binding) {
      const iv = randomBytes(12);
      const format = binding.origin === undefined ? "v1" : "v2";
      const cipher = createCipheriv("aes-256-gcm", current, iv);
      cipher.setAAD(aad(format, binding));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [format, currentKeyId, iv.toString("base64url"), tag.toString("base64url"), body.toString("base64url")].join(":");
    },
    open(sealed, binding) {
      const [format, keyId, iv, tag, body] = sealed.split(":");
      if (!(FORMATS as readonly string[]).includes(format) || !iv || !tag || body === undefined) throw new Error("stored secret has an unknown format");
      // A credential sealed before origin binding opens only through the start-up re-seal.
      if (format === "v1" && binding.origin !== undefined && binding.origin !== LEGACY_ORIGIN) {
        throw new Error("stored credential predates origin binding and has not been re-sealed");
      }
      if (format === "v2" && (binding.origin === undefined || binding.origin === LEGACY_ORIGIN)) throw new Error("stored secret is bound to an origin");
      const key = byId.get(keyId);
      if (!key) throw new Error(`stored secret was sealed with key ${keyId}, which is not configured`);
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(aad(format, binding));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
    },
    keyIdOf(sealed) {
      return sealed.split(":")[1] ?? "";
    },
    isLegacy(sealed) {
      return sealed.startsWith(LEGACY_PREFIX);
    },
  };
}
