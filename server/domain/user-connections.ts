// Per-user connections (issue 20): on a user-scope record each person keeps their own credential
// (OAuth tokens, or an API key and secret headers), managed through the connections API and used
// by the gateway for that person's calls only. Not to be confused with connections.ts, the live
// checks of a server (/test, /tools).
import { randomUUID } from "node:crypto";
import type { AuditRepo } from "../data/audit-repo.js";
import type { McpServerRepo, StoredServer } from "../data/mcp-server-repo.js";
import type { UserConnection, UserConnectionRepo, UserSecrets } from "../data/user-connection-repo.js";
import type { McpServer, ProblemFieldError } from "../wire.js";
import type { CursorCodec } from "./cursor.js";
import { Conflict, NotFound, ValidationFailed } from "./errors.js";
import type { ConnectionError } from "../wire.js";
import type { MigrationOutcome, StepUpOutcome, UserTokenOutcome } from "./oauth/index.js";
import { secretHeaderProblems } from "./rules.js";
import type { Actor } from "./tokens.js";

/** What the gateway sends for one person: their own credential, or where they must go to connect. */
export type UserCredential =
  /** `generation`: the person's OAuth connection's (null for a key), what sealed sessions are bound to with the key and headers. */
  | { ok: true; apiKey: string | null; secretHeaders: Record<string, string>; accessToken: string | null; generation: string | null }
  | { ok: false; connect: ConnectRequired };

/**
 * What to answer a request the MCP server refused for insufficient scope (step-up): where to
 * authorize again (URL-mode elicitation), or, past the retry limit or for client credentials,
 * only the failure.
 */
export type StepUpAnswer = { connect: ConnectRequired | null; error: ConnectionError };

/** URL-mode elicitation data (MCP 2025-11-25 URLElicitationRequiredError, -32042). */
export interface ConnectRequired {
  url: string;
  message: string;
  elicitationId: string;
}

export interface UserConnectionServiceDeps {
  repo: McpServerRepo;
  connections: UserConnectionRepo;
  audit: AuditRepo;
  cursors: CursorCodec;
  userAccessToken: (stored: StoredServer, userId: string) => Promise<UserTokenOutcome>;
  revokeUserTokens: (stored: StoredServer, tokens: Pick<UserSecrets, "oauthAccessToken" | "oauthRefreshToken">) => Promise<void>;
  /** Records a 403 insufficient_scope on the connection used (the person's, or the record's when userId is null). */
  insufficientScope?: (stored: StoredServer, userId: string | null, demanded: string) => Promise<StepUpOutcome>;
  /** After a 401 from the MCP server: whether its authorization server moved, the record's connection dropped if so. */
  authorizationServerMoved?: (stored: StoredServer) => Promise<MigrationOutcome | null>;
  /** The product's public base URL; connect pages are `<publicUrl>/connect/{serverId}`. */
  publicUrl: () => string;
  now?: () => Date;
}

function wire(c: UserConnection) {
  return {
    userId: c.userId,
    status: c.status,
    oauthExpiresAt: c.oauthExpiresAt,
    oauthScopes: c.oauthScopes,
    hasApiKey: c.hasApiKey,
    secretHeaderNames: c.secretHeaderNames,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    lastUsedAt: c.lastUsedAt,
  };
}

