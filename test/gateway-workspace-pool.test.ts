// The workspace endpoint keeps upstream sessions (issue 21): one per record, record version and
// credential, per process, shared by agents; reopened once when the upstream forgets it; closed
// when idle, on a record change, when the pool is full and at shutdown. Counting upstreams (SDK
// v1 sessionful, SDK v2 stateless) and real SDK agents on loopback.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { upstreamKey } from "../server/outbound/upstream-pool.js";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "sk_pool_upstream_0123456789";
const ENV = { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000", MCP_API_TOOL_TIMEOUT_MS: "5000" };
let srv: TestServer;
let v1: GatewayPeer;
let v2: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: ENV });
  v1 = await startV1SessionPeer({ bearer: KEY });
  v2 = await startV2Peer();
});
afterAll(async () => {
  for (const p of [v1, v2]) await p?.close();
  await srv?.stop();
});

async function workspaceWith(on: TestServer, servers: Record<string, unknown>[]) {
  const ws = uniqueWorkspace("pool");
  const admin = await on.token([ws], "usr_admin");
  const ids: string[] = [];
  for (const s of servers) {
    const res = await raw(on.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, ...s }) });
    expect(res.status, res.text).toBe(201);
    ids.push(res.json.id);
  }
  const agent = async () => (await on.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
  return { ws, admin, ids, agent, endpoint: `${on.baseUrl}/api/workspaces/${ws}/mcp` };
}

