// Browser sessions: a person's token exchanged for a cookie that authorizes only the pages a
// browser opens (the connect page, the OAuth callback). Kept server-side so sign-out is final.
import { createHash, randomBytes } from "node:crypto";
import type { SessionRepo } from "../data/session-repo.js";
import type { Actor } from "./tokens.js";

export const SESSION_MAX_MS = 8 * 60 * 60 * 1000;
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The person a browser session belongs to. */
export interface SessionUser {
  userId: string;
  tokenId: string;
  workspaces: readonly string[];
  /** The scope of the token the person signed in with. */
  scope: "admin" | "gateway";
}

const hashSecret = (secret: string) => createHash("sha256").update("browser-session:").update(secret).digest("hex");

export function createSessionService(repo: SessionRepo, now: () => Date = () => new Date()) {
  return {
    /** A new session for the caller; it ends after 8 hours, or with the token if that is sooner. */
    async create(actor: Actor): Promise<{ secret: string; maxAgeSeconds: number }> {
      const start = now();
      let end = start.getTime() + SESSION_MAX_MS;
      if (actor.expiresAt) end = Math.min(end, Date.parse(actor.expiresAt));
      const secret = randomBytes(32).toString("base64url");
      await repo.deleteExpired(start.toISOString());
      await repo.insert(hashSecret(secret), { userId: actor.userId, tokenId: actor.tokenId, createdAt: start.toISOString(), expiresAt: new Date(end).toISOString() });
      return { secret, maxAgeSeconds: Math.max(1, Math.floor((end - start.getTime()) / 1000)) };
    },

    /** The session's person, or null for no cookie, an unknown one, or one that has ended. */
    async resolve(secret: string | undefined): Promise<SessionUser | null> {
      if (!secret || !SECRET_SHAPE.test(secret)) return null;
      const record = await repo.findActive(hashSecret(secret), now().toISOString());
      return record && { userId: record.userId, tokenId: record.tokenId, workspaces: record.workspaces, scope: record.scope };
    },

    /** Ends the session everywhere; false when there was none to end. */
    async end(secret: string | undefined): Promise<boolean> {
      if (!secret || !SECRET_SHAPE.test(secret)) return false;
      return repo.delete(hashSecret(secret));
    },
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
