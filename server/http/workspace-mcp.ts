// The workspace endpoint, /api/workspaces/{workspaceId}/mcp: an MCP server of its own (SDK v2,
// 2026-07-28 and the 2025 revisions, stateless), whose handlers are the workspace gateway's use cases.
import type { Request, Response } from "express";
import { createMcpHandler, ProtocolError, Server, type AuthInfo, type ServerContext } from "@modelcontextprotocol/server";
import { BadMcpRequest } from "../domain/gateway/service.js";
import { DomainError, Forbidden } from "../domain/errors.js";
import { parseMessages } from "../domain/gateway/policy.js";
import type { Actor } from "../domain/tokens.js";
import { WorkspaceCallError, type CallOptions, type WorkspaceGateway } from "../domain/workspace-gateway.js";
import { checkOrigin } from "./mcp-gateway.js";

const SERVER_INFO = { name: "mcp-servers-api-workspace", version: "1.0.0" };

class NotAcceptable extends DomainError {
  constructor() {
    super(406, "not-acceptable", "The requested media type is not available.", "Send Accept: application/json, text/event-stream (Streamable HTTP).");
  }
}

interface Caller {
  actor: Actor;
  workspaceId: string;
  /** The agent speaks 2026-07-28: list results carry ttlMs and cacheScope. */
  modern: boolean;
  /** Aborted when the agent goes away before its answer is written. */
  gone: AbortSignal;
}

// Calls in flight in this process, by token and the agent's request id, so that the agent's
// notifications/cancelled (a request of its own on a stateless endpoint) reaches the call.
const inFlight = new Map<string, AbortController>();
const flightKey = (tokenId: string, id: unknown) => JSON.stringify([tokenId, id]);

function callerOf(authInfo: AuthInfo | undefined): Caller {
  return authInfo?.extra?.caller as Caller;
}

/** The workspace gateway's failures become JSON-RPC errors with the product's own words. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof WorkspaceCallError) throw new ProtocolError(err.code, err.message, err.data);
    throw err;
  }
}

type Ctx = ServerContext;

/** Runs one call with the agent's cancellation (however it arrives) and its progress passed on. */
async function relayed<T>(ctx: Ctx, caller: Caller, meta: Record<string, unknown> | undefined, call: (options: CallOptions) => Promise<T>): Promise<T> {
  const token = meta?.progressToken as string | number | undefined;
  const cancel = new AbortController();
  const key = flightKey(caller.actor.tokenId, ctx.mcpReq.id);
  inFlight.set(key, cancel);
  try {
    return await answer(() =>
      call({
        signal: AbortSignal.any([cancel.signal, ctx.mcpReq.signal, caller.gone]),
        onprogress:
          token === undefined ? undefined : (p) => void ctx.mcpReq.notify({ method: "notifications/progress", params: { ...p, progressToken: token } }).catch(() => {}),
      }),
    );
  } finally {
    if (inFlight.get(key) === cancel) inFlight.delete(key);
  }
}

function serverFor(workspace: WorkspaceGateway, caller: Caller, listTtlMs: number): Server {
  const { actor, workspaceId } = caller;
  // Results depend on the caller's token (its workspaces, and later its person): never shared between callers.
  const hints = caller.modern ? { ttlMs: listTtlMs, cacheScope: "private" } : {};
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: {}, prompts: {}, resources: {}, completions: {} },
    instructions: `The MCP servers of workspace ${workspaceId}; tool, prompt and resource template names are <server namespace>__<name>, resource URIs mcpws://<server namespace>/<the server's URI, percent-encoded>.`,
  });
  server.setRequestHandler("tools/list", async () => ({ ...(await answer(() => workspace.listTools(actor, workspaceId))), ...hints }) as never);
  server.setRequestHandler("tools/call", async (request, ctx) =>
    (await relayed(ctx, caller, request.params._meta, (o) => workspace.callTool(actor, workspaceId, request.params.name, request.params.arguments, o))) as never,
  );
  server.setRequestHandler("prompts/list", async () => ({ ...(await answer(() => workspace.listPrompts(actor, workspaceId))), ...hints }) as never);
  server.setRequestHandler("prompts/get", async (request, ctx) =>
    (await relayed(ctx, caller, request.params._meta, (o) => workspace.getPrompt(actor, workspaceId, request.params.name, request.params.arguments, o))) as never,
  );
  server.setRequestHandler("resources/list", async () => ({ ...(await answer(() => workspace.listResources(actor, workspaceId))), ...hints }) as never);
  server.setRequestHandler(
    "resources/templates/list",
    async () => ({ ...(await answer(() => workspace.listResourceTemplates(actor, workspaceId))), ...hints }) as never,
  );
  server.setRequestHandler("resources/read", async (request, ctx) =>
    (await relayed(ctx, caller, request.params._meta, (o) => workspace.readResource(actor, workspaceId, request.params.uri, o))) as never,
  );
  server.setRequestHandler("completion/complete", async (request, ctx) =>
    (await relayed(ctx, caller, request.params._meta, (o) => workspace.complete(actor, workspaceId, request.params as never, o))) as never,
  );
  return server;
}

export function workspaceMcpHandlers(workspace: WorkspaceGateway, publicOrigin: () => string) {
  const handler = createMcpHandler((ctx) => serverFor(workspace, callerOf(ctx.authInfo), workspace.listTtlMs));

  const sendWorkspaceMessage = async (req: Request, res: Response) => {
    checkOrigin(req, publicOrigin());
    const actor = (req as Request & { auth: Actor }).auth;
    const workspaceId = req.params.workspaceId as string;
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    const accept = req.get("accept") ?? "";
    if (!accept.includes("application/json") || !accept.includes("text/event-stream")) throw new NotAcceptable();
    const parsed = parseMessages(req.body);
    if (!parsed.ok) throw new BadMcpRequest(`The body is not a JSON-RPC 2.0 message: ${parsed.problems.slice(0, 5).join("; ")}.`);
    for (const m of parsed.messages) {
      if (m.method === "notifications/cancelled") inFlight.get(flightKey(actor.tokenId, (m.params as { requestId?: unknown } | undefined)?.requestId))?.abort();
    }
    const gone = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) gone.abort();
    });

    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && name !== "authorization" && name !== "cookie") headers.set(name, value);
    }
    headers.set("content-type", "application/json");
    const body = JSON.stringify(req.body);
    headers.delete("content-length");
    const request = new Request(`http://gateway.invalid${req.originalUrl}`, { method: "POST", headers, body });
    const authInfo: AuthInfo = { token: "", clientId: actor.tokenId, scopes: [], extra: { caller: { actor, workspaceId, modern: req.get("mcp-protocol-version") === "2026-07-28", gone: gone.signal } satisfies Caller } };
    const response = await handler.fetch(request, { authInfo, parsedBody: req.body });

    res.status(response.status);
    response.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "transfer-encoding" && name !== "connection") res.setHeader(name, value);
    });
    if (!response.body) {
      res.end();
      return;
    }
    res.flushHeaders();
    const reader = response.body.getReader();
    res.on("close", () => void reader.cancel().catch(() => {}));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    }
    res.end();
  };

  return { sendWorkspaceMessage };
}
