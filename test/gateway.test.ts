// The MCP gateway end to end: real SDK clients (v2 and v1) → the product → real SDK servers on loopback.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createMcpServerRepo } from "../server/data/mcp-server-repo.js";
import { sessionBinding } from "../server/domain/gateway/service.js";
import { createSessionCodec, sessionKey } from "../server/domain/gateway/session-codec.js";
import { nameKey } from "../server/domain/rules.js";
import { namespaceOf } from "../server/domain/names.js";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { closedPortUrl, startSilentPeer, startWebPage, type Peer } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const UPSTREAM_KEY = "sk_upstream_0123456789";

let srv: TestServer;
let v1: GatewayPeer;
let v2: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_TOOL_TIMEOUT_MS: "1500" } });
  v1 = await startV1SessionPeer({ bearer: UPSTREAM_KEY });
  v2 = await startV2Peer();
});
afterAll(async () => {
  await v1?.close();
  await v2?.close();
  await srv?.stop();
});

async function setup(url: string, extra: Record<string, unknown> = {}, scope: "admin" | "gateway" = "gateway") {
  const ws = uniqueWorkspace("gw");
  const admin = await srv.token([ws], "usr_admin");
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token: admin,
    body: JSON.stringify({ workspaceId: ws, name: "upstream", url, ...extra }),
  });
  expect(created.status, created.text).toBe(201);
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope });
  return { ws, admin, token, id: created.json.id as string, endpoint: `${srv.baseUrl}/api/mcp-servers/${created.json.id}/mcp` };
}

const withKey = { authType: "api_key", apiKey: UPSTREAM_KEY, headers: { "X-Team": "platform" } };

