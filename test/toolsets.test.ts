// Toolsets (issue 22): named MCP endpoints of chosen tools, served through the workspace
// gateway's view, with real SDK upstreams and a real SDK client on loopback; and tokens limited to them.
import { execFile } from "node:child_process";
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "sk_toolsets_upstream_0123456789";
let srv: TestServer;
let v1: GatewayPeer;
let v2: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000", MCP_API_TOOL_TIMEOUT_MS: "10000" } });
  v1 = await startV1SessionPeer({ bearer: KEY });
  v2 = await startV2Peer();
});
afterAll(async () => {
  for (const p of [v1, v2]) await p?.close();
  await srv?.stop();
});

type Json = Record<string, any>;

/** A workspace with an "Alpha" (v1: echo, secret_tool, work, slow, …) and a "Beta" (v2: echo) server. */
async function workspace(extra: Json[] = []) {
  const ws = uniqueWorkspace("tls");
  const admin = await srv.token([ws], "usr_admin");
  const ids: string[] = [];
  for (const s of [{ name: "Alpha", url: v1.url, authType: "api_key", apiKey: KEY }, { name: "Beta", url: v2.url }, ...extra]) {
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, ...s }) });
    expect(res.status, res.text).toBe(201);
    ids.push(res.json.id);
  }
  return { ws, admin, alpha: ids[0], beta: ids[1], ids };
}

const post = (token: string, path: string, body: unknown) => raw(srv.baseUrl, "POST", path, { token, body: JSON.stringify(body) });

