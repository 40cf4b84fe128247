import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { McpServerCreate } from "../client/index.js";
import { closedPortUrl, startSilentPeer, startSsePeer, startStreamablePeer, startWebPage, type Peer } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const API_KEY = "sk_conn_SECRET_7f3a9b";
let srv: TestServer;
const peers: Peer[] = [];

beforeAll(async () => {
  // Loopback peers need the guard lifted; the guard itself is tested below on a second server.
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "1500" } });
});
afterAll(async () => {
  await Promise.all(peers.map((p) => p.close()));
  await srv?.stop();
});

async function peer(p: Promise<Peer>) {
  const started = await p;
  peers.push(started);
  return started;
}

async function register(url: string, extra: Partial<McpServerCreate> = {}) {
  const ws = uniqueWorkspace();
  const token = await srv.token([ws]);
  const api = srv.client(token);
  const { data } = await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name: "peer", url, ...extra } });
  return { api, token, id: data!.id, path: { params: { path: { id: data!.id } } } };
}

describe("POST /api/mcp-servers/{id}/test", () => {
  test("when the server is an open Streamable HTTP MCP server, then connected with its info, and the record says so", async () => {
    const p = await peer(startStreamablePeer());
    const { api, path } = await register(p.url);
    const { data, response } = await api.POST("/api/mcp-servers/{id}/test", path);
    expect(response.status).toBe(200);
    expect(data).toMatchObject({
      connectorStatus: "connected",
      serverInfo: { name: "streamable-peer", version: "1.2.3" },
      toolCount: 2,
      error: null,
    });
    expect(data!.protocolVersion).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(data!.capabilities).toHaveProperty("tools");
    expect(data!.latencyMs).toBeGreaterThanOrEqual(0);
    const record = (await api.GET("/api/mcp-servers/{id}", path)).data!;
    expect(record).toMatchObject({ connectorStatus: "connected", lastCheckedAt: data!.checkedAt, lastError: null });
  });

  test("when the server demands the API key as a bearer token, then the stored key reaches it and is never echoed", async () => {
    const p = await peer(startStreamablePeer({ bearer: API_KEY }));
    const { api, path } = await register(p.url, { authType: "api_key", apiKey: API_KEY });
    const { data } = await api.POST("/api/mcp-servers/{id}/test", path);
    expect(data!.connectorStatus).toBe("connected");
    expect(p.requests.some((h) => h.authorization === `Bearer ${API_KEY}`)).toBe(true);
    expect(JSON.stringify(data)).not.toContain(API_KEY);
  });

  test("when the API key is wrong, then error class auth with the HTTP status, and neither key appears anywhere", async () => {
    const p = await peer(startStreamablePeer({ bearer: "the-right-key" }));
    const { api, path } = await register(p.url, { authType: "api_key", apiKey: API_KEY });
    const { data } = await api.POST("/api/mcp-servers/{id}/test", path);
    expect(data).toMatchObject({ connectorStatus: "error", error: { class: "auth", httpStatus: 401 }, serverInfo: null, toolCount: null });
    const record = (await api.GET("/api/mcp-servers/{id}", path)).data!;
    expect(record).toMatchObject({ connectorStatus: "error", lastError: { class: "auth", httpStatus: 401 } });
    // The peer echoes the Authorization header in its 401 body; it must not reach the user.
    expect(JSON.stringify(data) + JSON.stringify(record)).not.toContain(API_KEY);
    for (const line of srv.logs) expect(line).not.toContain(API_KEY);
  });

  test("when the server demands a custom header, then the stored header reaches it", async () => {
    const p = await peer(startStreamablePeer({ header: ["X-Tenant", "acme-42"] }));
    const { api, path } = await register(p.url, { headers: { "X-Tenant": "acme-42" } });
    expect((await api.POST("/api/mcp-servers/{id}/test", path)).data!.connectorStatus).toBe("connected");
    expect(p.requests.every((h) => h["x-tenant"] === "acme-42")).toBe(true);
  });

  test("when the header is missing, then error class auth (403)", async () => {
    const p = await peer(startStreamablePeer({ header: ["X-Tenant", "acme-42"] }));
    const { api, path } = await register(p.url);
    expect((await api.POST("/api/mcp-servers/{id}/test", path)).data!.error).toMatchObject({ class: "auth", httpStatus: 403 });
  });

  test("when the server only speaks the legacy HTTP+SSE transport, then the check falls back to it and connects", async () => {
    const p = await peer(startSsePeer());
    const { api, path } = await register(p.url);
    const { data } = await api.POST("/api/mcp-servers/{id}/test", path);
    expect(data).toMatchObject({ connectorStatus: "connected", serverInfo: { name: "sse-peer" }, toolCount: 2 });
    expect(p.requests.some((h) => h.accept?.includes("text/event-stream"))).toBe(true);
  });

  test("when the server accepts and never answers, then error class timeout within the limit", async () => {
    const p = await peer(startSilentPeer());
    const { api, path } = await register(p.url);
    const { data } = await api.POST("/api/mcp-servers/{id}/test", path);
    expect(data).toMatchObject({ connectorStatus: "error", error: { class: "timeout", httpStatus: null } });
    expect(p.requests.length).toBeGreaterThan(0);
  });

  test("when the URL is a plain web page, then error class protocol", async () => {
    const p = await peer(startWebPage());
    const { api, path } = await register(p.url);
    expect((await api.POST("/api/mcp-servers/{id}/test", path)).data!.error).toMatchObject({ class: "protocol" });
  });

  test("when nothing listens on the port, then error class connect", async () => {
    const { api, path } = await register(await closedPortUrl());
    expect((await api.POST("/api/mcp-servers/{id}/test", path)).data!.error).toMatchObject({ class: "connect" });
  });

  test("when the id is unknown or another workspace's, then 404; malformed, then 400", async () => {
    const { api } = await register("http://127.0.0.1:9/mcp");
    const other = await register("http://127.0.0.1:9/mcp");
    expect((await api.POST("/api/mcp-servers/{id}/test", other.path)).response.status).toBe(404);
    expect((await api.POST("/api/mcp-servers/{id}/test", { params: { path: { id: "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE" } } })).response.status).toBe(404);
    expect((await raw(srv.baseUrl, "POST", "/api/mcp-servers/nope/test", { token: other.token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${other.id}/test`)).status).toBe(401);
  });

  test("when a checked server's url, credentials or headers change, then connectorStatus resets to empty", async () => {
    const p = await peer(startStreamablePeer());
    const { api, path } = await register(p.url);
    await api.POST("/api/mcp-servers/{id}/test", path);
    expect((await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { name: "renamed" } })).data!.connectorStatus).toBe("connected");
    expect((await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { headers: { "X-A": "1" } } })).data!.connectorStatus).toBe("");
    await api.POST("/api/mcp-servers/{id}/test", path);
    expect((await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { url: p.url + "?v=2" } })).data!.connectorStatus).toBe("");
    await api.POST("/api/mcp-servers/{id}/test", path);
    expect((await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { authType: "api_key", apiKey: "k" } })).data!.connectorStatus).toBe("");
  });
});

describe("GET /api/mcp-servers/{id}/tools", () => {
  test("when the server is reachable, then every tool with its metadata", async () => {
    const p = await peer(startStreamablePeer());
    const { api, path } = await register(p.url);
    const { data, response } = await api.GET("/api/mcp-servers/{id}/tools", path);
    expect(response.status).toBe(200);
    expect(data!.data).toEqual([
      { name: "echo", title: "Echo", description: "Says it back.", inputSchema: expect.objectContaining({ type: "object" }), annotations: { readOnlyHint: true } },
      { name: "add", title: null, description: "Adds numbers.", inputSchema: expect.objectContaining({ type: "object" }), annotations: null },
    ]);
    expect((await api.GET("/api/mcp-servers/{id}", path)).data!.connectorStatus).toBe("connected");
  });

  test("when tools/list is paginated, then every page is followed", async () => {
    const p = await peer(startStreamablePeer({ paged: true }));
    const { api, path } = await register(p.url);
    expect((await api.GET("/api/mcp-servers/{id}/tools", path)).data!.data.map((t) => t.name)).toEqual(["tool_0", "tool_1", "tool_2"]);
  });

  test("when the server refuses, then 502 problem with the error class, and the record shows the error", async () => {
    const p = await peer(startStreamablePeer({ bearer: "nope" }));
    const { api, path } = await register(p.url, { authType: "api_key", apiKey: API_KEY });
    const { error, response } = await api.GET("/api/mcp-servers/{id}/tools", path);
    expect(response.status).toBe(502);
    expect(error).toMatchObject({ status: 502, type: "/problems/upstream-error", connectionError: { class: "auth", httpStatus: 401 } });
    expect(JSON.stringify(error)).not.toContain(API_KEY);
    expect((await api.GET("/api/mcp-servers/{id}", path)).data!.connectorStatus).toBe("error");
  });

  test("when the server never answers, then 504 problem with class timeout", async () => {
    const p = await peer(startSilentPeer());
    const { api, path } = await register(p.url);
    const { error, response } = await api.GET("/api/mcp-servers/{id}/tools", path);
    expect(response.status).toBe(504);
    expect(error).toMatchObject({ type: "/problems/upstream-timeout", connectionError: { class: "timeout" } });
  });

  test("when the id is unknown, then 404; malformed, then 400; no token, then 401", async () => {
    const { api, token } = await register("http://127.0.0.1:9/mcp");
    expect((await api.GET("/api/mcp-servers/{id}/tools", { params: { path: { id: "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE" } } })).response.status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", "/api/mcp-servers/x/tools", { token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "GET", "/api/mcp-servers/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE/tools")).status).toBe(401);
  });
});

describe("outbound guard, end to end", () => {
  let guarded: TestServer;
  beforeAll(async () => {
    guarded = await startServer({ env: { MCP_API_CONNECT_TIMEOUT_MS: "1500" } });
  });
  afterAll(async () => {
    await guarded?.stop();
  });

  test.each(["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]"])(
    "when a server is registered at %s with the guard on, then blocked and the peer sees no request",
    async (host) => {
      const p = await peer(startStreamablePeer());
      const port = new URL(p.url).port;
      const ws = uniqueWorkspace();
      const api = guarded.client(await guarded.token([ws]));
      const { data: created } = await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name: "internal", url: `http://${host}:${port}/mcp` } });
      const { data } = await api.POST("/api/mcp-servers/{id}/test", { params: { path: { id: created!.id } } });
      expect(data).toMatchObject({ connectorStatus: "error", error: { class: "blocked" } });
      expect(data!.error!.message).toMatch(/refused to connect/);
      const tools = await api.GET("/api/mcp-servers/{id}/tools", { params: { path: { id: created!.id } } });
      expect(tools.response.status).toBe(502);
      expect(p.requests).toHaveLength(0);
    },
  );
});
