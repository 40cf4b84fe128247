// A 2025-era member's tools/call through the workspace endpoint goes on its kept upstream
// session past the SDK client (server/outbound/direct-call.ts): one POST with the session's id,
// protocol version and the record's credential. What that path does itself, against a counting
// SDK v1 upstream on loopback: stream resumption, the deadline, and the SDK client's result checks.
import { createServer, type IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { closer, listen } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "sk_direct_upstream_0123456789";
let srv: TestServer;

interface Counted {
  url: string;
  requests: IncomingMessage["headers"][];
  /** Every JSON-RPC message POSTed, with the session it came on. */
  messages: { session: string | undefined; message: Record<string, unknown> }[];
  opened(): number;
  close(): Promise<void>;
}

/** A sessionful SDK v1 server that keeps its events (so streams can be resumed), with tools for each case. */
async function startCountedPeer(): Promise<Counted> {
  const requests: Counted["requests"] = [];
  const messages: Counted["messages"] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let opened = 0;
  const tools = [
    { name: "echo", inputSchema: { type: "object" as const, properties: { text: { type: "string" } } } },
    { name: "slow", inputSchema: { type: "object" as const, properties: { ms: { type: "number" } } } },
    { name: "poll", description: "Closes its stream before answering (2025-11-25 polling).", inputSchema: { type: "object" as const } },
    { name: "shaped", inputSchema: { type: "object" as const }, outputSchema: { type: "object" as const, properties: { n: { type: "number" } }, required: ["n"] } },
    { name: "extra", inputSchema: { type: "object" as const } },
  ];
  const serverFor = () => {
    const server = new Server({ name: "counted", version: "1.0.0" }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const args = (request.params.arguments ?? {}) as Record<string, unknown>;
      switch (request.params.name) {
        case "slow":
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, Number(args.ms));
            extra.signal.addEventListener("abort", () => (clearTimeout(t), resolve()));
          });
          return { content: [{ type: "text", text: "slept" }] };
        case "poll": {
          const token = request.params._meta?.progressToken;
          if (token !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: 1, total: 2 } });
          extra.closeSSEStream?.();
          await new Promise((r) => setTimeout(r, 300));
          if (token !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: 2, total: 2 } });
          return { content: [{ type: "text", text: "polled" }] };
        }
        case "shaped":
          return { content: [{ type: "text", text: "n is not a number" }], structuredContent: { n: "seven" } };
        default:
          return { content: [{ type: "text", text: String(args.text) }] };
      }
    });
    return server;
  };
  const http = createServer(async (req, res) => {
    requests.push(req.headers);
    if (req.headers.authorization !== `Bearer ${KEY}`) {
      res.writeHead(401).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
    const sid = req.headers["mcp-session-id"] as string | undefined;
    for (const message of body === undefined ? [] : Array.isArray(body) ? body : [body]) messages.push({ session: sid, message });
    let transport = sid ? sessions.get(sid) : undefined;
    if (!transport) {
      if (sid) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }));
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new InMemoryEventStore(),
        retryInterval: 100,
        onsessioninitialized: (id) => {
          opened++;
          sessions.set(id, created);
        },
        onsessionclosed: (id) => void sessions.delete(id),
      });
      await serverFor().connect(created);
      transport = created;
    }
    if (body?.method === "tools/call" && body.params?.name === "extra") {
      // Written by hand: the SDK's server would drop the block's unknown key before sending.
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: body.id, result: { content: [{ type: "text", text: "x", note: "not in the schema" }], custom: "kept" } }));
      return;
    }
    await transport.handleRequest(req, res, body);
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, requests, messages, opened: () => opened, close: closer(http) };
}

let peer: Counted;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000", MCP_API_TOOL_TIMEOUT_MS: "4000" } });
  peer = await startCountedPeer();
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

async function workspaceWith(name: string) {
  const ws = uniqueWorkspace("direct");
  const admin = await srv.token([ws], "usr_admin");
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name, url: peer.url, authType: "api_key", apiKey: KEY }) });
  expect(res.status, res.text).toBe(201);
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
  return { ws, admin, token, id: res.json.id as string, endpoint: `${srv.baseUrl}/api/workspaces/${ws}/mcp` };
}

async function v1Agent(endpoint: string, token: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" });
  await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

/** A bare 2025-era tools/call (no agent session), and the JSON-RPC messages of its SSE answer. */
async function bareCall(endpoint: string, token: string, name: string) {
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name } }),
  });
  const text = await res.text();
  return text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