async function agent(toolsetId: string, token: string) {
  const client = new V2Client({ name: "agent", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(new V2Transport(new URL(`${srv.baseUrl}/api/toolsets/${toolsetId}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

const mcpPost = (path: string, token: string) =>
  fetch(srv.baseUrl + path, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
  });

describe("POST /api/toolsets/{toolsetId}/mcp", () => {
  test("when an agent lists and calls through a toolset, then only its tools appear, under their override names and descriptions, and calls reach the right server under the tool's own name", async () => {
    const { ws, admin, alpha, beta } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, {
      name: "Support agent",
      tools: [
        { serverId: alpha, tool: "echo", name: "say_back", description: "Repeats what you say." },
        { serverId: beta, tool: "echo" },
        { serverId: alpha, tool: "work" },
      ],
    });
    expect(made.status, made.text).toBe(201);
    expect(made.json.id).toMatch(/^tls_[0-9A-Z]{26}$/);
    expect(made.headers.get("location")).toBe(`/api/toolsets/${made.json.id}`);
    expect(made.headers.get("etag")).toBe('"v1"');
    expect(made.json.tools.map((t: Json) => t.exposedName)).toEqual(["say_back", "beta__echo", "alpha__work"]);

    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const client = await agent(made.json.id, token);
    const tools = (await client.listTools()).tools;
    // Members oldest first, each member's tools in its own order.
    expect(tools.map((t) => [t.name, t.description])).toEqual([
      ["say_back", "Repeats what you say."],
      ["alpha__work", "Reports progress and logs."],
      ["beta__echo", "Says it back."],
    ]);

    const before = v1.messages!.length;
    expect(await client.callTool({ name: "say_back", arguments: { text: "via the toolset" } })).toMatchObject({ content: [{ text: "via the toolset" }] });
    const calls = v1.messages!.slice(before).filter((m) => m.method === "tools/call");
    expect(calls.map((m) => (m.params as Json).name)).toEqual(["echo"]);
    expect(await client.callTool({ name: "beta__echo", arguments: { text: "to beta" } })).toMatchObject({ content: [{ text: "to beta" }] });

    // Progress is relayed as on the workspace endpoint.
    const progress: number[] = [];
    expect((await client.callTool({ name: "alpha__work" }, { onprogress: (p) => void progress.push(p.progress) })).content).toEqual([{ type: "text", text: "done" }]);
    expect(progress).toEqual([1, 2]);

    // Not in the toolset: neither another tool of a member, nor a chosen tool under the workspace name it was renamed from.
    const sent = v1.messages!.length;
    await expect(client.callTool({ name: "alpha__secret_tool" })).rejects.toThrow(/Unknown tool 'alpha__secret_tool'/);
    await expect(client.callTool({ name: "alpha__echo", arguments: { text: "x" } })).rejects.toThrow(/Unknown tool 'alpha__echo'/);
    expect(v1.messages!.slice(sent).filter((m) => m.method === "tools/call")).toEqual([]);
    await client.close();

    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${alpha}/events`, { token: admin });
    expect(events.json.data.filter((e: Json) => e.type === "tool_called").map((e: Json) => e.toolCall.tool)).toEqual(["work", "echo"]);
  }, 30_000);

  test("when an upstream asks a 2025-era agent for sampling and sends log messages during a call, then the toolset relays both, as the workspace endpoint does", async () => {
    const { ws, admin, alpha } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Thinker", tools: [{ serverId: alpha, tool: "ask", name: "think" }, { serverId: alpha, tool: "work" }] });
    const client = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
    const logs: { data: unknown }[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params as { data: unknown }));
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", model: "test", content: { type: "text", text: "four" } }));
    await client.connect(new V1Transport(new URL(`${srv.baseUrl}/api/toolsets/${made.json.id}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${await srv.token([ws])}` } } }));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["alpha__work", "think"]);
    expect((await client.callTool({ name: "think" })).content).toEqual([{ type: "text", text: "model said four" }]);
    expect((await client.callTool({ name: "alpha__work" })).content).toEqual([{ type: "text", text: "done" }]);
    expect(logs.map((l) => l.data)).toContain("working");
    await client.close();
  }, 30_000);

  test("when the agent cancels a call, then the upstream call is cancelled", async () => {
    const { ws, admin, alpha } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Slow", tools: [{ serverId: alpha, tool: "slow", name: "wait" }] });
    const client = await agent(made.json.id, await srv.token([ws]));
    const before = v1.messages!.length;
    const abort = new AbortController();
    const call = client.callTool({ name: "wait", arguments: { ms: 20_000 } }, { signal: abort.signal });
    await vi.waitFor(() => expect(v1.messages!.slice(before).some((m) => (m.params as Json | undefined)?.name === "slow")).toBe(true), { timeout: 5000 });
    abort.abort();
    await expect(call).rejects.toThrow();
    await vi.waitFor(() => expect(v1.messages!.slice(before).some((m) => m.method === "notifications/cancelled")).toBe(true), { timeout: 5000 });
    await client.close();
  }, 30_000);

  test("when a member is disabled or a tool leaves allowedTools, then the toolset no longer serves it (the same policy as the workspace endpoint)", async () => {
    const { ws, admin, alpha, beta } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Policy", tools: [{ serverId: alpha, tool: "echo" }, { serverId: alpha, tool: "work" }, { serverId: beta, tool: "echo" }] });
    expect(made.status, made.text).toBe(201);
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${alpha}`, { token: admin, body: JSON.stringify({ allowedTools: ["work"] }) })).status).toBe(200);
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${beta}`, { token: admin, body: JSON.stringify({ enabled: false }) })).status).toBe(200);
    const client = await agent(made.json.id, await srv.token([ws]));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["alpha__work"]);
    await expect(client.callTool({ name: "alpha__echo", arguments: { text: "x" } })).rejects.toThrow(/Tool 'echo' is not allowed on MCP server 'Alpha'/);
    await expect(client.callTool({ name: "beta__echo", arguments: { text: "x" } })).rejects.toThrow(/Unknown tool 'beta__echo'/);
    await client.close();
  }, 30_000);

  test("when the toolset is unknown or of a workspace the token does not cover, then 404 alike (nothing says it exists, nor whose it is)", async () => {
    const { ws, admin, alpha } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Mine", tools: [{ serverId: alpha, tool: "echo" }] });
    const stranger = await srv.token([uniqueWorkspace("other")]);
    const foreign = await mcpPost(`/api/toolsets/${made.json.id}/mcp`, stranger);
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toMatchObject({ type: "/problems/not-found", detail: `Toolset ${made.json.id} was not found.` });
    const unknown = await mcpPost("/api/toolsets/tls_01JDQ4N8ZK3V7W0XG5T2H9RBCE/mcp", admin);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ type: "/problems/not-found", detail: "Toolset tls_01JDQ4N8ZK3V7W0XG5T2H9RBCE was not found." });
  });
});

