// The workspace endpoint: one MCP server made of a workspace's enabled servers, with
// namespaced names, real SDK clients (v2 and v1) and real SDK servers on loopback.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { namespaceOf, namespaced, splitNamespaced } from "../server/domain/names.js";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { startSilentPeer, startWebPage, type Peer } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "sk_ws_upstream_0123456789";
let srv: TestServer;
let v1: GatewayPeer;
let v2: GatewayPeer;
let silent: Peer;
let html: Peer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000", MCP_API_TOOL_TIMEOUT_MS: "5000" } });
  v1 = await startV1SessionPeer({ bearer: KEY });
  v2 = await startV2Peer();
  silent = await startSilentPeer();
  html = await startWebPage();
});
afterAll(async () => {
  for (const p of [v1, v2, silent, html]) await p?.close();
  await srv?.stop();
});

describe("namespaced names", () => {
  test.each([
    ["GitHub Tools", "github_tools"],
    ["  Ça va—très bien! ", "ca_va_tres_bien"],
    ["a__b", "a_b"],
    ["***", "server"],
    ["x".repeat(60), `${"x".repeat(31)}_42f2d973`],
  ])("the namespace of %j is %j", (name, namespace) => {
    expect(namespaceOf(name)).toBe(namespace);
  });

  test("when two long names differ only after the 40th character, then their namespaces still differ", () => {
    const a = namespaceOf("contract-check-1795920000000-unreachable-test-1");
    const b = namespaceOf("contract-check-1795920000000-unreachable-tools-2");
    expect(a).not.toBe(b);
    for (const ns of [a, b]) expect(ns).toMatch(/^[a-z0-9_]{1,40}$/);
    expect(a + b).not.toContain("__");
  });

  test("when a name is namespaced, then it splits back at the first __, and an invalid or too long one is left out", () => {
    expect(namespaced("github_tools", "search__issues")).toBe("github_tools__search__issues");
    expect(splitNamespaced("github_tools__search__issues")).toEqual({ namespace: "github_tools", name: "search__issues" });
    expect(namespaced("github", "has space")).toBeNull();
    expect(namespaced("github", "t".repeat(120))).toHaveLength(128);
    expect(namespaced("github", "t".repeat(121))).toBeNull();
    expect(splitNamespaced("plain")).toBeNull();
  });
});

async function workspaceWith(servers: Record<string, unknown>[]) {
  const ws = uniqueWorkspace("wsgw");
  const admin = await srv.token([ws], "usr_admin");
  const ids: string[] = [];
  for (const s of servers) {
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, ...s }) });
    expect(res.status, res.text).toBe(201);
    ids.push(res.json.id);
  }
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
  return { ws, admin, token, ids, endpoint: `${srv.baseUrl}/api/workspaces/${ws}/mcp` };
}

