// An agent's own cancellation of a tools/call (it closes the connection, or sends
// notifications/cancelled) is not the member's failure: the record keeps its status and
// lastError, the workspace's health counts no failure, and the call's event and log line say cancelled.
// A real upstream failure (the deadline) is still recorded. Real SDK v1 upstream and agents.
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { startV1SessionPeer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let peer: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_TOOL_TIMEOUT_MS: "1500" } });
  peer = await startV1SessionPeer();
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

async function setup() {
  const ws = uniqueWorkspace("cancel");
  const admin = await srv.token([ws], "usr_admin");
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Member", url: peer.url }) });
  expect(created.status, created.text).toBe(201);
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
  const id = created.json.id as string;
  return { ws, admin, token, id, perServer: `${srv.baseUrl}/api/mcp-servers/${id}/mcp`, workspace: `${srv.baseUrl}/api/workspaces/${ws}/mcp` };
}

async function agent(endpoint: string, token: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" });
  const transport = new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

/** Resolves once the upstream has been sent a tools/call of `slow` beyond the first `since` messages. */
const slowReached = (since: number) => vi.waitFor(() => expect(peer.messages!.slice(since).some((m) => m.method === "tools/call" && (m.params as { name?: string }).name === "slow")).toBe(true), { timeout: 5000 });

/** The record's status and lastError, the workspace's health failures and the slow call's event outcome. */
async function afterwards(s: Awaited<ReturnType<typeof setup>>) {
  const record = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${s.id}`, { token: s.admin });
  const health = await raw(srv.baseUrl, "GET", `/api/workspaces/${s.ws}/health`, { token: s.admin });
  const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${s.id}/events`, { token: s.admin });
  const slow = (events.json.data as { type: string; toolCall?: { tool: string; outcome: string } }[]).find((e) => e.type === "tool_called" && e.toolCall?.tool === "slow");
  // The gateway's "mcp message" line for the call (info level, 30).
  const line = srv.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "mcp message" && l.tool === "slow" && l.serverId === s.id);
  return { connectorStatus: record.json.connectorStatus, lastError: record.json.lastError, failures15m: health.json.data[0].failures15m, outcome: slow?.toolCall?.outcome, logged: line && { outcome: line.outcome, level: line.level } };
}

/** A tools/call of `slow` whose HTTP request the agent aborts once the upstream is working on it. */
async function abandonedCall(endpoint: string, token: string, session: { id: string; version: string } | null) {
  const since = peer.messages!.length;
  const controller = new AbortController();
  const sent = fetch(endpoint, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": session?.version ?? "2025-11-25",
      ...(session ? { "Mcp-Session-Id": session.id } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 41, method: "tools/call", params: { name: session ? "slow" : "member__slow", arguments: { ms: 10_000 } } }),
    signal: controller.signal,
  }).then((res) => res.text());
  await slowReached(since);
  controller.abort();
  await expect(sent).rejects.toThrow();
}

/** A tools/call of `slow` the SDK agent cancels (notifications/cancelled) once the upstream is working on it. */
async function cancelledCall(client: V1Client, name: string) {
  const since = peer.messages!.length;
  const controller = new AbortController();
  const call = client.callTool({ name, arguments: { ms: 10_000 } }, undefined, { signal: controller.signal });
  await slowReached(since);
  controller.abort("changed my mind");
  await expect(call).rejects.toThrow();
}

/** Past the deadline a call left hanging would reach, so a failure recorded late is seen too. */
const pastDeadline = () => new Promise((resolve) => setTimeout(resolve, 2500));

describe.each([
  ["POST /api/mcp-servers/{id}/mcp", "perServer"],
  ["POST /api/workspaces/{workspaceId}/mcp", "workspace"],
] as const)("%s: the agent's own cancellation", (_route, endpointKind) => {
  test("when the agent closes its connection mid-call, then the member's record keeps connected with no lastError, health counts no failure, and the event and the mcp message line say cancelled", async () => {
    const s = await setup();
    const { client, transport } = await agent(s[endpointKind], s.token);
    await client.callTool({ name: endpointKind === "perServer" ? "echo" : "member__echo", arguments: { text: "warm" } });
    const session = endpointKind === "perServer" ? { id: transport.sessionId!, version: transport.protocolVersion ?? "2025-11-25" } : null;
    await abandonedCall(s[endpointKind], s.token, session);
    await pastDeadline();
    await vi.waitFor(async () => expect((await afterwards(s)).outcome).toBeDefined());
    expect(await afterwards(s)).toEqual({ connectorStatus: "connected", lastError: null, failures15m: 0, outcome: "cancelled", logged: { outcome: "cancelled", level: 30 } });
    await client.close();
  }, 30_000);

  test("when the agent sends notifications/cancelled mid-call, then the member's record keeps connected with no lastError, health counts no failure, and the event and the mcp message line say cancelled", async () => {
    const s = await setup();
    const { client } = await agent(s[endpointKind], s.token);
    const prefix = endpointKind === "perServer" ? "" : "member__";
    await client.callTool({ name: `${prefix}echo`, arguments: { text: "warm" } });
    await cancelledCall(client, `${prefix}slow`);
    await pastDeadline();
    await vi.waitFor(async () => expect((await afterwards(s)).outcome).toBeDefined());
    expect(await afterwards(s)).toEqual({ connectorStatus: "connected", lastError: null, failures15m: 0, outcome: "cancelled", logged: { outcome: "cancelled", level: 30 } });
    // The member still serves the agent.
    expect(await client.callTool({ name: `${prefix}echo`, arguments: { text: "again" } })).toMatchObject({ content: [{ text: "again" }] });
    await client.close();
  }, 30_000);

  test("when the member does not answer within MCP_API_TOOL_TIMEOUT_MS, then that is still its failure: lastError timeout, one failure in health, the event and the mcp message line say timeout", async () => {
    const s = await setup();
    const { client } = await agent(s[endpointKind], s.token);
    const prefix = endpointKind === "perServer" ? "" : "member__";
    await client.callTool({ name: `${prefix}echo`, arguments: { text: "warm" } });
    await expect(client.callTool({ name: `${prefix}slow`, arguments: { ms: 10_000 } })).rejects.toThrow(/no answer within 1500 ms/);
    expect(await afterwards(s)).toEqual({ connectorStatus: "error", lastError: expect.objectContaining({ class: "timeout" }), failures15m: 1, outcome: "timeout", logged: { outcome: "timeout", level: 30 } });
    await client.close();
  }, 30_000);
});