async function v2Agent(endpoint: string, token: string, pin?: string) {
  const client = new V2Client({ name: "agent", version: "1.0.0" }, { versionNegotiation: { mode: pin ? { pin } : "auto" } });
  await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

async function v1Agent(endpoint: string, token: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" });
  await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

describe("the upstream session pool", () => {
  test("when the key is computed, then it names record, version, principal and a hash of the credential, never the credential", () => {
    const base = { recordId: "mcp_1", recordVersion: "2026-12-01T00:00:00.000Z", url: "http://127.0.0.1/mcp", headers: { Authorization: "Bearer sk_secret_value" } };
    const a = upstreamKey(base);
    expect(a.key).not.toContain("sk_secret_value");
    expect(upstreamKey({ ...base }).key).toBe(a.key);
    expect(upstreamKey({ ...base, headers: { Authorization: "Bearer other" } }).key).not.toBe(a.key);
    expect(upstreamKey({ ...base, recordVersion: "later" }).key).not.toBe(a.key);
    expect(upstreamKey({ ...base, principal: "usr_b" }).group).not.toBe(a.group);
    expect(upstreamKey({ ...base, recordVersion: "later" }).group).toBe(a.group);
  });
});

describe("POST /api/workspaces/{workspaceId}/mcp keeps upstream sessions", () => {
  test("when three agents make 100 tool calls and lists, then the sessionful upstream sees one session, and the credential is the record's", async () => {
    const { endpoint, agent } = await workspaceWith(srv, [
      { name: "Counted", url: v1.url, authType: "api_key", apiKey: KEY },
      { name: "Modern", url: v2.url },
    ]);
    const openedBefore = v1.sessionsOpened!();
    const tokens = [await agent(), await agent(), await agent()];
    const agents = [await v2Agent(endpoint, tokens[0], "2026-07-28"), await v2Agent(endpoint, tokens[1]), await v1Agent(endpoint, tokens[2])];
    const v2Before = v2.requests.length;
    for (let i = 0; i < 100; i++) {
      const client = agents[i % 3];
      const result = await client.callTool({ name: "counted__echo", arguments: { text: `call ${i}` } });
      expect(result.content).toEqual([{ type: "text", text: `call ${i}` }]);
      if (i % 25 === 0) expect((await client.listTools()).tools.map((t) => t.name)).toContain("modern__echo");
    }
    await Promise.all(Array.from({ length: 10 }, (_, i) => agents[0].callTool({ name: "modern__echo", arguments: { text: `m${i}` } })));
    expect(v1.sessionsOpened!() - openedBefore).toBe(1);
    // The 2026-07-28 upstream: its discovery is kept too, so ten calls are ten requests, not a handshake each.
    const discovers = v2.requests.slice(v2Before).filter((h) => h["mcp-method"] === "server/discover").length;
    expect(discovers).toBeLessThanOrEqual(1);
    for (const h of v1.requests.slice(-20)) {
      expect(h.authorization).toBe(`Bearer ${KEY}`);
      for (const t of tokens) expect(JSON.stringify(h)).not.toContain(t);
    }
    for (const a of agents) await a.close();
  }, 60_000);

  test("when the record changes, then the next call opens a new session and the old one is ended upstream", async () => {
    const { endpoint, agent, admin, ids } = await workspaceWith(srv, [{ name: "Changing", url: v1.url, authType: "api_key", apiKey: KEY }]);
    const client = await v2Agent(endpoint, await agent());
    await client.callTool({ name: "changing__echo", arguments: { text: "before" } });
    const opened = v1.sessionsOpened!();
    const open = v1.openSessions();
    const patched = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${ids[0]}`, { token: admin, body: JSON.stringify({ headers: { "X-Tenant": "acme" } }) });
    expect(patched.status, patched.text).toBe(200);
    const deletesBefore = v1.requests.length;
    await client.callTool({ name: "changing__echo", arguments: { text: "after" } });
    expect(v1.sessionsOpened!()).toBe(opened + 1);
    expect(v1.requests.slice(deletesBefore).some((h) => h["x-tenant"] === "acme")).toBe(true);
    await vi.waitFor(() => expect(v1.openSessions()).toBe(open), { timeout: 5000 });
    await client.close();
  }, 30_000);

  test("when an agent cancels its call or goes away, then the kept session stays for everyone else", async () => {
    const { endpoint, agent } = await workspaceWith(srv, [{ name: "Shared", url: v1.url, authType: "api_key", apiKey: KEY }]);
    const other = await v1Agent(endpoint, await agent());
    await other.callTool({ name: "shared__echo", arguments: { text: "first" } });
    const opened = v1.sessionsOpened!();
    const leaving = await v2Agent(endpoint, await agent());
    const abort = new AbortController();
    const call = leaving.callTool({ name: "shared__slow", arguments: { ms: 20_000 } }, { signal: abort.signal });
    await new Promise((r) => setTimeout(r, 300));
    abort.abort();
    await expect(call).rejects.toThrow();
    await leaving.close();
    // An agent whose connection drops mid-call (no notifications/cancelled): a bare POST, aborted.
    const dropped = new AbortController();
    const bare = fetch(endpoint, {
      method: "POST",
      headers: { Authorization: `Bearer ${await agent()}`, "Content-Type": "application/json", Accept: "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "shared__slow", arguments: { ms: 20_000 } } }),
      signal: dropped.signal,
    }).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 300));
    dropped.abort();
    await expect(bare).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 300));
    expect(await other.callTool({ name: "shared__echo", arguments: { text: "after" } })).toMatchObject({ content: [{ text: "after" }] });
    expect(v1.sessionsOpened!()).toBe(opened);
    await other.close();
  }, 30_000);

  test("when the upstream forgets its session, then the call is reconnected once, transparently", async () => {
    const { endpoint, agent } = await workspaceWith(srv, [{ name: "Forgetful", url: v1.url, authType: "api_key", apiKey: KEY }]);
    const client = await v1Agent(endpoint, await agent());
    await client.callTool({ name: "forgetful__echo", arguments: { text: "one" } });
    const opened = v1.sessionsOpened!();
    v1.forgetSessions!();
    expect(await client.callTool({ name: "forgetful__echo", arguments: { text: "two" } })).toMatchObject({ content: [{ text: "two" }] });
    expect(v1.sessionsOpened!()).toBe(opened + 1);
    await client.close();
  }, 30_000);
});

describe("closing kept sessions", () => {
  test("when a session is idle past MCP_API_UPSTREAM_IDLE_MS, or the pool is full, or the process stops, then it is ended upstream (DELETE)", async () => {
    const peer = await startV1SessionPeer({ bearer: KEY });
    const idle = await startServer({ env: { ...ENV, MCP_API_UPSTREAM_IDLE_MS: "300", MCP_API_UPSTREAM_POOL_MAX: "1" } });
    try {
      const { endpoint, agent } = await workspaceWith(idle, [
        { name: "First", url: peer.url, authType: "api_key", apiKey: KEY },
        { name: "Second", url: peer.url, authType: "api_key", apiKey: KEY },
      ]);
      const client = await v2Agent(endpoint, await agent());
      await client.callTool({ name: "first__echo", arguments: { text: "a" } });
      expect(peer.openSessions()).toBe(1);
      await vi.waitFor(() => expect(peer.openSessions()).toBe(0), { timeout: 5000, interval: 50 });
      expect(peer.requests.some((h) => h["mcp-session-id"] !== undefined)).toBe(true);

      // Pool of one: the second record's session replaces the first's.
      await client.callTool({ name: "first__echo", arguments: { text: "b" } });
      await client.callTool({ name: "second__echo", arguments: { text: "c" } });
      await vi.waitFor(() => expect(peer.openSessions()).toBe(1), { timeout: 5000, interval: 50 });
      expect(idle.services.upstreams.size()).toBe(1);

      await client.close();
      await idle.stop();
      expect(peer.openSessions()).toBe(0);
    } finally {
      await idle.stop().catch(() => {});
      await peer.close();
    }
  }, 30_000);
});