async function v2Client(endpoint: string, token: string, modern = false) {
  const client = new V2Client(
    { name: "agent-v2", version: "1.0.0" },
    { capabilities: { sampling: {} }, ...(modern ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {}) },
  );
  await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

async function v1Client(endpoint: string, token: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
  const transport = new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

describe("POST /api/mcp-servers/{id}/mcp", () => {
  test("when a v1 SDK agent uses a sessionful 2025 server, then tools, resources, prompts, completion, logging and ping all work, with the stored credential upstream and never the agent's token", async () => {
    const { token, endpoint } = await setup(v1.url, withKey);
    const before = v1.requests.length;
    const { client, transport } = await v1Client(endpoint, token);
    expect(transport.sessionId).toMatch(/^mcpgw1\./);
    expect(client.getServerVersion()?.name).toBe("v1-upstream");

    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["ask", "echo", "fails", "grow", "report", "secret_tool", "slow", "work"]);
    expect(await client.callTool({ name: "echo", arguments: { text: "hi" } })).toMatchObject({ content: [{ type: "text", text: "hi" }] });
    expect((await client.readResource({ uri: "mem://greeting" })).contents[0]).toMatchObject({ text: "hello" });
    expect((await client.listResourceTemplates()).resourceTemplates[0].uriTemplate).toBe("mem://items/{id}");
    expect((await client.readResource({ uri: "mem://items/7" })).contents[0]).toMatchObject({ text: "item 7" });
    expect((await client.getPrompt({ name: "greet", arguments: { name: "Ada" } })).messages[0].content).toMatchObject({ text: "Hello Ada" });
    const completion = await client.complete({ ref: { type: "ref/resource", uri: "mem://items/{id}" }, argument: { name: "id", value: "1" } });
    expect(completion.completion.values).toEqual(["1", "10"]);
    await client.setLoggingLevel("debug");
    await client.ping();

    const seen = v1.requests.slice(before);
    expect(seen.length).toBeGreaterThan(8);
    for (const headers of seen) {
      expect(headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
      expect(headers["x-team"]).toBe("platform");
      expect(JSON.stringify(headers)).not.toContain(token);
    }
    await transport.terminateSession();
    expect(v1.openSessions()).toBe(0);
    await client.close();
  });

  test("when the record has secret headers, then they go upstream with the credential, and the agent's token does not", async () => {
    const { token, endpoint } = await setup(v1.url, { ...withKey, secretHeaders: { "X-Upstream-Secret": "s3cret-header-value" } });
    const before = v1.requests.length;
    const { client, transport } = await v1Client(endpoint, token);
    await client.callTool({ name: "echo", arguments: { text: "with secret header" } });
    for (const headers of v1.requests.slice(before)) {
      expect(headers["x-upstream-secret"]).toBe("s3cret-header-value");
      expect(headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
      expect(JSON.stringify(headers)).not.toContain(token);
    }
    await transport.terminateSession();
    await client.close();
  });

  test("when a tool reports progress and logs, and asks the agent's model, then the notifications and the sampling request reach the agent and its answer reaches the server", async () => {
    const { token, endpoint } = await setup(v1.url, withKey);
    const { client, transport } = await v1Client(endpoint, token);
    const logs: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.data));
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", model: "test", content: { type: "text", text: "4" } }));
    const progress: number[] = [];
    const worked = await client.callTool({ name: "work" }, undefined, { onprogress: (p) => void progress.push(p.progress) });
    expect(worked).toMatchObject({ content: [{ text: "done" }] });
    expect(progress).toEqual([1, 2]);
    expect(logs).toEqual(["working"]);
    expect(await client.callTool({ name: "ask" })).toMatchObject({ content: [{ text: "model said 4" }] });

    const updated = new Promise((resolve) => client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => resolve(n.params.uri)));
    await client.subscribeResource({ uri: "mem://greeting" });
    // The update comes on the session's standalone stream (GET), relayed too.
    expect(await updated).toBe("mem://greeting");
    await transport.terminateSession();
    await client.close();
  });

  test("when a v2 SDK agent speaks 2026-07-28 to a 2026-07-28 server, then it works statelessly through the gateway", async () => {
    const { token, endpoint } = await setup(v2.url);
    const client = await v2Client(endpoint, token, true);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["echo"]);
    expect(await client.callTool({ name: "echo", arguments: { text: "modern" } })).toMatchObject({ content: [{ text: "modern" }] });
    const seen = v2.requests.at(-1)!;
    expect(seen["mcp-protocol-version"]).toBe("2026-07-28");
    expect(seen["mcp-method"]).toBe("tools/call");
    expect(seen.authorization).toBeUndefined();
    await client.close();
  });

  test("when a 2026-07-28 server refuses a message at the protocol level (Mcp-Method header not matching the body), then the agent gets its 400 and JSON-RPC error as the server gave them", async () => {
    const { token, id } = await setup(v2.url);
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/list",
      params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } },
    });
    const headers = { ...ACCEPT, "mcp-protocol-version": "2026-07-28", "mcp-method": "prompts/list" };
    const direct = await fetch(v2.url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    const directBody = (await direct.json()) as { error: { code: number } };
    const through = await raw(srv.baseUrl, "POST", mcpPath(id), { token, body, headers });
    expect(through.status).toBe(direct.status);
    expect(through.status).toBe(400);
    expect(through.json.id).toBe(7);
    expect(through.json.error.code).toBe(directBody.error.code);
    expect(through.json.error.code).toBe(-32020);
  });

  test("when a v2 SDK agent speaks 2025-11-25 to a 2025 server, then it works", async () => {
    const { token, endpoint } = await setup(v1.url, withKey);
    const client = await v2Client(endpoint, token);
    expect(await client.callTool({ name: "echo", arguments: { text: "v2 on 2025" } })).toMatchObject({ content: [{ text: "v2 on 2025" }] });
    await client.close();
  });
});

