// GET /api/workspaces/{workspaceId}/health (issue 24): every server of a workspace with its
// last status and its calls of the last 15 minutes, computed by the database.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAuditRepo } from "../server/data/audit-repo.js";
import { closedPortUrl } from "./helpers/mcp-peers.js";
import { raw, startServer, STORE, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "2000" } });
});
afterAll(async () => {
  await srv?.stop();
});

async function create(token: string, ws: string, name: string, extra: Record<string, unknown> = {}) {
  const r = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name, url: "https://mcp.example.com/mcp", ...extra }) });
  expect(r.status, r.text).toBe(201);
  return r.json as { id: string; workspaceId: string };
}

async function recordCalls(server: { id: string; workspaceId: string }, calls: Array<[outcome: string, minutesAgo: number]>) {
  const audit = createAuditRepo(srv.services.db.knex);
  for (const [outcome, minutesAgo] of calls) {
    await audit.append(
      server,
      { type: "tool_called", actor: "usr_agent", tokenId: "tok_x", requestId: null, fields: [], toolCall: { tool: "t", outcome: outcome as "ok", durationMs: 5, tokenId: "tok_x" } },
      new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    );
  }
}

describe("GET /api/workspaces/{workspaceId}/health", () => {
  test("when servers have calls of every outcome, some older than 15 minutes, then each server counts the calls that reached it and the failures among them, disabled servers included", async () => {
    const ws = uniqueWorkspace("health");
    const token = await srv.token([ws], "usr_admin");
    const a = await create(token, ws, "alpha");
    const b = await create(token, ws, "beta", { enabled: false });
    const c = await create(token, ws, "gamma");
    await recordCalls(a, [["ok", 1], ["ok", 2], ["tool_error", 3], ["error", 4], ["timeout", 5], ["upstream_error", 6], ["cancelled", 7], ["denied", 8], ["ok", 16], ["error", 30]]);
    await recordCalls(b, [["timeout", 14]]);
    const other = uniqueWorkspace("health-other");
    const elsewhere = await create(await srv.token([other], "usr_admin"), other, "elsewhere");
    await recordCalls(elsewhere, [["error", 1]]);

    const r = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/health`, { token });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({
      data: [
        { serverId: a.id, name: "alpha", enabled: true, status: "", lastCheckedAt: null, lastErrorClass: null, calls15m: 7, failures15m: 3 },
        { serverId: b.id, name: "beta", enabled: false, status: "", lastCheckedAt: null, lastErrorClass: null, calls15m: 1, failures15m: 1 },
        { serverId: c.id, name: "gamma", enabled: true, status: "", lastCheckedAt: null, lastErrorClass: null, calls15m: 0, failures15m: 0 },
      ],
    });
  });

  test("when a tool call through the gateway fails because the server is down, then it counts as a call and as a failure, and the status and error class say why", async () => {
    const ws = uniqueWorkspace("health");
    const admin = await srv.token([ws], "usr_admin");
    const down = await create(admin, ws, "down", { url: await closedPortUrl() });
    const { token: agent } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const call = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${down.id}/mcp`, {
      token: agent,
      headers: { accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: {}, _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} } } }),
    });
    expect(call.status).toBe(200);
    expect(call.json.error).toBeDefined();

    const r = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/health`, { token: admin });
    expect(r.status, r.text).toBe(200);
    expect(r.json.data).toEqual([{ serverId: down.id, name: "down", enabled: true, status: "error", lastCheckedAt: expect.any(String), lastErrorClass: "connect", calls15m: 1, failures15m: 1 }]);
  });

  test("when the workspace is not the token's, then 403; a malformed workspace id is 400; no token is 401", async () => {
    const ws = uniqueWorkspace("health");
    const token = await srv.token([ws], "usr_admin");
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${uniqueWorkspace("not-mine")}/health`, { token })).status).toBe(403);
    const bad = await raw(srv.baseUrl, "GET", `/api/workspaces/${encodeURIComponent("-bad id")}/health`, { token });
    expect(bad.status, bad.text).toBe(400);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/health`)).status).toBe(401);
  });

  test.runIf(STORE === "sqlite")("when the database answers, then it reads the tool calls through the (workspace, type, time) index", async () => {
    const plan = await srv.services.db.knex.raw(
      "explain query plan select server_id, count(*) from audit_events where workspace_id = ? and type = 'tool_called' and at >= ? and tool_call is not null group by server_id",
      ["ws", new Date().toISOString()],
    );
    expect(JSON.stringify(plan)).toContain("audit_events_workspace_type_at_idx");
  });
});
