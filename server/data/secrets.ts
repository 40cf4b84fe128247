// Secrets at rest: AES-256-GCM, each ciphertext tagged with the id of the key
// that sealed it and bound to its record (id, workspace, field) as associated data.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

export interface SecretBinding {
  recordId: string;
  workspaceId: string;
  field: string;
}

export interface SecretBox {
  /** Id of the key new secrets are sealed with. */
  readonly currentKeyId: string;
  seal(plaintext: string, binding: SecretBinding): string;
  open(sealed: string, binding: SecretBinding): string;
  /** The key id a sealed value was written with. */
  keyIdOf(sealed: string): string;
}

const FORMAT = "v1";

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

function aad(b: SecretBinding): Buffer {
  return Buffer.from(JSON.stringify([b.recordId, b.workspaceId, b.field]));
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
      const cipher = createCipheriv("aes-256-gcm", current, iv);
      cipher.setAAD(aad(binding));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [FORMAT, currentKeyId, iv.toString("base64url"), tag.toString("base64url"), body.toString("base64url")].join(":");
    },
    open(sealed, binding) {
      const [format, keyId, iv, tag, body] = sealed.split(":");
      if (format !== FORMAT || !iv || !tag || body === undefined) throw new Error("stored secret has an unknown format");
      const key = byId.get(keyId);
      if (!key) throw new Error(`stored secret was sealed with key ${keyId}, which is not configured`);
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(aad(binding));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
    },
    keyIdOf(sealed) {
      return sealed.split(":")[1] ?? "";
    },
  };
}