describe("gateway policy: enabled, allowedTools, audit", () => {
  test("when allowedTools is set, then other tools are not listed, a call to one is a JSON-RPC error with no upstream call, and every call is a tool_called event without arguments or result", async () => {
    const { token, admin, id, endpoint } = await setup(v1.url, { ...withKey, allowedTools: ["echo", "fails"] });
    const { client, transport } = await v1Client(endpoint, token);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["echo", "fails"]);
    const before = v1.requests.length;
    await expect(client.callTool({ name: "secret_tool" })).rejects.toThrow(/Tool 'secret_tool' is not allowed on MCP server 'upstream'/);
    expect(v1.requests.length).toBe(before);
    await client.callTool({ name: "echo", arguments: { text: "do-not-record-me" } });
    await client.callTool({ name: "fails" });
    await transport.terminateSession();
    await client.close();

    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events?limit=100`, { token: admin });
    expect(events.status).toBe(200);
    const calls = events.json.data.filter((e: { type: string }) => e.type === "tool_called").reverse();
    expect(calls.map((e: { toolCall: { tool: string; outcome: string } }) => [e.toolCall.tool, e.toolCall.outcome])).toEqual([
      ["secret_tool", "denied"],
      ["echo", "ok"],
      ["fails", "tool_error"],
    ]);
    const tokenId = (await srv.services.tokens.authenticate(`Bearer ${token}`)).tokenId;
    for (const e of calls) {
      expect(e.toolCall.tokenId).toBe(tokenId);
      expect(e.toolCall.durationMs).toBeGreaterThanOrEqual(0);
      expect(e.actor).toBe("usr_agent");
    }
    expect(events.text).not.toContain("do-not-record-me");
  });

  test("when the server is disabled, then every request is a JSON-RPC error and nothing reaches it", async () => {
    const { token, endpoint } = await setup(v1.url, { ...withKey, enabled: false });
    const before = v1.requests.length;
    const res = await raw(srv.baseUrl, "POST", new URL(endpoint).pathname, {
      token,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      headers: { accept: "application/json, text/event-stream" },
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ jsonrpc: "2.0", id: 1, error: { code: -32003, message: "MCP server 'upstream' is disabled in this workspace." } });
    expect(v1.requests.length).toBe(before);
  });

  test("when a tool call outlasts MCP_API_TOOL_TIMEOUT_MS, then the agent gets a JSON-RPC timeout error and the event says timeout", async () => {
    const { token, admin, id, endpoint } = await setup(v1.url, withKey);
    const { client, transport } = await v1Client(endpoint, token);
    await expect(client.callTool({ name: "slow", arguments: { ms: 5000 } })).rejects.toThrow(/no answer within 1500 ms/);
    await transport.terminateSession();
    await client.close();
    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token: admin });
    expect(events.json.data.find((e: { type: string }) => e.type === "tool_called").toolCall).toMatchObject({ tool: "slow", outcome: "timeout" });
    const record = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: admin });
    expect(record.json).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });
  });
});

describe("token scope gateway", () => {
  test("when a gateway token calls any other operation, then 403; the MCP endpoint works with it", async () => {
    const { ws, id, token } = await setup(v1.url, withKey);
    for (const [method, path] of [
      ["GET", `/api/mcp-servers?workspaceId=${ws}`],
      ["GET", `/api/mcp-servers/${id}`],
      ["POST", `/api/mcp-servers/${id}/test`],
    ] as const) {
      const res = await raw(srv.baseUrl, method, path, { token });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.detail).toMatch(/scope gateway/);
    }
  });
});

/** A session id sealed as the product seals them (the test knows the key), for a session the upstream never opened. */
async function sealedFor(id: string, token: string) {
  const codec = createSessionCodec([sessionKey(Buffer.from(srv.config.encryptionKey!, "base64"))]);
  const actor = await srv.services.tokens.authenticate(`Bearer ${token}`);
  const repo = createMcpServerRepo(srv.services.db.knex, srv.services.box, nameKey, namespaceOf);
  const stored = (await repo.find(actor.workspaces, id))!;
  return codec.seal("s1", sessionBinding(stored, await repo.openSecrets(stored.server.workspaceId, id), actor.tokenId));
}

const mcpPath = (id: string) => `/api/mcp-servers/${id}/mcp`;
const rpc = (method: string, id: number | null = 1) => JSON.stringify(id === null ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", id, method });
const ACCEPT = { accept: "application/json, text/event-stream" };

describe("bad input at /api/mcp-servers/{id}/mcp", () => {
  test.each([
    ["not JSON-RPC", JSON.stringify({ hello: "world" }), /needs "jsonrpc": "2.0"/],
    ["an empty batch", "[]", /the batch is empty/],
    ["a request without a method or an id", JSON.stringify({ jsonrpc: "2.0", params: {} }), /needs a "method"/],
  ])("when the body is %s, then 400 naming what is wrong and nothing is sent upstream", async (_name, body, detail) => {
    const { token, id } = await setup(v1.url, withKey);
    const before = v1.requests.length;
    const res = await raw(srv.baseUrl, "POST", mcpPath(id), { token, body, headers: ACCEPT });
    expect(res.status).toBe(400);
    expect(res.json.detail).toMatch(detail);
    expect(v1.requests.length).toBe(before);
  });

  test("when the method is unknown, then a JSON-RPC method-not-found error the product wrote", async () => {
    const { token, id } = await setup(v1.url, withKey);
    const res = await raw(srv.baseUrl, "POST", mcpPath(id), { token, body: rpc("tools/explode"), headers: ACCEPT });
    expect(res.status).toBe(200);
    expect(res.json.error).toEqual({ code: -32601, message: "Method 'tools/explode' is not an MCP method the gateway relays." });
    // On 2026-07-28 an unknown method is also HTTP 404, as that revision prescribes.
    const modern = await raw(srv.baseUrl, "POST", mcpPath(id), { token, body: rpc("tools/explode"), headers: { ...ACCEPT, "mcp-protocol-version": "2026-07-28" } });
    expect(modern.status).toBe(404);
    expect(modern.json.error.code).toBe(-32601);
  });

  test("when the message is over 1 MiB, then 413; when it is not JSON, then 415", async () => {
    const { token, id } = await setup(v1.url, withKey);
    const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: "x".repeat(1_100_000) } } });
    expect((await raw(srv.baseUrl, "POST", mcpPath(id), { token, body: big, headers: ACCEPT })).status).toBe(413);
    expect((await raw(srv.baseUrl, "POST", mcpPath(id), { token, body: "hello", contentType: "text/plain", headers: ACCEPT })).status).toBe(415);
  });

  test("when the session id was not issued for this server and token, then 400; an unknown server is 404; a foreign web origin is 403; no token is 401", async () => {
    const { token, id } = await setup(v1.url, withKey);
    const other = await setup(v1.url, withKey);
    const { transport, client } = await v1Client(other.endpoint, other.token);
    const foreign = transport.sessionId!;
    for (const method of ["POST", "GET", "DELETE"]) {
      const body = method === "POST" ? rpc("ping") : undefined;
      const headers = { ...ACCEPT, "mcp-session-id": foreign };
      expect((await raw(srv.baseUrl, method, mcpPath(id), { token, body, headers })).status, method).toBe(400);
      expect((await raw(srv.baseUrl, method, mcpPath("mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE"), { token, body, headers })).status, method).toBe(404);
      expect((await raw(srv.baseUrl, method, mcpPath(other.id), { token: other.token, body, headers: { ...headers, origin: "https://evil.example" } })).status, method).toBe(403);
      expect((await raw(srv.baseUrl, method, mcpPath(id), { body, headers })).status, method).toBe(401);
    }
    // A page on loopback (a local agent UI) or on the product's own origin may call it.
    const local = await raw(srv.baseUrl, "POST", mcpPath(other.id), { token: other.token, body: rpc("ping"), headers: { ...ACCEPT, "mcp-session-id": foreign, origin: "http://localhost:5173" } });
    expect(local.status).toBe(200);
    await transport.terminateSession();
    // The session has ended upstream: 404 tells the agent to start a new one.
    for (const method of ["POST", "GET", "DELETE"]) {
      const res = await raw(srv.baseUrl, method, mcpPath(other.id), { token: other.token, body: method === "POST" ? rpc("ping") : undefined, headers: { ...ACCEPT, "mcp-session-id": foreign } });
      expect(res.status, method).toBe(404);
    }
    await client.close();
  });

  test("when the server is stateless, then GET and DELETE of a session are 405", async () => {
    const { token, id } = await setup(v2.url);
    const session = await sealedFor(id, token);
    for (const method of ["GET", "DELETE"]) {
      const res = await raw(srv.baseUrl, method, mcpPath(id), { token, headers: { ...ACCEPT, "mcp-session-id": session } });
      expect(res.status, `${method} ${res.text}`).toBe(405);
    }
  });
});

describe("failing upstreams", () => {
  let silent: Peer;
  let html: Peer;
  beforeAll(async () => {
    silent = await startSilentPeer();
    html = await startWebPage();
  });
  afterAll(async () => {
    await silent?.close();
    await html?.close();
  });

  test.each([
    ["refuses connections", async () => closedPortUrl(), /could not be used: .*ECONNREFUSED|could not be used: connect/, "connect"],
    ["hangs", async () => silent.url, /no answer within 1500 ms/, "timeout"],
    ["answers HTML", async () => html.url, /did not answer like an MCP server \(content type text\/html\)/, "protocol"],
    ["answers 401", async () => v1.url, /refused the stored credentials \(HTTP 401\)/, "auth"],
  ])("when the upstream %s, then a request gets a JSON-RPC error the product wrote, and the record's status says so", async (_name, url, message, cls) => {
    const { token, admin, id } = await setup(await url(), { authType: "api_key", apiKey: "sk_wrong_key_123" });
    const res = await raw(srv.baseUrl, "POST", mcpPath(id), { token, body: rpc("tools/list"), headers: ACCEPT });
    expect(res.status).toBe(200);
    expect(res.json.error.message).toMatch(message);
    expect(res.text).not.toContain("sk_wrong_key_123");
    const record = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: admin });
    expect(record.json).toMatchObject({ connectorStatus: "error", lastError: { class: cls } });
  });

  test("when a notification, the session stream or a session end cannot reach the upstream, then 502, or 504 when it hangs", async () => {
    for (const [url, status] of [
      [await closedPortUrl(), 502],
      [silent.url, 504],
    ] as const) {
      const { token, id } = await setup(url);
      const session = await sealedFor(id, token);
      expect((await raw(srv.baseUrl, "POST", mcpPath(id), { token, body: rpc("notifications/initialized", null), headers: ACCEPT })).status).toBe(status);
      expect((await raw(srv.baseUrl, "GET", mcpPath(id), { token, headers: { ...ACCEPT, "mcp-session-id": session } })).status).toBe(status);
      expect((await raw(srv.baseUrl, "DELETE", mcpPath(id), { token, headers: { ...ACCEPT, "mcp-session-id": session } })).status).toBe(status);
    }
  });
});

describe("POST /api/mcp-servers/{id}/test and GET /api/mcp-servers/{id}/tools", () => {
  test("when the server opens a session for the check, then the check ends it", async () => {
    const { admin, id } = await setup(v1.url, withKey, "admin");
    const sessionsBefore = v1.openSessions();
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token: admin })).json.connectorStatus).toBe("connected");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/tools`, { token: admin })).status).toBe(200);
    expect(v1.openSessions()).toBe(sessionsBefore);
    expect(v1.requests.at(-1)!["mcp-session-id"]).toBeDefined();
  });
});
