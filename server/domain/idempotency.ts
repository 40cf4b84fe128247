// Safe retries of creates: the first answer for (token, Idempotency-Key) is kept for 24 hours
// and replayed for a retry with the same body.
import { createHmac } from "node:crypto";
import type { IdempotencyRepo } from "../data/idempotency-repo.js";
import { Conflict, IdempotencyKeyReused } from "./errors.js";
import type { Actor } from "./tokens.js";

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface KeptReply {
  status: number;
  body: unknown;
  location: string | null;
  etag: string | null;
}

/** JSON with object keys sorted, so that key order does not make two bodies differ. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * `fingerprintKey` keys the HMAC that fingerprints a request body: bodies carry secrets (an
 * API key), and an unkeyed hash in the store would let a reader test guesses.
 */
export function createIdempotency(repo: IdempotencyRepo, fingerprintKey: Buffer, now: () => Date = () => new Date()) {
  return {
    async run(actor: Actor, key: string, request: unknown, execute: () => Promise<KeptReply>): Promise<KeptReply & { replayed: boolean }> {
      const hash = createHmac("sha256", fingerprintKey).update(canonical(request)).digest("hex");
      for (let attempt = 0; attempt < 3; attempt++) {
        const at = now();
        const claim = await repo.claim(actor.tokenId, key, hash, at.toISOString());
        if (claim !== "claimed") {
          if (at.getTime() - Date.parse(claim.createdAt) > IDEMPOTENCY_TTL_MS) {
            await repo.expire(actor.tokenId, key, claim.createdAt);
            continue;
          }
          if (claim.requestHash !== hash) throw new IdempotencyKeyReused();
          if (claim.state === "pending") throw new Conflict("A request with this Idempotency-Key is still in progress; retry shortly.");
          return { status: claim.status!, body: JSON.parse(claim.body!), location: claim.location, etag: claim.etag, replayed: true };
        }
        try {
          const reply = await execute();
          await repo.complete(actor.tokenId, key, { status: reply.status, body: JSON.stringify(reply.body), location: reply.location, etag: reply.etag });
          return { ...reply, replayed: false };
        } catch (err) {
          // Only successes are kept: a failed request may be retried with the same key.
          await repo.release(actor.tokenId, key);
          throw err;
        }
      }
      throw new Conflict("The Idempotency-Key could not be claimed; retry shortly.");
    },
  };
}

export type Idempotency = ReturnType<typeof createIdempotency>;
