// What the workspace endpoint relays besides tools and prompts (issue 21): resources under
// mcpws:// URIs, resource templates, completion, progress, cancellation; lists that leave out a
// failing member and say so in _meta; lists cached per process and dropped on list_changed;
// ttlMs/cacheScope on the endpoint's own lists for 2026-07-28 agents. Real SDK agents and
// upstreams on loopback.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { namespacedUri, namespacedUriTemplate, splitNamespacedUri } from "../server/domain/names.js";
import { LEFT_OUT_META } from "../server/domain/workspace-gateway.js";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { startSilentPeer, type Peer } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "sk_relay_upstream_0123456789";
let srv: TestServer;
let v1: GatewayPeer;
let v2: GatewayPeer;
let silent: Peer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "2000", MCP_API_TOOL_TIMEOUT_MS: "8000" } });
  v1 = await startV1SessionPeer({ bearer: KEY });
  v2 = await startV2Peer();
  silent = await startSilentPeer();
});
afterAll(async () => {
  for (const p of [v1, v2, silent]) await p?.close();
  await srv?.stop();
});

async function workspaceWith(servers: Record<string, unknown>[]) {
  const ws = uniqueWorkspace("relay");
  const admin = await srv.token([ws], "usr_admin");
  const ids: string[] = [];
  for (const s of servers) {
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, ...s }) });
    expect(res.status, res.text).toBe(201);
    ids.push(res.json.id);
  }
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
  return { ws, admin, ids, token, endpoint: `${srv.baseUrl}/api/workspaces/${ws}/mcp` };
}

/** A v2 agent that also keeps the raw bodies it received. */
async function v2Agent(endpoint: string, token: string, pin?: string) {
  const bodies: string[] = [];
  const fetchAndKeep: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if ((response.headers.get("content-type") ?? "").startsWith("application/json")) bodies.push(await response.clone().text());
    return response;
  };
  const client = new V2Client({ name: "agent", version: "1.0.0" }, { versionNegotiation: { mode: pin ? { pin } : "auto" } });
  await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: fetchAndKeep }));
  return { client, bodies };
}

/** `noStream`: the agent opens no GET stream (whose watch would open every member). */
async function v1Agent(endpoint: string, token: string, noStream = false) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" });
  const withoutStream: typeof fetch = async (input, init) => ((init?.method ?? "GET") === "GET" ? new Response(null, { status: 405 }) : fetch(input, init));
  await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, ...(noStream ? { fetch: withoutStream } : {}) }));
  return client;
}

describe("namespaced resource URIs", () => {
  test.each([
    ["alpha", "mem://greeting", "mcpws://alpha/mem%3A%2F%2Fgreeting"],
    ["b_2", "https://example.com/a b?x=1#f", "mcpws://b_2/https%3A%2F%2Fexample.com%2Fa%20b%3Fx%3D1%23f"],
    ["alpha", "file:///mcpws://alpha/x", "mcpws://alpha/file%3A%2F%2F%2Fmcpws%3A%2F%2Falpha%2Fx"],
  ])("the URI of %j's %j is %j, and it maps back", (ns, uri, full) => {
    expect(namespacedUri(ns, uri)).toBe(full);
    expect(splitNamespacedUri(full)).toEqual({ namespace: ns, uri });
  });

  test("when a template is namespaced, then its expressions stay and an expansion maps back to the server's URI", () => {
    const t = namespacedUriTemplate("alpha", "mem://items/{id}");
    expect(t).toBe("mcpws://alpha/mem%3A%2F%2Fitems%2F{id}");
    expect(splitNamespacedUri(t.replace("{id}", encodeURIComponent("a/b c")))).toEqual({ namespace: "alpha", uri: "mem://items/a/b c" });
    expect(splitNamespacedUri("mem://greeting")).toBeNull();
    expect(splitNamespacedUri("mcpws://Alpha/x")).toBeNull();
    expect(splitNamespacedUri("mcpws://alpha/%E0%A4%A")).toBeNull();
  });
});