const callsOf = (sinceIndex: number, tool: string) => peer.messages.slice(sinceIndex).filter((m) => m.message.method === "tools/call" && (m.message.params as { name?: string }).name === tool);

describe("POST /api/workspaces/{workspaceId}/mcp: a 2025-era member's tools/call on its kept session", () => {
  test("when agents make twenty calls, then each is one POST on the one kept session, with its protocol version and the record's credential, never the agent's token", async () => {
    const { endpoint, token } = await workspaceWith("Counted");
    const opened = peer.opened();
    const since = peer.messages.length;
    const requestsBefore = peer.requests.length;
    const agents = [await v1Agent(endpoint, token), await v1Agent(endpoint, token)];
    await Promise.all(Array.from({ length: 20 }, async (_, i) => expect(await agents[i % 2].callTool({ name: "counted__echo", arguments: { text: `c${i}` } })).toMatchObject({ content: [{ text: `c${i}` }] })));
    expect(peer.opened() - opened).toBe(1);
    const calls = callsOf(since, "echo");
    expect(calls).toHaveLength(20);
    expect(new Set(calls.map((c) => c.session)).size).toBe(1);
    expect(calls[0].session).toBeDefined();
    for (const h of peer.requests.slice(requestsBefore)) {
      expect(h.authorization).toBe(`Bearer ${KEY}`);
      expect(JSON.stringify(h)).not.toContain(token);
    }
    const posted = peer.requests.slice(requestsBefore).filter((h) => h["mcp-session-id"] === calls[0].session);
    for (const h of posted) expect(h["mcp-protocol-version"]).toBe("2025-11-25");
    for (const a of agents) await a.close();
  }, 30_000);

  test("when the member closes a call's stream before answering (2025-11-25 polling), then the call is resumed with Last-Event-ID and the agent gets its progress and its answer", async () => {
    const { endpoint, token } = await workspaceWith("Polling");
    const agent = await v1Agent(endpoint, token);
    const progress: number[] = [];
    const requestsBefore = peer.requests.length;
    expect(await agent.callTool({ name: "polling__poll" }, undefined, { onprogress: (p) => void progress.push(p.progress) })).toMatchObject({ content: [{ text: "polled" }] });
    expect(progress).toEqual([1, 2]);
    expect(peer.requests.slice(requestsBefore).some((h) => typeof h["last-event-id"] === "string")).toBe(true);
    await agent.close();
  }, 30_000);

  test("when the member does not answer within MCP_API_TOOL_TIMEOUT_MS, then the agent gets -32005, the record's lastError is timeout, the member is told notifications/cancelled, and the kept session stays", async () => {
    const { endpoint, token, admin, id } = await workspaceWith("Sleepy");
    const agent = await v1Agent(endpoint, token);
    await agent.callTool({ name: "sleepy__echo", arguments: { text: "awake" } });
    const opened = peer.opened();
    const since = peer.messages.length;
    await expect(agent.callTool({ name: "sleepy__slow", arguments: { ms: 10_000 } })).rejects.toThrow(/-32005.*no answer within 4000 ms/);
    const record = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: admin });
    expect(record.json).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });
    const [call] = callsOf(since, "slow");
    await vi.waitFor(() =>
      expect(peer.messages.slice(since).some((m) => m.message.method === "notifications/cancelled" && (m.message.params as { requestId?: unknown }).requestId === call.message.id)).toBe(true),
    );
    expect(await agent.callTool({ name: "sleepy__echo", arguments: { text: "again" } })).toMatchObject({ content: [{ text: "again" }] });
    expect(peer.opened()).toBe(opened);
    await agent.close();
  }, 30_000);

  test("when a listed tool's structured content does not match its output schema, then the call is refused as the SDK client refuses it; a content block's unknown keys are dropped as its schema drops them", async () => {
    const { endpoint, token } = await workspaceWith("Shapes");
    expect((await bareCall(endpoint, token, "shapes__shaped")).at(-1)).toMatchObject({ result: { structuredContent: { n: "seven" } } }); // no list kept yet: nothing to check against
    const agent = await v1Agent(endpoint, token);
    expect((await agent.listTools()).tools.map((t) => t.name)).toContain("shapes__shaped");
    const refused = (await bareCall(endpoint, token, "shapes__shaped")).at(-1);
    expect(refused).toMatchObject({ id: 7, error: { code: -32602, message: expect.stringContaining("Structured content does not match the tool's output schema") } });
    const extra = (await bareCall(endpoint, token, "shapes__extra")).at(-1);
    expect(extra).toEqual({ jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "x" }], custom: "kept" } });
    await agent.close();
  }, 30_000);
});
