// Upstream MCP servers for the gateway tests, built with the official SDKs, on loopback:
// a sessionful 2025-era server (SDK v1) with tools, resources, prompts, completion, logging,
// progress, sampling and a tool that adds a tool (list_changed); and a stateless 2026-07-28 server (SDK v2). Both record the headers
// of every request they receive.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { McpServer as V1McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { McpServer as V2McpServer, createMcpHandler, inputRequired, inputResponse } from "@modelcontextprotocol/server";
import * as z4 from "zod/v4";
import { z } from "zod";
import { closer, listen, type Peer } from "./mcp-peers.js";

export interface GatewayPeer extends Peer {
  /** Sessions the server opened and that were not ended yet. */
  openSessions(): number;
  /** Sessions the server opened since it started (a counting upstream). */
  sessionsOpened?(): number;
  /** Forgets every session, as a restarted server would (its next request with one gets 404). */
  forgetSessions?(): void;
  /** Every JSON-RPC message POSTed to it, in order. */
  messages?: Record<string, unknown>[];
  /** How many of its open sessions are subscribed to `uri` (resources/subscribe) now. */
  subscribed?(uri: string): number;
  /** Each open session subscribed to `uri` sends notifications/resources/updated for it. */
  touch?(uri: string): void;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
}

/** A peer's sessions' servers, so that a change of its tools reaches every session (as a real server's would). */
type Sessions = Set<V1McpServer>;