export function createUserConnectionService({ repo, connections, cursors, userAccessToken, revokeUserTokens, insufficientScope, authorizationServerMoved, publicUrl, now = () => new Date() }: UserConnectionServiceDeps) {
  async function userScoped(actor: Actor, id: string): Promise<StoredServer> {
    const stored = await repo.find(actor.workspaces, id);
    if (!stored) throw new NotFound(`MCP server ${id}`);
    if (stored.server.connectionScope !== "user") {
      throw new Conflict(`MCP server ${id} has connectionScope workspace: it has one credential for everyone, set on the record. Set connectionScope to user for per-person connections.`);
    }
    return stored;
  }

  const connectUrl = (serverId: string) => `${publicUrl().replace(/\/$/, "")}/connect/${serverId}`;

  async function remove(actor: Actor, id: string, userId: string) {
    const stored = await userScoped(actor, id);
    const existing = await connections.find(id, userId);
    if (!existing) throw new NotFound(`A connection of ${userId} to MCP server ${id}`);
    const secrets = await connections.openSecrets(stored.server, userId).catch(() => null);
    if (secrets && stored.server.authType === "oauth") await revokeUserTokens(stored, secrets);
    const fields = [
      ...(existing.hasOAuthTokens ? [{ name: "oauthAccessToken", change: "cleared" as const }] : []),
      ...(existing.hasApiKey ? [{ name: "apiKey", change: "cleared" as const }] : []),
      ...(existing.secretHeaderNames.length > 0 ? [{ name: "secretHeaders", change: "cleared" as const }] : []),
    ];
    const removed = await connections.remove(stored.server, userId, now().toISOString(), {
      type: "connection_removed",
      actor: actor.userId,
      tokenId: actor.tokenId,
      requestId: actor.requestId ?? null,
      fields,
      subjectUserId: userId,
    });
    if (!removed) throw new NotFound(`A connection of ${userId} to MCP server ${id}`);
  }

  return {
    async list(actor: Actor, id: string, query: { limit?: number; cursor?: string }) {
      await userScoped(actor, id);
      const limit = query.limit ?? 20;
      const scope = `connections:${id}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await connections.list(id, limit + 1, after);
      const page = rows.slice(0, limit);
      return { data: page.map(wire), nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].userId) : null };
    },

    async setMine(actor: Actor, id: string, body: { apiKey?: string | null; secretHeaders?: Record<string, string> }) {
      const stored = await userScoped(actor, id);
      const { authType } = stored.server;
      const problems: ProblemFieldError[] = [];
      if (body.apiKey !== undefined && authType !== "api_key") {
        problems.push({ path: "/apiKey", message: `is only used when authType is api_key (it is ${authType})` });
      }
      if (body.secretHeaders !== undefined && authType === "oauth") {
        problems.push({ path: "/secretHeaders", message: "is not used on an oauth server: connect with POST /api/mcp-servers/{id}/oauth/authorize or the connect page" });
      }
      if (body.secretHeaders !== undefined) problems.push(...secretHeaderProblems(body.secretHeaders, stored.server.headers, authType));
      if (problems.length > 0) throw new ValidationFailed(problems);
      const existing = await connections.find(id, actor.userId);
      const apiKeyAfter = body.apiKey !== undefined ? body.apiKey !== null : (existing?.hasApiKey ?? false);
      if (authType === "api_key" && !apiKeyAfter) throw new ValidationFailed([{ path: "/apiKey", message: "is required: this server's authType is api_key" }]);
      const headerNames = body.secretHeaders !== undefined ? Object.keys(body.secretHeaders) : undefined;
      const fields = [
        ...(body.apiKey !== undefined ? [{ name: "apiKey", change: (body.apiKey === null ? "cleared" : existing?.hasApiKey ? "replaced" : "set") as "set" | "cleared" | "replaced" }] : []),
        ...(body.secretHeaders !== undefined ? [{ name: "secretHeaders", change: (headerNames!.length === 0 ? "cleared" : existing?.secretHeaderNames.length ? "replaced" : "set") as "set" | "cleared" | "replaced" }] : []),
      ];
      const written = await connections.write(
        stored.server,
        actor.userId,
        {
          secrets: {
            ...(body.apiKey !== undefined ? { apiKey: body.apiKey } : {}),
            ...(body.secretHeaders !== undefined ? { secretHeaders: headerNames!.length > 0 ? JSON.stringify(body.secretHeaders) : null } : {}),
          },
          secretHeaderNames: headerNames,
          status: "connected",
          lastError: null,
        },
        now().toISOString(),
        { type: "connection_set", actor: actor.userId, tokenId: actor.tokenId, requestId: actor.requestId ?? null, fields, subjectUserId: actor.userId },
      );
      return wire(written);
    },

    removeMine: (actor: Actor, id: string) => remove(actor, id, actor.userId),
    removeFor: (actor: Actor, id: string, userId: string) => remove(actor, id, userId),

    connectUrl,

    /**
     * A 403 insufficient_scope from `stored`'s MCP server to a request made with `userId`'s own
     * connection (null: the record's). The connection is marked; the agent's person is sent to
     * the connect page, whose authorization asks for the scopes held and those demanded.
     */
    async stepUp(stored: StoredServer, userId: string | null, demanded: string): Promise<StepUpAnswer> {
      if (!insufficientScope || stored.server.authType !== "oauth") {
        return { connect: null, error: { class: "auth", message: `the MCP server refused for insufficient scope${demanded ? ` (it requires ${demanded})` : ""}`, httpStatus: 403 } };
      }
      const outcome = await insufficientScope(stored, userId, demanded);
      const error = { ...outcome.error, httpStatus: 403 };
      if (outcome.verdict !== "reauthorize") return { connect: null, error };
      const { server } = stored;
      const what = outcome.missing.length > 0 ? `scope ${outcome.missing.join(" ")}` : "more access";
      const asks = outcome.scope ? ` (it asks for ${outcome.scope})` : "";
      const message =
        userId !== null && server.connectionScope === "user"
          ? `MCP server '${server.name}' requires ${what}, which your connection does not grant. Open this link in a browser signed in to the product to connect your account again${asks}, then try again.`
          : `MCP server '${server.name}' requires ${what}, which the workspace's connection does not grant. A workspace administrator opens this link in a browser signed in to the product to authorize it again${asks}, then try again.`;
      return { connect: { url: connectUrl(server.id), message, elicitationId: randomUUID() }, error };
    },

    /**
     * The MCP server refused the record's token (401) or its refresh failed (`known`: that refresh
     * already found the move): when the protected resource metadata names another authorization
     * server, the record's connection was dropped and an administrator is sent to the connect
     * page, whose authorization goes to the new server (issue 20 item 6). Null: nothing moved.
     */
    async migrated(stored: StoredServer, known?: ConnectionError): Promise<StepUpAnswer | null> {
      if (stored.server.authType !== "oauth" || stored.server.connectionScope === "user") return null;
      const error = known ?? (authorizationServerMoved ? (await authorizationServerMoved(stored))?.error : undefined);
      if (!error) return null;
      const { server } = stored;
      const message = `MCP server '${server.name}' moved to another authorization server; the workspace's connection must be authorized there. A workspace administrator opens this link in a browser signed in to the product to authorize it again, then try again.`;
      return { connect: { url: connectUrl(server.id), message, elicitationId: randomUUID() }, error: { ...error, httpStatus: 401 } };
    },

    /** The record as a person of `workspaces` may see it (for the connect page). */
    findServer: async (workspaces: readonly string[], id: string): Promise<McpServer | null> => (await repo.find(workspaces, id))?.server ?? null,

    /**
     * The credential of `userId`'s own connection to a user-scope record, never anyone else's.
     * Without a usable one: the connect page to send the person to.
     */
    async credentialFor(stored: StoredServer, userId: string): Promise<UserCredential> {
      const { server } = stored;
      const connect = (why: string): UserCredential => ({
        ok: false,
        connect: {
          url: connectUrl(server.id),
          message: `${why} Open this link in a browser signed in to the product to connect your own account to the MCP server '${server.name}', then try again.`,
          elicitationId: randomUUID(),
        },
      });
      if (server.authType === "oauth") {
        const token = await userAccessToken(stored, userId);
        if (!token.ok) return connect(token.status === "disconnected" ? `You have no usable connection to '${server.name}' (${token.error.message}).` : `Your connection to '${server.name}' failed (${token.error.message}).`);
        const secrets = await connections.openSecrets(server, userId);
        void connections.touch(server.id, userId, now().toISOString()).catch(() => undefined);
        return { ok: true, apiKey: null, secretHeaders: secrets?.secretHeaders ? JSON.parse(secrets.secretHeaders) : {}, accessToken: token.accessToken, generation: token.generation };
      }
      const secrets = await connections.openSecrets(server, userId);
      if (server.authType === "api_key" && !secrets?.apiKey) return connect(`You have not connected '${server.name}' yet.`);
      if (secrets) void connections.touch(server.id, userId, now().toISOString()).catch(() => undefined);
      return { ok: true, apiKey: secrets?.apiKey ?? null, secretHeaders: secrets?.secretHeaders ? JSON.parse(secrets.secretHeaders) : {}, accessToken: null, generation: null };
    },

    /** On a user-scope record, `connectorStatus` and `oauthExpiresAt` are the caller's own connection's. */
    async personalise(server: McpServer, userId: string): Promise<McpServer> {
      if (server.connectionScope !== "user") return server;
      const mine = await connections.find(server.id, userId);
      return { ...server, connectorStatus: mine?.status ?? "disconnected", oauthExpiresAt: mine?.oauthExpiresAt ?? null };
    },
  };
}

export type UserConnectionService = ReturnType<typeof createUserConnectionService>;

/** The record service, with each read of a user-scope record describing the caller's own connection. */
export function personalised<S extends { get(actor: Actor, id: string): Promise<{ server: McpServer }>; list(actor: Actor, q: never): Promise<{ data: McpServer[] }> }>(servers: S, connections: UserConnectionService): S {
  return {
    ...servers,
    async get(actor: Actor, id: string) {
      const v = await servers.get(actor, id);
      if (v.server.connectionScope !== "user") return v;
      return { ...v, server: await connections.personalise(v.server, actor.userId) };
    },
    // Only a user-scope record needs a lookup: a page of workspace-scope ones makes no promise per record.
    async list(actor: Actor, q: never) {
      const page = await servers.list(actor, q);
      if (!page.data.some((s) => s.connectionScope === "user")) return page;
      return { ...page, data: await Promise.all(page.data.map((s) => connections.personalise(s, actor.userId))) };
    },
  };
}
