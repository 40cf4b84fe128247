// The product's own API tokens: minted once, shown once, checked by hash.
import { createHash, randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { TokenRecord, TokenRepo, TokenScope } from "../data/token-repo.js";

export type { TokenScope };
export const TOKEN_SCOPES: readonly TokenScope[] = ["admin", "gateway"];
import { Unauthorized } from "./errors.js";

/** Who is calling: a user acting in the workspaces their token covers. */
export interface Actor {
  tokenId: string;
  userId: string;
  workspaces: readonly string[];
  /** `admin`: everything in its workspaces; `gateway`: only the MCP endpoints of its workspaces. */
  scope: TokenScope;
  /** The request acting, for the audit trail. */
  requestId?: string | null;
}

const TOKEN_PREFIX = "mcpk_";
const TOKEN_SHAPE = /^mcpk_[A-Za-z0-9_-]{43}$/;
const ID_SHAPE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function createTokenService(repo: TokenRepo, now: () => Date = () => new Date()) {
  return {
    async mint(input: { userId: string; workspaces: string[]; name?: string | null; scope?: string }): Promise<{ token: string; record: TokenRecord }> {
      const scope = (input.scope ?? "admin") as TokenScope;
      if (!TOKEN_SCOPES.includes(scope)) throw new Error(`scope '${input.scope}' is not valid: ${TOKEN_SCOPES.join(" or ")}`);
      if (!ID_SHAPE.test(input.userId)) throw new Error(`user id '${input.userId}' is not valid: letters, digits and _ . : - only`);
      if (input.workspaces.length === 0) throw new Error("a token needs at least one workspace");
      for (const ws of input.workspaces) {
        if (!ID_SHAPE.test(ws)) throw new Error(`workspace id '${ws}' is not valid: letters, digits and _ . : - only`);
      }
      const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
      const record = {
        id: `tok_${ulid()}`,
        userId: input.userId,
        workspaces: [...new Set(input.workspaces)],
        name: input.name ?? null,
        scope,
        createdAt: now().toISOString(),
      };
      await repo.insert(record, hashToken(token));
      return { token, record: { ...record, revokedAt: null } };
    },

    /** Resolves an Authorization header to an actor, or throws Unauthorized. */
    async authenticate(authorization: string | undefined): Promise<Actor> {
      const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
      if (!match) throw new Unauthorized();
      const token = match[1];
      if (!TOKEN_SHAPE.test(token)) throw new Unauthorized("The bearer token is malformed.");
      const record = await repo.findActiveByHash(hashToken(token));
      if (!record) throw new Unauthorized("The bearer token is unknown or revoked.");
      return { tokenId: record.id, userId: record.userId, workspaces: record.workspaces, scope: record.scope };
    },

    list: () => repo.list(),
    revoke: (id: string) => repo.revoke(id, now().toISOString()),
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