describe("tokens limited to toolsets", () => {
  test("when a token is limited to a toolset, then it may use that toolset's endpoint only: other toolsets, the workspace and per-server endpoints and the API answer 403; the limit shows in token lists", async () => {
    const { ws, admin, alpha, beta } = await workspace();
    const one = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "One", tools: [{ serverId: alpha, tool: "echo" }] });
    const two = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Two", tools: [{ serverId: beta, tool: "echo" }] });
    const minted = await post(admin, "/api/tokens", { name: "limited agent", toolsets: [one.json.id] });
    expect(minted.status, minted.text).toBe(201);
    expect(minted.json).toMatchObject({ scope: "gateway", toolsets: [one.json.id], workspaces: [ws] });
    const limited = minted.json.token as string;

    const client = await agent(one.json.id, limited);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["alpha__echo"]);
    expect(await client.callTool({ name: "alpha__echo", arguments: { text: "ok" } })).toMatchObject({ content: [{ text: "ok" }] });
    await client.close();

    for (const path of [`/api/toolsets/${two.json.id}/mcp`, `/api/workspaces/${ws}/mcp`, `/api/mcp-servers/${alpha}/mcp`]) {
      const res = await mcpPost(path, limited);
      expect(res.status, path).toBe(403);
      expect(((await res.json()) as Json).detail, path).toMatch(/limited to toolsets/);
    }
    expect((await raw(srv.baseUrl, "GET", `/api/toolsets/${one.json.id}`, { token: limited })).status).toBe(403);
    expect((await raw(srv.baseUrl, "GET", "/api/me", { token: limited })).status).toBe(200);

    const listed = await raw(srv.baseUrl, "GET", "/api/tokens?limit=100", { token: admin });
    expect(listed.json.data.find((t: Json) => t.id === minted.json.id)).toMatchObject({ toolsets: [one.json.id] });
    expect(listed.json.data.find((t: Json) => t.id !== minted.json.id)).toMatchObject({ toolsets: null });
  }, 30_000);

  test.each([
    ["a toolset of another workspace", "other", "/toolsets/0", "is not a toolset of the token's workspaces"],
    ["an unknown toolset", "unknown", "/toolsets/0", "is not a toolset of the token's workspaces"],
    ["scope admin", "admin", "/scope", "must be gateway"],
  ])("when a token is limited to %s, then 400 naming it, and nothing is minted", async (_name, which, path, message) => {
    const { ws, admin, alpha } = await workspace();
    const elsewhere = await workspace();
    const foreign = await post(elsewhere.admin, `/api/workspaces/${elsewhere.ws}/toolsets`, { name: "Theirs", tools: [{ serverId: elsewhere.alpha, tool: "echo" }] });
    const mine = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Mine", tools: [{ serverId: alpha, tool: "echo" }] });
    const body =
      which === "other"
        ? { name: "x", workspaces: [ws], toolsets: [foreign.json.id] }
        : which === "unknown"
          ? { name: "x", toolsets: ["tls_01JDQ4N8ZK3V7W0XG5T2H9RBCE"] }
          : { name: "x", scope: "admin", toolsets: [mine.json.id] };
    const caller = admin;
    const before = (await raw(srv.baseUrl, "GET", "/api/tokens?limit=100", { token: caller })).json.data.length;
    const res = await post(caller, "/api/tokens", body);
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([{ path, message: expect.stringContaining(message) }]);
    expect((await raw(srv.baseUrl, "GET", "/api/tokens?limit=100", { token: caller })).json.data.length).toBe(before);
  }, 30_000);
});

