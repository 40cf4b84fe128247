// The workspace endpoint finds a call's member by its namespace through the gateway's record
// cache (server/domain/gateway/record-cache.ts): a lookup is trusted for RECORD_CACHE_MS, a
// create, rename or removal through the same process drops it at once. Two server processes on
// one store, a stateless SDK v2 upstream and bare 2025-era calls.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RECORD_CACHE_MS } from "../server/domain/gateway/record-cache.js";
import { startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const ENV = { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000", MCP_API_TOOL_TIMEOUT_MS: "5000" };
let a: TestServer;
let b: TestServer;
let peer: GatewayPeer;
beforeAll(async () => {
  a = await startServer({ env: ENV });
  b = await startServer({ env: ENV, reuse: { dataDir: a.dataDir, databaseUrl: a.databaseUrl } });
  peer = await startV2Peer();
});
afterAll(async () => {
  await peer?.close();
  await b?.stop({ keepData: true });
  await a?.stop();
});

/** A bare 2025-era tools/call of `name`: the result's text, or the error's code. */
async function call(on: TestServer, ws: string, token: string, name: string): Promise<string | number> {
  const res = await raw(on.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, {
    token,
    headers: { accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: { text: "hi" } } }),
  });
  const last = JSON.parse(res.text.split("\n").filter((l) => l.startsWith("data: ")).at(-1)!.slice(6));
  return last.error ? last.error.code : last.result.content[0].text;
}

describe("POST /api/workspaces/{workspaceId}/mcp: a call's member by its namespace", () => {
  test("when a server is renamed, created or deleted through the same process, then its calls follow at once; through another process, within RECORD_CACHE_MS", async () => {
    const ws = uniqueWorkspace("names");
    const admin = await a.token([ws], "usr_admin");
    const { token } = await a.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const created = await raw(a.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "First", url: peer.url }) });
    expect(created.status, created.text).toBe(201);
    const id = created.json.id as string;
    expect(await call(a, ws, token, "first__echo")).toBe("hi");
    expect(await call(a, ws, token, "second__echo")).toBe(-32602); // looked up, and nobody holds it

    // Through the same process: at once, both the name that went and the one that came.
    expect((await raw(a.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token: admin, body: JSON.stringify({ name: "Second" }) })).status).toBe(200);
    expect(await call(a, ws, token, "second__echo")).toBe("hi");
    expect(await call(a, ws, token, "first__echo")).toBe(-32602);

    // Through another process: in force here within the bound.
    expect((await raw(b.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token: admin, body: JSON.stringify({ name: "Third" }) })).status).toBe(200);
    const other = await raw(b.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "First", url: peer.url }) });
    expect(other.status, other.text).toBe(201);
    await sleep(RECORD_CACHE_MS + 200);
    expect(await call(a, ws, token, "third__echo")).toBe("hi");
    expect(await call(a, ws, token, "second__echo")).toBe(-32602);
    expect(await call(a, ws, token, "first__echo")).toBe("hi");

    // Deleted through the same process: gone at once.
    expect((await raw(a.baseUrl, "DELETE", `/api/mcp-servers/${other.json.id}`, { token: admin })).status).toBe(204);
    expect(await call(a, ws, token, "first__echo")).toBe(-32602);
  }, 30_000);
});
