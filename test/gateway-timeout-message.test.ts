// The SDK's own request timeout (a session's connect, bounded by MCP_API_CONNECT_TIMEOUT_MS) is
// described with the timeout that fired, not the tool call's longer deadline.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startSilentPeer, type Peer } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let silent: Peer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "1000", MCP_API_TOOL_TIMEOUT_MS: "6000" } });
  silent = await startSilentPeer();
});
afterAll(async () => {
  await silent?.close();
  await srv?.stop();
});

describe("POST /api/workspaces/{workspaceId}/mcp, tools/call to a member whose connect hangs", () => {
  test("when the session's connect times out, then the record's lastError names the connect deadline, not the tool call's", async () => {
    const ws = uniqueWorkspace("wsto");
    const admin = await srv.token([ws], "usr_admin");
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Hangs", url: silent.url }) });
    expect(created.status, created.text).toBe(201);
    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const headers = { accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" };
    const call = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "hangs__anything", arguments: {} } });
    const answer = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token, body: call, headers });
    const record = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token: admin });
    expect(record.json.lastError).toMatchObject({ class: "timeout" });
    const [, ms] = /^no answer within (\d+) ms$/.exec(record.json.lastError.message) ?? [];
    expect(Number(ms), record.json.lastError.message).toBeGreaterThan(0);
    expect(Number(ms)).toBeLessThanOrEqual(1000);
    expect(answer.text).not.toContain("6000");
  });
});