describe("toolset records", () => {
  test("when toolsets are listed, read, patched and deleted, then cursor pages, ETags and If-Match work as on records, and each change is in the toolset's events", async () => {
    const { ws, admin, alpha, beta } = await workspace();
    const ids: string[] = [];
    for (const name of ["A", "B", "C"]) ids.push((await post(admin, `/api/workspaces/${ws}/toolsets`, { name, tools: [{ serverId: alpha, tool: "echo" }] })).json.id);
    const first = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/toolsets?limit=2`, { token: admin });
    expect(first.json.data.map((t: Json) => t.name)).toEqual(["C", "B"]);
    const second = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/toolsets?limit=2&cursor=${first.json.nextCursor}`, { token: admin });
    expect(second.json).toMatchObject({ data: [{ name: "A" }], nextCursor: null });

    const got = await raw(srv.baseUrl, "GET", `/api/toolsets/${ids[0]}`, { token: admin });
    expect(got.headers.get("etag")).toBe('"v1"');
    const patched = await raw(srv.baseUrl, "PATCH", `/api/toolsets/${ids[0]}`, {
      token: admin,
      headers: { "if-match": '"v1"' },
      body: JSON.stringify({ name: "A2", description: "now two tools", tools: [{ serverId: alpha, tool: "echo" }, { serverId: beta, tool: "echo", name: "beta_echo" }] }),
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.headers.get("etag")).toBe('"v2"');
    const stale = await raw(srv.baseUrl, "PATCH", `/api/toolsets/${ids[0]}`, { token: admin, headers: { "if-match": '"v1"' }, body: JSON.stringify({ name: "lost" }) });
    expect(stale.status).toBe(412);
    expect((await raw(srv.baseUrl, "DELETE", `/api/toolsets/${ids[0]}`, { token: admin, headers: { "if-match": '"v1"' } })).status).toBe(412);
    expect((await raw(srv.baseUrl, "GET", `/api/toolsets/${ids[0]}`, { token: admin })).json).toMatchObject({ name: "A2", description: "now two tools" });
    expect((await raw(srv.baseUrl, "DELETE", `/api/toolsets/${ids[0]}`, { token: admin, headers: { "if-match": '"v2"' } })).status).toBe(204);
    expect((await raw(srv.baseUrl, "GET", `/api/toolsets/${ids[0]}`, { token: admin })).status).toBe(404);
    expect((await raw(srv.baseUrl, "PATCH", `/api/toolsets/${ids[0]}`, { token: admin, body: "{}" })).status).toBe(404);
    expect((await raw(srv.baseUrl, "DELETE", `/api/toolsets/${ids[0]}`, { token: admin })).status).toBe(404);

    const events = await raw(srv.baseUrl, "GET", `/api/toolsets/${ids[0]}/events`, { token: admin });
    expect(events.json.data.map((e: Json) => [e.type, e.fields.map((f: Json) => f.name)])).toEqual([
      ["deleted", []],
      ["updated", ["name", "description", "tools"]],
      ["created", []],
    ]);
    expect(events.json.data[0]).toMatchObject({ toolsetId: ids[0], workspaceId: ws, actor: "usr_admin" });
    expect((await raw(srv.baseUrl, "GET", "/api/toolsets/tls_01JDQ4N8ZK3V7W0XG5T2H9RBCE/events", { token: admin })).status).toBe(404);

    const stranger = await srv.token([uniqueWorkspace("other")]);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/toolsets`, { token: stranger })).status).toBe(403);
    expect((await post(stranger, `/api/workspaces/${ws}/toolsets`, { name: "x", tools: [] })).status).toBe(403);
    expect((await raw(srv.baseUrl, "GET", `/api/toolsets/${ids[1]}`, { token: stranger })).status).toBe(404);
  }, 30_000);

  test("when a server is deleted, then its tools leave every toolset, recorded in each toolset's own events", async () => {
    const { ws, admin, alpha, beta } = await workspace();
    const both = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Both", tools: [{ serverId: alpha, tool: "echo" }, { serverId: beta, tool: "echo" }, { serverId: alpha, tool: "work", name: "do_work" }] });
    const betaOnly = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Beta only", tools: [{ serverId: beta, tool: "echo" }] });
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${alpha}`, { token: admin })).status).toBe(204);

    const after = await raw(srv.baseUrl, "GET", `/api/toolsets/${both.json.id}`, { token: admin });
    expect(after.json.tools).toEqual([{ serverId: beta, tool: "echo", name: null, description: null, exposedName: "beta__echo" }]);
    expect(after.headers.get("etag")).toBe('"v2"');
    const events = await raw(srv.baseUrl, "GET", `/api/toolsets/${both.json.id}/events`, { token: admin });
    expect(events.json.data[0]).toMatchObject({
      type: "tools_removed",
      actor: "usr_admin",
      removedTools: [
        { serverId: alpha, tool: "echo" },
        { serverId: alpha, tool: "work" },
      ],
    });
    const untouched = await raw(srv.baseUrl, "GET", `/api/toolsets/${betaOnly.json.id}/events`, { token: admin });
    expect(untouched.json.data.map((e: Json) => e.type)).toEqual(["created"]);

    const client = await agent(both.json.id, await srv.token([ws]));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["beta__echo"]);
    await client.close();
  }, 30_000);
});

