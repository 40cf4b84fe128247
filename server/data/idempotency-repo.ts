// Idempotency keys: one row per (token, key), claimed before the work and completed after.
import type { Knex } from "knex";
import { isUniqueViolation } from "./db.js";

export interface IdempotencyRecord {
  requestHash: string;
  state: "pending" | "done";
  status: number | null;
  body: string | null;
  location: string | null;
  etag: string | null;
  createdAt: string;
}

interface Row {
  token_id: string;
  idem_key: string;
  request_hash: string;
  state: string;
  status: number | null;
  body: string | null;
  location: string | null;
  etag: string | null;
  created_at: string;
}

export function createIdempotencyRepo(knex: Knex) {
  const table = () => knex<Row>("idempotency_keys");
  return {
    /** Claims the key, or returns what an earlier request with it left. The primary key settles races. */
    async claim(tokenId: string, key: string, requestHash: string, at: string): Promise<"claimed" | IdempotencyRecord> {
      try {
        await table().insert({ token_id: tokenId, idem_key: key, request_hash: requestHash, state: "pending", created_at: at });
        return "claimed";
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      const row = await table().where({ token_id: tokenId, idem_key: key }).first();
      if (!row) return this.claim(tokenId, key, requestHash, at); // released in between
      return {
        requestHash: row.request_hash,
        state: row.state as IdempotencyRecord["state"],
        status: row.status,
        body: row.body,
        location: row.location,
        etag: row.etag,
        createdAt: row.created_at,
      };
    },
    async complete(tokenId: string, key: string, reply: { status: number; body: string; location: string | null; etag: string | null }) {
      await table()
        .where({ token_id: tokenId, idem_key: key })
        .update({ state: "done", status: reply.status, body: reply.body, location: reply.location, etag: reply.etag });
    },
    /** Forgets a claim whose request failed, so that a retry runs it again. */
    async release(tokenId: string, key: string) {
      await table().where({ token_id: tokenId, idem_key: key, state: "pending" }).delete();
    },
    /** Forgets an expired key, if it is still the one that was read. */
    async expire(tokenId: string, key: string, createdAt: string) {
      await table().where({ token_id: tokenId, idem_key: key, created_at: createdAt }).delete();
    },
  };
}

export type IdempotencyRepo = ReturnType<typeof createIdempotencyRepo>;
