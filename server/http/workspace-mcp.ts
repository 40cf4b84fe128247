// The workspace endpoint, /api/workspaces/{workspaceId}/mcp: an MCP server of its own (SDK v2,
// 2026-07-28 and the 2025 revisions, stateless), whose handlers are the workspace gateway's use cases.
import type { Request, Response } from "express";
import { createMcpHandler, ProtocolError, Server, type AuthInfo } from "@modelcontextprotocol/server";
import { BadMcpRequest } from "../domain/gateway/service.js";
import { DomainError, Forbidden } from "../domain/errors.js";
import { parseMessages } from "../domain/gateway/policy.js";
import type { Actor } from "../domain/tokens.js";
import { WorkspaceCallError, type WorkspaceGateway } from "../domain/workspace-gateway.js";
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
}

function callerOf(authInfo: AuthInfo | undefined): Caller {
  return authInfo?.extra?.caller as Caller;
}

/** The workspace gateway's failures become JSON-RPC errors with the product's own words. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof WorkspaceCallError) throw new ProtocolError(err.code, err.message);
    throw err;
  }
}

function serverFor(workspace: WorkspaceGateway, caller: Caller): Server {
  const { actor, workspaceId } = caller;
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: {}, prompts: {} },
    instructions: `The MCP servers of workspace ${workspaceId}; tool and prompt names are <server namespace>__<name>.`,
  });
  server.setRequestHandler("tools/list", async () => ({ tools: (await answer(() => workspace.listTools(actor, workspaceId))) as never }));
  server.setRequestHandler("tools/call", async (request) =>
    (await answer(() => workspace.callTool(actor, workspaceId, request.params.name, request.params.arguments))) as never,
  );
  server.setRequestHandler("prompts/list", async () => ({ prompts: (await answer(() => workspace.listPrompts(actor, workspaceId))) as never }));
  server.setRequestHandler("prompts/get", async (request) =>
    (await answer(() => workspace.getPrompt(actor, workspaceId, request.params.name, request.params.arguments))) as never,
  );
  return server;
}

export function workspaceMcpHandlers(workspace: WorkspaceGateway, publicOrigin: () => string) {
  const handler = createMcpHandler((ctx) => serverFor(workspace, callerOf(ctx.authInfo)));

  const sendWorkspaceMessage = async (req: Request, res: Response) => {
    checkOrigin(req, publicOrigin());
    const actor = (req as Request & { auth: Actor }).auth;
    const workspaceId = req.params.workspaceId as string;
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    const accept = req.get("accept") ?? "";
    if (!accept.includes("application/json") || !accept.includes("text/event-stream")) throw new NotAcceptable();
    const parsed = parseMessages(req.body);
    if (!parsed.ok) throw new BadMcpRequest(`The body is not a JSON-RPC 2.0 message: ${parsed.problems.slice(0, 5).join("; ")}.`);

    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && name !== "authorization" && name !== "cookie") headers.set(name, value);
    }
    headers.set("content-type", "application/json");
    const body = JSON.stringify(req.body);
    headers.delete("content-length");
    const request = new Request(`http://gateway.invalid${req.originalUrl}`, { method: "POST", headers, body });
    const authInfo: AuthInfo = { token: "", clientId: actor.tokenId, scopes: [], extra: { caller: { actor, workspaceId } satisfies Caller } };
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