describe("POST /api/workspaces/{workspaceId}/mcp relays", () => {
  test("when agents use resources, templates and completion, then they reach the member the URI names and come back namespaced", async () => {
    const { endpoint, token } = await workspaceWith([
      { name: "Alpha", url: v1.url, authType: "api_key", apiKey: KEY },
      { name: "Beta", url: v2.url },
    ]);
    for (const client of [(await v2Agent(endpoint, token, "2026-07-28")).client, await v1Agent(endpoint, token)]) {
      const resources = (await client.listResources()).resources;
      expect(resources.map((r) => r.uri)).toEqual(["mcpws://alpha/mem%3A%2F%2Fgreeting"]);
      expect((await client.readResource({ uri: resources[0].uri })).contents).toEqual([{ uri: "mcpws://alpha/mem%3A%2F%2Fgreeting", text: "hello" }]);
      const templates = (await client.listResourceTemplates()).resourceTemplates;
      expect(templates).toMatchObject([{ name: "alpha__item", uriTemplate: "mcpws://alpha/mem%3A%2F%2Fitems%2F{id}" }]);
      const item = templates[0].uriTemplate.replace("{id}", "10");
      expect((await client.readResource({ uri: item })).contents[0]).toMatchObject({ uri: item, text: "item 10" });
      const completion = await client.complete({ ref: { type: "ref/resource", uri: templates[0].uriTemplate }, argument: { name: "id", value: "1" } });
      expect(completion.completion.values).toEqual(["1", "10"]);
      await expect(client.readResource({ uri: "mcpws://nowhere/mem%3A%2F%2Fgreeting" })).rejects.toThrow(/Unknown resource 'mcpws:\/\/nowhere/);
      await expect(client.readResource({ uri: "mem://greeting" })).rejects.toThrow(/URIs here are mcpws:\/\/<server namespace>/);
      await client.close();
    }
  }, 30_000);

  test("when a call reports progress, then the agent gets it; when the agent cancels, then the upstream call is cancelled", async () => {
    const { endpoint, token } = await workspaceWith([{ name: "Alpha", url: v1.url, authType: "api_key", apiKey: KEY }]);
    const { client } = await v2Agent(endpoint, token, "2026-07-28");
    const progress: number[] = [];
    const done = await client.callTool({ name: "alpha__work" }, { onprogress: (p) => void progress.push(p.progress) });
    expect(done.content).toEqual([{ type: "text", text: "done" }]);
    expect(progress).toEqual([1, 2]);

    const legacy = await v1Agent(endpoint, token);
    const legacyProgress: number[] = [];
    await legacy.callTool({ name: "alpha__work" }, undefined, { onprogress: (p) => void legacyProgress.push(p.progress) });
    expect(legacyProgress).toEqual([1, 2]);

    const before = v1.messages!.length;
    const abort = new AbortController();
    const call = client.callTool({ name: "alpha__slow", arguments: { ms: 20_000 } }, { signal: abort.signal });
    await vi.waitFor(() => expect(v1.messages!.slice(before).some((m) => (m.params as { name?: string } | undefined)?.name === "slow")).toBe(true), { timeout: 5000 });
    abort.abort();
    await expect(call).rejects.toThrow();
    await vi.waitFor(() => expect(v1.messages!.slice(before).some((m) => m.method === "notifications/cancelled")).toBe(true), { timeout: 5000 });
    await client.close();
    await legacy.close();
  }, 30_000);

  test("when a member hangs, then lists leave it out and name it under the documented _meta key, and its record has lastError", async () => {
    const { endpoint, token, ids, admin } = await workspaceWith([
      { name: "Beta", url: v2.url },
      { name: "Hangs", url: silent.url },
    ]);
    const { client, bodies } = await v2Agent(endpoint, token, "2026-07-28");
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(["beta__echo"]);
    const listed = bodies.map((b) => JSON.parse(b)).find((b) => Array.isArray(b.result?.tools));
    expect(listed.result._meta[LEFT_OUT_META]).toEqual([{ serverId: ids[1], name: "Hangs", reason: "timeout", message: expect.stringMatching(/^no answer within \d+ ms$/) }]);
    expect(listed.result).toMatchObject({ ttlMs: 60000, cacheScope: "private" });
    const record = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${ids[1]}`, { token: admin });
    expect(record.json).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });
    await client.close();
    // A call to the healthy member does not open the hanging one (a v1 agent: it calls without listing first; and without a GET stream, which watches every member).
    const legacy = await v1Agent(endpoint, token, true);
    const before = silent.requests.length;
    expect(await legacy.callTool({ name: "beta__echo", arguments: { text: "fine" } })).toMatchObject({ content: [{ text: "fine" }] });
    expect(silent.requests.length).toBe(before);
    await legacy.close();
  }, 30_000);

  test("when a member's list is asked again, then it comes from the cache; on its list_changed and on an allowedTools change, then the new list shows", async () => {
    const { endpoint, token, ids, admin } = await workspaceWith([{ name: "Alpha", url: v1.url, authType: "api_key", apiKey: KEY }]);
    const client = await v1Agent(endpoint, token); // a 2026-07-28 agent would itself keep the list for the ttlMs the endpoint gives
    const listsUpstream = () => v1.messages!.filter((m) => m.method === "tools/list").length;
    const names = async () => (await client.listTools()).tools.map((t) => t.name);
    expect(await names()).not.toContain("alpha__grown");
    const after = listsUpstream();
    await names();
    await names();
    expect(listsUpstream()).toBe(after);

    await client.callTool({ name: "alpha__grow" });
    await vi.waitFor(async () => expect(await names()).toContain("alpha__grown"), { timeout: 5000, interval: 100 });

    const patched = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${ids[0]}`, { token: admin, body: JSON.stringify({ allowedTools: ["echo"] }) });
    expect(patched.status, patched.text).toBe(200);
    expect(await names()).toEqual(["alpha__echo"]);
    await client.close();
  }, 30_000);
});

describe("MCP_API_WORKSPACE_BARE_NAMES", () => {
  test("when it is on and the workspace holds one enabled member, then its names and URIs are bare; with a second member, then they are namespaced again", async () => {
    const bare = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_WORKSPACE_BARE_NAMES: "true" } });
    try {
      const ws = uniqueWorkspace("bare");
      const admin = await bare.token([ws], "usr_admin");
      const create = async (name: string, body: Record<string, unknown>) =>
        expect((await raw(bare.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name, ...body }) })).status).toBe(201);
      await create("Alpha", { url: v1.url, authType: "api_key", apiKey: KEY });
      const { token } = await bare.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
      const client = await v1Agent(`${bare.baseUrl}/api/workspaces/${ws}/mcp`, token);
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
      expect(await client.callTool({ name: "echo", arguments: { text: "bare" } })).toMatchObject({ content: [{ text: "bare" }] });
      expect((await client.readResource({ uri: "mem://greeting" })).contents[0]).toMatchObject({ uri: "mem://greeting", text: "hello" });
      await create("Beta", { url: v2.url });
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(["alpha__echo", "beta__echo"]));
      await expect(client.callTool({ name: "echo", arguments: { text: "x" } })).rejects.toThrow(/Unknown tool 'echo'/);
      await client.close();
    } finally {
      await bare.stop();
    }
  }, 30_000);
});