describe("POST /api/workspaces/{workspaceId}/mcp", () => {
  test("when agents list and call through the workspace endpoint, then every enabled server's tools and prompts appear namespaced, a hanging or broken one is left out and marked, and calls reach the right server with its credential", async () => {
    const { token, admin, ids, endpoint } = await workspaceWith([
      { name: "Alpha Tools", url: v1.url, authType: "api_key", apiKey: KEY, allowedTools: ["echo", "ask"] },
      { name: "Beta", url: v2.url },
      { name: "Hangs", url: silent.url },
      { name: "Web page", url: html.url },
      { name: "Off", url: v2.url, enabled: false },
    ]);
    const modern = new V2Client({ name: "agent", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await modern.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const names = (await modern.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(["alpha_tools__ask", "alpha_tools__echo", "beta__echo"]);
    const before = v1.requests.length;
    expect(await modern.callTool({ name: "alpha_tools__echo", arguments: { text: "through the workspace" } })).toMatchObject({
      content: [{ text: "through the workspace" }],
    });
    expect(await modern.callTool({ name: "beta__echo", arguments: { text: "to beta" } })).toMatchObject({ content: [{ text: "to beta" }] });
    for (const h of v1.requests.slice(before)) {
      expect(h.authorization).toBe(`Bearer ${KEY}`);
      expect(JSON.stringify(h)).not.toContain(token);
    }
    expect(v1.openSessions()).toBe(1); // kept by the gateway's pool, for every agent
    await expect(modern.callTool({ name: "alpha_tools__secret_tool" })).rejects.toThrow(/Tool 'secret_tool' is not allowed on MCP server 'Alpha Tools'/);
    await expect(modern.callTool({ name: "nowhere__echo" })).rejects.toThrow(/Unknown tool 'nowhere__echo'/);
    expect((await modern.listPrompts()).prompts.map((p) => p.name)).toEqual(["alpha_tools__greet"]);
    expect((await modern.getPrompt({ name: "alpha_tools__greet", arguments: { name: "Ada" } })).messages[0].content).toMatchObject({ text: "Hello Ada" });
    await modern.close();

    const hangs = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${ids[2]}`, { token: admin });
    expect(hangs.json).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });
    const page = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${ids[3]}`, { token: admin });
    expect(page.json.connectorStatus).toBe("error");
    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${ids[0]}/events`, { token: admin });
    expect(events.json.data.filter((e: { type: string }) => e.type === "tool_called").map((e: { toolCall: { tool: string; outcome: string } }) => [e.toolCall.tool, e.toolCall.outcome])).toEqual([
      ["secret_tool", "denied"],
      ["echo", "ok"],
    ]);

    const legacy = new V1Client({ name: "agent-v1", version: "1.0.0" });
    await legacy.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    expect(await legacy.callTool({ name: "beta__echo", arguments: { text: "v1 agent" } })).toMatchObject({ content: [{ text: "v1 agent" }] });
    await legacy.close();
  }, 30_000);

  test("when a create or rename would give two servers one namespace, then 409 naming the other server, and nothing changes", async () => {
    const { ws, admin, ids } = await workspaceWith([{ name: "GitHub Tools", url: v2.url }, { name: "Other", url: v2.url }]);
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "github-tools", url: v2.url }) });
    expect(created.status).toBe(409);
    expect(created.json.detail).toContain(`MCP server 'GitHub Tools' (${ids[0]})`);
    const renamed = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${ids[1]}`, { token: admin, body: JSON.stringify({ name: "GITHUB_tools!" }) });
    expect(renamed.status).toBe(409);
    expect(renamed.json.detail).toContain("github_tools");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${ids[1]}`, { token: admin })).json.name).toBe("Other");
  });

  test("when the request is refused before any server is asked, then 400, 401, 403, 406, 413 or 415 as the case is", async () => {
    const { ws, token } = await workspaceWith([{ name: "Beta", url: v2.url }]);
    const path = `/api/workspaces/${ws}/mcp`;
    const accept = { accept: "application/json, text/event-stream" };
    const ping = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" });
    expect((await raw(srv.baseUrl, "POST", path, { token, body: JSON.stringify({ no: "rpc" }), headers: accept })).status).toBe(400);
    expect((await raw(srv.baseUrl, "POST", path, { body: ping, headers: accept })).status).toBe(401);
    const other = await raw(srv.baseUrl, "POST", `/api/workspaces/ws_not_mine/mcp`, { token, body: ping, headers: accept });
    expect(other.status).toBe(403);
    expect(other.json.detail).toBe("The token does not cover workspace ws_not_mine.");
    expect((await raw(srv.baseUrl, "POST", path, { token, body: ping, headers: { accept: "application/json" } })).status).toBe(406);
    expect((await raw(srv.baseUrl, "POST", path, { token, body: "x".repeat(1_100_000), headers: accept })).status).toBe(413);
    expect((await raw(srv.baseUrl, "POST", path, { token, body: "ping", contentType: "text/plain", headers: accept })).status).toBe(415);
    const note = await raw(srv.baseUrl, "POST", path, { token, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), headers: accept });
    expect(note.status).toBe(202);
  });
});

describe("a member's failure on its record", () => {
  test("when agents list the workspace at once while a member hangs, then the record shows its failure, written once for the attempt they shared", async () => {
    const hangs = await startSilentPeer(); // its own: nothing else has dialled it
    const { admin, token, ids, ws } = await workspaceWith([{ name: "Hangs", url: hangs.url }]);
    const record = () => raw(srv.baseUrl, "GET", `/api/mcp-servers/${ids[0]}`, { token: admin });
    const before = await record();
    const list = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });
    const headers = { accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" };
    const lists = await Promise.all(Array.from({ length: 8 }, () => raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token, body: list, headers })));
    for (const l of lists) expect(l.status).toBe(200);
    const after = await record();
    expect(after.json).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });
    expect(Date.parse(after.json.lastCheckedAt)).toBeGreaterThan(Date.parse(before.json.createdAt));
    // Once: a write per list was a burst of transactions every connect timeout.
    expect([before.headers.get("etag"), after.headers.get("etag")]).toEqual([`"v1"`, `"v2"`]);
    // A later attempt is a failure of its own: recorded again.
    expect((await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token, body: list, headers })).status).toBe(200);
    const again = await record();
    expect(again.headers.get("etag")).toBe(`"v3"`);
    expect(Date.parse(again.json.lastCheckedAt)).toBeGreaterThan(Date.parse(after.json.lastCheckedAt));
    await hangs.close();
  }, 30_000);
});