function v1Server(all: Sessions = new Set(), options: UpstreamOptions = {}) {
  let grown: unknown = null;
  const server = new V1McpServer({ name: "v1-upstream", version: "1.0.0" }, { capabilities: { logging: {}, resources: { subscribe: true } } });
  server.registerTool("echo", { description: "Says it back.", inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: "text", text }],
  }));
  server.registerTool("secret_tool", { description: "Not for agents." }, async () => ({ content: [{ type: "text", text: "secret" }] }));
  server.registerTool("fails", { description: "Always a tool error." }, async () => ({ isError: true, content: [{ type: "text", text: "nope" }] }));
  server.registerTool("slow", { description: "Waits.", inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
    await new Promise((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      extra.signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(new Error("cancelled"));
      });
    });
    return { content: [{ type: "text", text: "slept" }] };
  });
  server.registerTool("work", { description: "Reports progress and logs." }, async (extra) => {
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= 2; i++) {
      if (token !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: i, total: 2 } });
    }
    await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: "working" } });
    return { content: [{ type: "text", text: "done" }] };
  });
  server.registerTool("report", { description: "Logs at two levels, once with a logger of its own." }, async (extra) => {
    await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: "fyi" } });
    await extra.sendNotification({ method: "notifications/message", params: { level: "error", logger: "disk", data: "full" } });
    return { content: [{ type: "text", text: "reported" }] };
  });
  server.registerTool("ask", { description: "Asks the agent's model." }, async (extra) => {
    const answer = await server.server.createMessage(
      { messages: [{ role: "user", content: { type: "text", text: "2+2?" } }], maxTokens: 10 },
      { relatedRequestId: extra.requestId },
    );
    const text = answer.content.type === "text" ? answer.content.text : "?";
    return { content: [{ type: "text", text: `model said ${text}` }] };
  });
  if (options.asking) {
    const wait = (ms: number, signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
      });
    server.registerTool("ask_late", { description: "Waits `ms`, asks the agent's model, then waits `thenMs` (until cancelled).", inputSchema: { ms: z.number(), thenMs: z.number().optional() } }, async ({ ms, thenMs }, extra) => {
      await wait(ms, extra.signal);
      const answer = await server.server.createMessage(
        { messages: [{ role: "user", content: { type: "text", text: "2+2?" } }], maxTokens: 10 },
        { relatedRequestId: extra.requestId },
      );
      if (thenMs) await wait(thenMs, extra.signal);
      return { content: [{ type: "text", text: `model said ${answer.content.type === "text" ? answer.content.text : "?"}` }] };
    });
    server.registerTool("confirm", { description: "Asks the agent's user (form elicitation)." }, async (extra) => {
      const answer = await server.server.elicitInput(
        { message: "Proceed?", requestedSchema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] } },
        { relatedRequestId: extra.requestId },
      );
      return { content: [{ type: "text", text: `${answer.action} ${JSON.stringify(answer.content ?? null)}` }] };
    });
    server.registerTool("ask_twice", { description: "Asks the agent's model, then lists its roots." }, async (extra) => {
      const answer = await server.server.createMessage(
        { messages: [{ role: "user", content: { type: "text", text: "2+2?" } }], maxTokens: 10 },
        { relatedRequestId: extra.requestId },
      );
      const { roots } = await server.server.listRoots(undefined, { relatedRequestId: extra.requestId });
      return { content: [{ type: "text", text: `model said ${answer.content.type === "text" ? answer.content.text : "?"}; roots ${roots.map((r) => r.uri).join(" ")}` }] };
    });
    server.registerTool("ask_then_report", { description: "Asks the agent's model, then reports progress (under its progressToken, if given one) and logs, then answers." }, async (extra) => {
      const answer = await server.server.createMessage(
        { messages: [{ role: "user", content: { type: "text", text: "2+2?" } }], maxTokens: 10 },
        { relatedRequestId: extra.requestId },
      );
      const token = extra._meta?.progressToken;
      if (token !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: 1, total: 1, message: "after the answer" } });
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: "answered" } });
      return { content: [{ type: "text", text: `model said ${answer.content.type === "text" ? answer.content.text : "?"}` }] };
    });
    server.registerTool("roots", { description: "Lists the agent's roots." }, async (extra) => {
      const { roots } = await server.server.listRoots(undefined, { relatedRequestId: extra.requestId });
      return { content: [{ type: "text", text: `roots ${roots.map((r) => r.uri).join(" ")}` }] };
    });
  }
  const grow = () => {
    if (!grown) grown = server.registerTool("grown", { description: "Added later." }, async () => ({ content: [{ type: "text", text: "new" }] }));
  };
  server.registerTool("grow", { description: "Adds a tool named grown, in every session (each is told tools/list_changed)." }, async () => {
    for (const s of all) (s as unknown as { grow?: () => void }).grow?.();
    grow();
    return { content: [{ type: "text", text: "grew" }] };
  });
  (server as unknown as { grow: () => void }).grow = grow;
  all.add(server);
  server.registerResource("greeting", "mem://greeting", { mimeType: "text/plain" }, async (uri) => ({ contents: [{ uri: uri.href, text: "hello" }] }));
  server.registerResource(
    "item",
    new ResourceTemplate("mem://items/{id}", { list: undefined, complete: { id: (v) => ["1", "2", "10"].filter((x) => x.startsWith(v)) } }),
    {},
    async (uri, { id }) => ({ contents: [{ uri: uri.href, text: `item ${id}` }] }),
  );
  server.registerPrompt("greet", { description: "Greets.", argsSchema: { name: z.string() } }, ({ name }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Hello ${name}` } }],
  }));
  const subscribed = new Set<string>();
  server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscribed.add(request.params.uri);
    setTimeout(() => void server.server.sendResourceUpdated({ uri: request.params.uri }).catch(() => {}), 20);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscribed.delete(request.params.uri);
    return {};
  });
  (server as unknown as { subscribed: Set<string> }).subscribed = subscribed;
  return server;
}

export interface UpstreamOptions {
  /** Refuse requests without `Authorization: Bearer <this>`. */
  bearer?: string;
  /** Also offer tools that ask the agent: `ask_late` (sampling after `ms`), `confirm` (form elicitation), `roots` (roots/list), `ask_twice` (sampling, then roots/list), `ask_then_report` (sampling, then progress and a log message). */
  asking?: boolean;
}

/** A sessionful Streamable HTTP server (SDK v1, protocol up to 2025-11-25) at /mcp. */
export async function startV1SessionPeer(options: UpstreamOptions = {}): Promise<GatewayPeer> {
  const requests: Peer["requests"] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const servers: Sessions = new Set();
  let opened = 0;
  const messages: Record<string, unknown>[] = [];
  const http = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.headers);
    if (options.bearer && req.headers.authorization !== `Bearer ${options.bearer}`) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end("unauthorized");
      return;
    }
    const body = req.method === "POST" ? await readBody(req) : undefined;
    if (body !== undefined) messages.push(...((Array.isArray(body) ? body : [body]) as Record<string, unknown>[]));
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? sessions.get(sid) : undefined;
    if (!transport) {
      if (typeof sid === "string") {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }));
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          opened++;
          sessions.set(id, created);
        },
        onsessionclosed: (id) => void sessions.delete(id),
      });
      const server = v1Server(servers, options);
      created.onclose = () => {
        servers.delete(server);
        if (created.sessionId) sessions.delete(created.sessionId);
      };
      await server.connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  });
  const port = await listen(http);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    close: closer(http),
    openSessions: () => sessions.size,
    sessionsOpened: () => opened,
    forgetSessions: () => sessions.clear(),
    messages,
    subscribed: (uri) => [...servers].filter((s) => (s as unknown as { subscribed: Set<string> }).subscribed.has(uri)).length,
    touch: (uri) => {
      for (const s of servers) if ((s as unknown as { subscribed: Set<string> }).subscribed.has(uri)) void s.server.sendResourceUpdated({ uri }).catch(() => {});
    },
  };
}

/** A 2026-07-28 server (SDK v2's createMcpHandler: modern and stateless, 2025-era served statelessly too) at /mcp. */
export async function startV2Peer(options: { multiRoundTrip?: boolean } = {}): Promise<GatewayPeer> {
  const requests: Peer["requests"] = [];
  const handler = createMcpHandler(() => {
    const server = new V2McpServer({ name: "v2-upstream", version: "2.0.0" });
    server.registerTool("echo", { description: "Says it back.", inputSchema: z4.object({ text: z4.string() }) }, async ({ text }) => ({
      content: [{ type: "text" as const, text }],
    }));
    // A multi-round-trip request: the first call answers input_required (an elicitation, and state to echo back).
    if (options.multiRoundTrip) server.registerTool("confirm", { description: "Asks the agent to confirm first." }, async (ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, "go");
      if (answer.kind !== "elicit") {
        return inputRequired({ inputRequests: { go: inputRequired.elicit({ message: "Go ahead?", requestedSchema: { type: "object", properties: { go: { type: "boolean" } } } }) }, requestState: "state-1" }) as never;
      }
      return { content: [{ type: "text" as const, text: `${answer.action} ${JSON.stringify(answer.content)} with ${ctx.mcpReq.requestState() ?? "no state"}` }] };
    });
    return server;
  });
  const http = createServer(async (req, res) => {
    requests.push(req.headers);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const request = new Request(`http://127.0.0.1${req.url}`, {
      method: req.method,
      headers,
      body: req.method === "POST" ? (Readable.toWeb(req) as ReadableStream) : undefined,
      duplex: "half",
    } as RequestInit);
    const response = await handler.fetch(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
    res.end();
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, requests, close: closer(http), openSessions: () => 0 };
}
