// The product's own API tokens: minted once, shown once, checked by hash.
import { hash, randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { TokenRecord, TokenRepo, TokenScope } from "../data/token-repo.js";
import type { CursorCodec } from "./cursor.js";
import { Forbidden, NotFound, Unauthorized, ValidationFailed } from "./errors.js";

export type { TokenScope };
export const TOKEN_SCOPES: readonly TokenScope[] = ["admin", "gateway"];
// How much each scope may do: a token may mint only tokens of its own breadth or narrower.
const SCOPE_BREADTH: Record<TokenScope, number> = { gateway: 1, admin: 2 };
const DAY_MS = 24 * 60 * 60 * 1000;

/** Who is calling: a user acting in the workspaces their token covers. */
export interface Actor {
  tokenId: string;
  userId: string;
  workspaces: readonly string[];
  /** `admin`: everything in its workspaces; `gateway`: only the MCP endpoints of its workspaces. */
  scope: TokenScope;
  /** The toolsets the token is limited to (only their MCP endpoints); null or absent for no such limit. */
  toolsets?: readonly string[] | null;
  /** When the calling token stops working; null (or absent, for actors made up by the product) for never. */
  expiresAt?: string | null;
  /** The request acting, for the audit trail. */
  requestId?: string | null;
}

/** A token as its owner may see it: everything but the secret. */
export interface TokenView {
  id: string;
  name: string | null;
  userId: string;
  workspaces: string[];
  scope: TokenScope;
  toolsets: string[] | null;
  createdAt: string;
  expiresAt: string | null;
}

const TOKEN_PREFIX = "mcpk_";
const TOKEN_SHAPE = /^mcpk_[A-Za-z0-9_-]{43}$/;
const ID_SHAPE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;

// The one-shot digest: a third of createHash's time, and it runs on every authenticated request.
export function hashToken(token: string): string {
  return hash("sha256", token, "hex");
}

function view(r: TokenRecord): TokenView {
  return { id: r.id, name: r.name, userId: r.userId, workspaces: r.workspaces, scope: r.scope, toolsets: r.toolsets, createdAt: r.createdAt, expiresAt: r.expiresAt };
}

export interface TokenServiceOptions {
  cursors?: CursorCodec;
  now?: () => Date;
  /** The workspace a toolset belongs to, or null when there is no such toolset. */
  toolsetWorkspace?: (toolsetId: string) => Promise<string | null>;
}

export function createTokenService(repo: TokenRepo, options: TokenServiceOptions = {}) {
  const now = options.now ?? (() => new Date());

  async function mint(input: { userId: string; workspaces: string[]; name?: string | null; scope?: string; expiresInDays?: number; expiresAt?: string | null; toolsets?: string[] | null }): Promise<{ token: string; record: TokenRecord }> {
    const limited = input.toolsets && input.toolsets.length > 0 ? [...new Set(input.toolsets)] : null;
    // A token limited to toolsets may only use their MCP endpoints: scope gateway unless told otherwise.
    const scope = (input.scope ?? (limited ? "gateway" : "admin")) as TokenScope;
    if (!TOKEN_SCOPES.includes(scope)) throw new Error(`scope '${input.scope}' is not valid: ${TOKEN_SCOPES.join(" or ")}`);
    if (!ID_SHAPE.test(input.userId)) throw new Error(`user id '${input.userId}' is not valid: letters, digits and _ . : - only`);
    if (input.workspaces.length === 0) throw new Error("a token needs at least one workspace");
    for (const ws of input.workspaces) {
      if (!ID_SHAPE.test(ws)) throw new Error(`workspace id '${ws}' is not valid: letters, digits and _ . : - only`);
    }
    const toolsets = limited;
    if (toolsets && scope !== "gateway") throw new Error("a token limited to toolsets must have scope gateway");
    if (toolsets) {
      if (!options.toolsetWorkspace) throw new Error("the token service was built without a toolset lookup");
      for (const id of toolsets) {
        const ws = await options.toolsetWorkspace(id);
        if (ws === null || !input.workspaces.includes(ws)) throw new Error(`toolset '${id}' is not a toolset of the token's workspaces (${input.workspaces.join(", ")})`);
      }
    }
    const days = input.expiresInDays;
    if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 365)) throw new Error(`expiry '${days}' is not valid: a whole number of days from 1 to 365`);
    const created = now();
    const expiresAt = input.expiresAt ?? (days === undefined ? null : new Date(created.getTime() + days * DAY_MS).toISOString());
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const record = {
      id: `tok_${ulid()}`,
      userId: input.userId,
      workspaces: [...new Set(input.workspaces)],
      toolsets,
      name: input.name ?? null,
      scope,
      createdAt: created.toISOString(),
      expiresAt,
    };
    await repo.insert(record, hashToken(token));
    return { token, record: { ...record, revokedAt: null } };
  }

  /**
   * A toolset limit names only toolsets of the new token's own workspaces. One that is unknown and
   * one of a workspace the token will not cover get the same 400, so nothing leaks about other workspaces.
   */
  async function checkToolsets(workspaces: readonly string[], scope: TokenScope, toolsets: readonly string[]) {
    if (scope !== "gateway") {
      throw new ValidationFailed([{ path: "/scope", message: "must be gateway (or left out) for a token limited to toolsets: such a token may use only their MCP endpoints" }]);
    }
    const lookup = options.toolsetWorkspace;
    if (!lookup) throw new Error("the token service was built without a toolset lookup");
    const errors: { path: string; message: string }[] = [];
    for (const [i, id] of toolsets.entries()) {
      const ws = await lookup(id);
      if (ws === null || !workspaces.includes(ws)) errors.push({ path: `/toolsets/${i}`, message: `is not a toolset of the token's workspaces (${workspaces.join(", ")}): ${id}` });
    }
    if (errors.length) throw new ValidationFailed(errors);
  }

  function requireCursors(): CursorCodec {
    if (!options.cursors) throw new Error("the token service was built without a cursor codec");
    return options.cursors;
  }

  return {
    mint,

    /** Resolves an Authorization header to an actor, or throws Unauthorized. */
    async authenticate(authorization: string | undefined): Promise<Actor> {
      const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
      if (!match) throw new Unauthorized();
      const token = match[1];
      if (!TOKEN_SHAPE.test(token)) throw new Unauthorized("The bearer token is malformed.");
      const record = await repo.findActiveByHash(hashToken(token));
      if (!record) throw new Unauthorized("The bearer token is unknown or revoked.");
      // Worded on the wire like every 401 (the problem handler says only "send a valid token").
      if (record.expiresAt !== null && record.expiresAt <= now().toISOString()) throw new Unauthorized("The bearer token has expired.");
      return { tokenId: record.id, userId: record.userId, workspaces: record.workspaces, scope: record.scope, toolsets: record.toolsets, expiresAt: record.expiresAt };
    },

    /** A token the caller mints for themselves, never broader or longer-lived than the caller's own. */
    async mintFor(actor: Actor, input: { name: string; workspaces?: string[]; scope?: TokenScope; expiresInDays?: number; toolsets?: string[] }): Promise<TokenView & { token: string }> {
      const workspaces = input.workspaces ?? [...actor.workspaces];
      workspaces.forEach((ws, i) => {
        if (!actor.workspaces.includes(ws)) {
          throw new Forbidden(`The calling token does not cover workspace ${ws}; a new token may name only workspaces it covers (${actor.workspaces.join(", ")}).`, [
            { path: `/workspaces/${i}`, message: `is a workspace the calling token does not cover: ${ws}` },
          ]);
        }
      });
      const scope = input.scope ?? "gateway";
      if (SCOPE_BREADTH[scope] > SCOPE_BREADTH[actor.scope]) {
        throw new Forbidden(`The calling token has scope ${actor.scope}; a new token may not have the broader scope ${scope}.`, [
          { path: "/scope", message: `is broader than the calling token's scope ${actor.scope}` },
        ]);
      }
      if (input.toolsets) await checkToolsets(workspaces, scope, input.toolsets);
      const created = now();
      let expiresAt = input.expiresInDays === undefined ? null : new Date(created.getTime() + input.expiresInDays * DAY_MS).toISOString();
      if (actor.expiresAt && (expiresAt === null || expiresAt > actor.expiresAt)) expiresAt = actor.expiresAt;
      const { token, record } = await mint({ userId: actor.userId, workspaces, name: input.name, scope, expiresAt, toolsets: input.toolsets });
      return { ...view(record), token };
    },

    async listFor(actor: Actor, query: { limit?: number; cursor?: string }): Promise<{ data: TokenView[]; nextCursor: string | null }> {
      const cursors = requireCursors();
      const limit = query.limit ?? 20;
      const scope = `tokens:${actor.userId}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await repo.listForUser(actor.userId, limit + 1, after);
      const page = rows.slice(0, limit).map(view);
      return { data: page, nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].id) : null };
    },

    /** Revokes one of the caller's own tokens; another user's is not found. */
    async revokeFor(actor: Actor, id: string): Promise<void> {
      if (!(await repo.revokeForUser(actor.userId, id, now().toISOString()))) throw new NotFound(`Token ${id}`);
    },

    list: () => repo.list(),
    revoke: (id: string) => repo.revoke(id, now().toISOString()),
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