describe("POST /api/workspaces/{workspaceId}/toolsets: bad input changes nothing", () => {
  type Ctx = Awaited<ReturnType<typeof workspace>>;
  async function attempt(body: (c: Ctx) => Json, setup?: (c: Ctx) => Promise<void>) {
    const ctx = await workspace();
    await setup?.(ctx);
    const res = await post(ctx.admin, `/api/workspaces/${ctx.ws}/toolsets`, body(ctx));
    const listed = await raw(srv.baseUrl, "GET", `/api/workspaces/${ctx.ws}/toolsets`, { token: ctx.admin });
    expect(listed.json.data).toEqual([]);
    return { res, ...ctx };
  }

  test("when two tools would get the same name, then 409 naming both", async () => {
    const { res } = await attempt((c) => ({ name: "x", tools: [{ serverId: c.alpha, tool: "echo", name: "same" }, { serverId: c.beta, tool: "echo", name: "same" }] }));
    expect(res.status, res.text).toBe(409);
    expect(res.json.detail).toMatch(/both be served as 'same': \/tools\/0 \(echo of mcp_\w+\) and \/tools\/1 \(echo of mcp_\w+\)/);
  });

  test("when an override name equals another tool's workspace name, then 409 too", async () => {
    const { res } = await attempt((c) => ({ name: "x", tools: [{ serverId: c.alpha, tool: "echo" }, { serverId: c.beta, tool: "echo", name: "alpha__echo" }] }));
    expect(res.status, res.text).toBe(409);
  });

  test("when a tool is not offered by its server, then 400 naming the entry", async () => {
    const { res } = await attempt((c) => ({ name: "x", tools: [{ serverId: c.alpha, tool: "echo" }, { serverId: c.beta, tool: "no_such_tool" }] }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/tools/1/tool", message: "is not a tool MCP server 'Beta' offers: no_such_tool" }]);
  });

  test("when a tool is left out by allowedTools, then it is not offered: 400", async () => {
    const { res } = await attempt((c) => ({ name: "x", tools: [{ serverId: c.alpha, tool: "secret_tool" }] }), async (c) => {
      expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${c.alpha}`, { token: c.admin, body: JSON.stringify({ allowedTools: ["echo"] }) })).status).toBe(200);
    });
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors[0].path).toBe("/tools/0/tool");
  });

  test("when a server is of another workspace, then 400 naming the entry", async () => {
    const elsewhere = await workspace();
    const { res } = await attempt(() => ({ name: "x", tools: [{ serverId: elsewhere.alpha, tool: "echo" }] }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/tools/0/serverId", message: expect.stringContaining(`is not an MCP server of workspace`) }]);
  });

  test.each([
    ["an override name that is not a valid MCP tool name", { name: "has space" }, "/tools/0/name", "must be a valid MCP tool name"],
    ["an override name of 129 characters", { name: "n".repeat(129) }, "/tools/0/name", "must be a valid MCP tool name"],
  ])("when %s, then 400", async (_n, override, path, message) => {
    const { res } = await attempt((c) => ({ name: "x", tools: [{ serverId: c.alpha, tool: "echo", ...override }] }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([{ path, message: expect.stringContaining(message) }]);
  });

  test("when the name or description holds a NUL character (which PostgreSQL cannot store), then 400 naming it, on create and on PATCH", async () => {
    const { res, ws, admin } = await attempt(() => ({ name: "a\u0000b", description: "c\u0000d", tools: [] }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([
      { path: "/name", message: "must not contain NUL characters" },
      { path: "/description", message: "must not contain NUL characters" },
    ]);
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Keep", tools: [] });
    const patched = await raw(srv.baseUrl, "PATCH", `/api/toolsets/${made.json.id}`, { token: admin, body: JSON.stringify({ description: "\u0000" }) });
    expect(patched.status, patched.text).toBe(400);
    expect((await raw(srv.baseUrl, "GET", `/api/toolsets/${made.json.id}`, { token: admin })).headers.get("etag")).toBe('"v1"');
  });

  test("when the same tool is listed twice, then 400 naming both entries", async () => {
    const { res } = await attempt((c) => ({ name: "x", tools: [{ serverId: c.alpha, tool: "echo" }, { serverId: c.alpha, tool: "echo", name: "again" }] }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/tools/1", message: expect.stringContaining("names the same tool as /tools/0") }]);
  });

  test("when there are more than 500 tools, then 400", async () => {
    const { res } = await attempt((c) => ({ name: "x", tools: Array.from({ length: 501 }, (_, i) => ({ serverId: c.alpha, tool: `t${i}` })) }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/tools", message: expect.stringContaining("500") }]);
  });

  test("when a PATCH brings a duplicate name or an unknown tool, then 409 or 400 and the toolset is unchanged", async () => {
    const { ws, admin, alpha, beta } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Keep", tools: [{ serverId: alpha, tool: "echo" }] });
    const dup = await raw(srv.baseUrl, "PATCH", `/api/toolsets/${made.json.id}`, { token: admin, body: JSON.stringify({ tools: [{ serverId: alpha, tool: "echo" }, { serverId: beta, tool: "echo", name: "alpha__echo" }] }) });
    expect(dup.status, dup.text).toBe(409);
    const bad = await raw(srv.baseUrl, "PATCH", `/api/toolsets/${made.json.id}`, { token: admin, body: JSON.stringify({ tools: [{ serverId: beta, tool: "nope" }] }) });
    expect(bad.status, bad.text).toBe(400);
    const now = await raw(srv.baseUrl, "GET", `/api/toolsets/${made.json.id}`, { token: admin });
    expect(now.headers.get("etag")).toBe('"v1"');
    expect(now.json.tools).toEqual([{ serverId: alpha, tool: "echo", name: null, description: null, exposedName: "alpha__echo" }]);
  });
});

describe("toolset operations: the documented refusals", () => {
  test("when there is no token, then every toolset operation answers 401", async () => {
    const id = "tls_01JDQ4N8ZK3V7W0XG5T2H9RBCE";
    for (const [method, path, body] of [
      ["POST", "/api/workspaces/ws_x/toolsets", JSON.stringify({ name: "x", tools: [] })],
      ["GET", "/api/workspaces/ws_x/toolsets", undefined],
      ["GET", `/api/toolsets/${id}`, undefined],
      ["PATCH", `/api/toolsets/${id}`, "{}"],
      ["DELETE", `/api/toolsets/${id}`, undefined],
      ["GET", `/api/toolsets/${id}/events`, undefined],
      ["POST", `/api/toolsets/${id}/mcp`, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })],
    ] as const) {
      expect((await raw(srv.baseUrl, method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
  });

  test("when an id, cursor or body is malformed, then 400 naming it; when the body is not JSON or too large, then 415 or 413", async () => {
    const { ws, admin, alpha } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "x", tools: [{ serverId: alpha, tool: "echo" }] });
    const id = made.json.id as string;
    for (const [method, path, body, where] of [
      ["GET", `/api/workspaces/${ws}/toolsets?cursor=forged`, undefined, "/query/cursor"],
      ["GET", "/api/toolsets/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE", undefined, "/params/toolsetId"],
      ["DELETE", "/api/toolsets/nope", undefined, "/params/toolsetId"],
      ["GET", `/api/toolsets/${id}/events?cursor=forged`, undefined, "/query/cursor"],
      ["PATCH", `/api/toolsets/${id}`, JSON.stringify({ name: "" }), "/name"],
      ["POST", `/api/workspaces/${ws}/toolsets`, JSON.stringify({ name: "x" }), "/tools"],
    ] as const) {
      const res = await raw(srv.baseUrl, method, path, { token: admin, body });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.json.errors.map((e: Json) => e.path), `${method} ${path}`).toContain(where);
    }
    const big = JSON.stringify({ name: "x", tools: [], description: "d".repeat(1024 * 1024 + 10) });
    for (const [method, path] of [
      ["POST", `/api/workspaces/${ws}/toolsets`],
      ["PATCH", `/api/toolsets/${id}`],
      ["POST", `/api/toolsets/${id}/mcp`],
    ] as const) {
      expect((await raw(srv.baseUrl, method, path, { token: admin, body: "name=x", contentType: "application/x-www-form-urlencoded" })).status, `${method} ${path}`).toBe(415);
      expect((await raw(srv.baseUrl, method, path, { token: admin, body: big })).status, `${method} ${path}`).toBe(413);
    }
    expect((await raw(srv.baseUrl, "GET", `/api/toolsets/${id}`, { token: admin })).json).toMatchObject({ name: "x", description: null });
  });

  test("on the MCP endpoint: a body that is not JSON-RPC is 400, an Accept without event streams 406, a notification 202", async () => {
    const { ws, admin, alpha } = await workspace();
    const made = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "x", tools: [{ serverId: alpha, tool: "echo" }] });
    const path = `${srv.baseUrl}/api/toolsets/${made.json.id}/mcp`;
    const send = (body: unknown, accept = "application/json, text/event-stream") =>
      fetch(path, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", accept, "mcp-protocol-version": "2026-07-28" }, body: JSON.stringify(body) });
    const bad = await send({ hello: "world" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Json).detail).toMatch(/not a JSON-RPC 2.0 message/);
    expect((await send({ jsonrpc: "2.0", id: 1, method: "tools/list" }, "application/json")).status).toBe(406);
    expect((await send({ jsonrpc: "2.0", method: "notifications/initialized" })).status).toBe(202);
  });
});

describe("npm run -s token -- create --toolset", () => {
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "scripts/token.ts", ...args],
        { cwd: process.cwd(), env: { PATH: process.env.PATH ?? "", DATABASE_URL: srv.databaseUrl, MCP_API_ENCRYPTION_KEY: srv.config.encryptionKey ?? "" }, encoding: "utf8" },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
      );
    });

  test("when a token is minted with --toolset, then it is a gateway token limited to it, `token list` shows the limit, and a toolset of another workspace is refused", async () => {
    const { ws, admin, alpha } = await workspace();
    const one = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "One", tools: [{ serverId: alpha, tool: "echo" }] });
    const two = await post(admin, `/api/workspaces/${ws}/toolsets`, { name: "Two", tools: [] });
    const out = await cli(["create", "--user", "usr_cli", "--workspace", ws, "--toolset", one.json.id, "--toolset", two.json.id]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain(`(scope gateway, limited to toolsets ${one.json.id}, ${two.json.id})`);
    const limited = out.stdout.trim();
    const client = await agent(one.json.id, limited);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["alpha__echo"]);
    await client.close();
    expect((await mcpPost(`/api/workspaces/${ws}/mcp`, limited)).status).toBe(403);

    const line = (await cli(["list"])).stdout.split("\n").find((l) => l.includes(ws) && l.includes("usr_cli"))!;
    expect(line.split("\t").at(-1)).toBe(`${one.json.id},${two.json.id}`);

    const refused = await cli(["create", "--user", "usr_cli", "--workspace", uniqueWorkspace("cli"), "--toolset", one.json.id]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`toolset '${one.json.id}' is not a toolset of the token's workspaces`);
  }, 60_000);
});
