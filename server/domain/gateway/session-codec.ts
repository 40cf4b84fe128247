// MCP session ids the gateway hands to agents: the upstream server's own session id, sealed
// (AES-256-GCM) and bound to the record, the token, the record's origin and its credential
// generation, so that any process holding the key can continue the session and nobody else can
// read, forge or reuse it elsewhere — nor can it outlive a move of the record or its credentials.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

const PREFIX = "mcpgw1.";

export interface SessionBinding {
  serverId: string;
  tokenId: string;
  /** The upstream's origin (scheme://host:port): a session never follows the record elsewhere. */
  origin: string;
  /** A digest of the credentials the session was opened with: replaced or cleared ones end it. */
  credentials: string;
}

export interface SessionCodec {
  seal(upstreamSessionId: string, binding: SessionBinding): string;
  /** The upstream session id, or null when the value was not sealed by us for this binding. */
  open(sealed: string, binding: SessionBinding): string | null;
}

/** A separate key for sessions, derived from the encryption key (never the key itself). */
export function sessionKey(encryptionKey: Buffer): Buffer {
  return createHash("sha256").update("mcp-session-ids:").update(encryptionKey).digest();
}

const aad = (b: SessionBinding) => Buffer.from(JSON.stringify([b.serverId, b.tokenId, b.origin, b.credentials]));

/** `keys[0]` seals; every key opens (so sessions survive a key rotation). */
export function createSessionCodec(keys: Buffer[]): SessionCodec {
  return {
    seal(upstreamSessionId, binding) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", keys[0], iv);
      cipher.setAAD(aad(binding));
      const body = Buffer.concat([cipher.update(upstreamSessionId, "utf8"), cipher.final()]);
      return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
    },
    open(sealed, binding) {
      if (!sealed.startsWith(PREFIX)) return null;
      const raw = Buffer.from(sealed.slice(PREFIX.length), "base64url");
      if (raw.length < 29) return null;
      for (const key of keys) {
        try {
          const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
          decipher.setAAD(aad(binding));
          decipher.setAuthTag(raw.subarray(12, 28));
          return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
        } catch {
          /* not this key, or not ours */
        }
      }
      return null;
    },
  };
}
