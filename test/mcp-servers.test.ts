import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { McpServerCreate } from "../client/index.js";
import { openDatabase } from "../server/data/db.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
// connectorId names a connector of the catalog (issue 14): one without inputs beyond an optional region.
const CONNECTOR = "io.github.acme/test-connector";
beforeAll(async () => {
  srv = await startServer();
  await srv.services.connectors.importDocuments([
    {
      label: CONNECTOR,
      document: {
        name: CONNECTOR,
        description: "A connector for the record tests.",
        version: "1.0.0",
        remotes: [{ type: "streamable-http", url: "https://mcp.example.com/mcp", variables: { region: { default: "eu" } } }],
      },
    },
  ]);
});
afterAll(async () => {
  await srv?.stop();
});

async function workspace(label = "ws") {
  const ws = uniqueWorkspace(label);
  const token = await srv.token([ws]);
  return { ws, token, api: srv.client(token) };
}

function body(ws: string, extra: Partial<McpServerCreate> = {}): McpServerCreate {
  return { workspaceId: ws, name: `server ${Math.random().toString(36).slice(2, 8)}`, url: "https://mcp.example.com/mcp", ...extra };
}

describe("POST /api/mcp-servers", () => {
  test("when the body is valid, then 201 with Location, defaults and null for unset fields", async () => {
    const { ws, api } = await workspace();
    const { data, error, response } = await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name: "GitHub", url: "https://mcp.example.com/mcp" } });
    expect(error).toBeUndefined();
    expect(response.status).toBe(201);
    expect(data!.id).toMatch(/^mcp_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(response.headers.get("location")).toBe(`/api/mcp-servers/${data!.id}`);
    expect(data).toMatchObject({
      workspaceId: ws,
      name: "GitHub",
      authType: "none",
      hasApiKey: false,
      hasOauthClientSecret: false,
      oauthClientId: null,
      oauthTokenEndpoint: null,
      oauthAuthorizationEndpoint: null,
      oauthScopes: null,
      oauthExpiresAt: null,
      headers: {},
      connectorId: null,
      connectorConfig: null,
      connectorStatus: "",
      createdBy: "usr_test",
    });
    expect(new Date(data!.createdAt).toISOString()).toBe(data!.createdAt);
    expect(data!.updatedAt).toBe(data!.createdAt);
  });

  test("when an api_key server is created, then the key is stored but never returned", async () => {
    const { ws, api } = await workspace();
    const { data } = await api.POST("/api/mcp-servers", { body: body(ws, { authType: "api_key", apiKey: "sk_never_returned_1" }) });
    expect(data!.hasApiKey).toBe(true);
    expect(JSON.stringify(data)).not.toContain("sk_never_returned_1");
    expect(data).not.toHaveProperty("apiKey");
  });

  test("when an oauth server is created, then its client fields are kept and the secret hidden", async () => {
    const { ws, api } = await workspace();
    const { data, response } = await api.POST("/api/mcp-servers", {
      body: body(ws, {
        authType: "oauth",
        oauthClientId: "client-1",
        oauthClientSecret: "oauth_secret_hidden",
        oauthTokenEndpoint: "https://auth.example.com/token",
        oauthAuthorizationEndpoint: "https://auth.example.com/authorize",
        oauthScopes: "read write",
        connectorConfig: { repos: ["a/b"] },
        headers: { "X-Team": "platform" },
      }),
    });
    expect(response.status).toBe(201);
    expect(data).toMatchObject({
      authType: "oauth",
      oauthClientId: "client-1",
      hasOauthClientSecret: true,
      oauthTokenEndpoint: "https://auth.example.com/token",
      oauthAuthorizationEndpoint: "https://auth.example.com/authorize",
      oauthScopes: "read write",
      connectorConfig: { repos: ["a/b"] },
      headers: { "X-Team": "platform" },
    });
    expect(JSON.stringify(data)).not.toContain("oauth_secret_hidden");
  });

  test.each([
    ["an unknown field", { apikey: "x" }, "/apikey", "is not a known field"],
    ["a missing name", { name: undefined }, "/name", "is required"],
    ["an empty name", { name: "" }, "/name", ""],
    ["a name over 100 characters", { name: "x".repeat(101) }, "/name", ""],
    ["a whitespace-only name", { name: "   " }, "/name", ""],
    ["a numeric name", { name: 123 }, "/name", "must be a string"],
    ["a null workspaceId", { workspaceId: null }, "/workspaceId", ""],
    ["a non-http url", { url: "ftp://example.com/mcp" }, "/url", ""],
    ["a relative url", { url: "/mcp" }, "/url", ""],
    ["a url with credentials", { url: "https://user:pw@example.com/mcp" }, "/url", "must not carry credentials"],
    ["an unknown authType", { authType: "basic" }, "/authType", ""],
    ["api_key without apiKey", { authType: "api_key" }, "/apiKey", "is required when authType is api_key"],
    ["an apiKey with authType none", { apiKey: "k" }, "/apiKey", "only accepted when authType is api_key"],
    ["an unknown oauthGrantType", { authType: "oauth", oauthGrantType: "password" }, "/oauthGrantType", ""],
    ["oauth fields with authType none", { oauthClientId: "c" }, "/oauthClientId", "only accepted when authType is oauth"],
    ["a Host header", { headers: { Host: "evil.example.com" } }, "/headers/Host", "cannot be set"],
    ["a Transfer-Encoding header", { headers: { "transfer-encoding": "chunked" } }, "/headers/transfer-encoding", "cannot be set"],
    ["an Mcp-Session-Id header", { headers: { "Mcp-Session-Id": "abc" } }, "/headers/Mcp-Session-Id", "cannot be set"],
    ["a header value with CR/LF", { headers: { "X-A": "a\r\nX-Injected: 1" } }, "/headers/X-A", ""],
    ["an invalid header name", { headers: { "Bad Name": "x" } }, "/headers", ""],
    ["Authorization with api_key", { authType: "api_key", apiKey: "k", headers: { Authorization: "Bearer x" } }, "/headers/Authorization", "cannot be set when authType is api_key"],
    ["a connectorConfig over 16 KiB", { connectorConfig: { blob: "x".repeat(17 * 1024) } }, "/connectorConfig", "at most 16 KiB"],
    ["a connectorConfig that is not an object", { connectorConfig: [1, 2] }, "/connectorConfig", ""],
    ["a NUL character in a text field", { connectorId: "a\u0000b" }, "/connectorId", "must not contain the NUL character"],
    ["a workspaceId with spaces", { workspaceId: "ws acme" }, "/workspaceId", ""],
  ])("when the body has %s, then 400 naming the field and nothing is created", async (_label, extra, path, message) => {
    const { ws, token, api } = await workspace();
    const payload: Record<string, unknown> = { ...body(ws), ...extra };
    for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(payload) });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ type: "/problems/validation-error", status: 400 });
    const match = res.json.errors.find((e: { path: string }) => e.path === path);
    expect(match, JSON.stringify(res.json.errors)).toBeDefined();
    expect(match.message).toContain(message);
    const list = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } });
    expect(list.data!.data).toHaveLength(0);
  });

  test("when a name of 100 characters grows when lower-cased (İ), then it is still accepted and unique", async () => {
    const { ws, api } = await workspace();
    const name = "İ".repeat(100);
    expect((await api.POST("/api/mcp-servers", { body: body(ws, { name }) })).response.status).toBe(201);
    expect((await api.POST("/api/mcp-servers", { body: body(ws, { name }) })).response.status).toBe(409);
  });

  test("when Authorization is a custom header on an authType none server, then it is accepted", async () => {
    const { ws, api } = await workspace();
    const { response, data } = await api.POST("/api/mcp-servers", { body: body(ws, { headers: { Authorization: "Token abc" } }) });
    expect(response.status).toBe(201);
    expect(data!.headers).toEqual({ Authorization: "Token abc" });
  });

  test("when the name is taken in the workspace (in any letter case), then 409 and nothing is created", async () => {
    const { ws, api } = await workspace();
    await api.POST("/api/mcp-servers", { body: body(ws, { name: "Linear" }) });
    const { error, response } = await api.POST("/api/mcp-servers", { body: body(ws, { name: "linear" }) });
    expect(response.status).toBe(409);
    expect(error).toMatchObject({ type: "/problems/conflict", status: 409 });
    const list = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } });
    expect(list.data!.data.map((s) => s.name)).toEqual(["Linear"]);
  });

  test("when the same name is used in another workspace, then it is allowed", async () => {
    const a = await workspace();
    const b = await workspace();
    expect((await a.api.POST("/api/mcp-servers", { body: body(a.ws, { name: "Shared" }) })).response.status).toBe(201);
    expect((await b.api.POST("/api/mcp-servers", { body: body(b.ws, { name: "Shared" }) })).response.status).toBe(201);
  });

  test("when 20 creates with one name race, then exactly one is 201 and the rest 409", async () => {
    const { ws, api } = await workspace();
    const results = await Promise.all(Array.from({ length: 20 }, () => api.POST("/api/mcp-servers", { body: body(ws, { name: "Race" }) })));
    const statuses = results.map((r) => r.response.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
  });

  test("when the workspace is not covered by the token, then 403", async () => {
    const { api } = await workspace();
    const { error, response } = await api.POST("/api/mcp-servers", { body: body(uniqueWorkspace("other")) });
    expect(response.status).toBe(403);
    expect(error).toMatchObject({ type: "/problems/forbidden", status: 403 });
  });

  test("when the body is not valid JSON, then 400", async () => {
    const { token } = await workspace();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: '{"workspaceId": ' });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ status: 400, detail: "The request body is not valid JSON." });
  });

  test("when the body is JSON but not an object, then 400", async () => {
    const { token } = await workspace();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: "[1,2]" });
    expect(res.status).toBe(400);
  });

  test("when the content type is not JSON, then 415", async () => {
    const { ws, token } = await workspace();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(body(ws)), contentType: "text/plain" });
    expect(res.status).toBe(415);
    expect(res.json).toMatchObject({ type: "/problems/unsupported-media-type", status: 415 });
  });

  test("when the body is over 1 MiB, then 413", async () => {
    const { ws, token } = await workspace();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
      token,
      body: JSON.stringify({ ...body(ws), connectorConfig: { blob: "x".repeat(1024 * 1024 + 10) } }),
    });
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({ type: "/problems/payload-too-large", status: 413 });
  });
});

describe("authentication", () => {
  test.each([
    ["no Authorization header", undefined],
    ["a non-Bearer scheme", "Basic dXNlcjpwYXNz"],
    ["a malformed token", "Bearer not-a-token"],
    ["an unknown token", `Bearer mcpk_${"A".repeat(43)}`],
  ])("when the request has %s, then 401 with WWW-Authenticate: Bearer", async (_label, authorization) => {
    const res = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=ws_x`, { headers: authorization ? { authorization } : {} });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(res.json).toMatchObject({ type: "/problems/unauthorized", status: 401 });
  });

  test("when a token is revoked, then it is refused at once", async () => {
    const ws = uniqueWorkspace();
    const { token, record } = await srv.services.tokens.mint({ userId: "usr_rev", workspaces: [ws] });
    const api = srv.client(token);
    expect((await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } })).response.status).toBe(200);
    await srv.services.tokens.revoke(record.id);
    const { response } = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } });
    expect(response.status).toBe(401);
  });

  test("every operation needs a token except the health check", async () => {
    const id = "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE";
    for (const [method, path, b] of [
      ["POST", "/api/mcp-servers", "{}"],
      ["GET", `/api/mcp-servers/${id}`, undefined],
      ["PATCH", `/api/mcp-servers/${id}`, "{}"],
      ["DELETE", `/api/mcp-servers/${id}`, undefined],
    ] as const) {
      expect((await raw(srv.baseUrl, method, path, { body: b })).status, `${method} ${path}`).toBe(401);
    }
    expect((await raw(srv.baseUrl, "GET", "/healthz")).status).toBe(200);
  });
});

describe("GET /api/mcp-servers/{id}", () => {
  test("when the server exists, then 200 with the same record", async () => {
    const { ws, api } = await workspace();
    const created = (await api.POST("/api/mcp-servers", { body: body(ws) })).data!;
    const { data, response } = await api.GET("/api/mcp-servers/{id}", { params: { path: { id: created.id } } });
    expect(response.status).toBe(200);
    expect(data).toEqual(created);
  });

  test("when another connection to the store (another process) changes the record, then the next GET and list show it", async () => {
    const { ws, api } = await workspace();
    const created = (await api.POST("/api/mcp-servers", { body: body(ws) })).data!;
    // Reads run past Knex (on SQLite, on their own read-only connection): nothing may be kept from the last read.
    expect((await api.GET("/api/mcp-servers/{id}", { params: { path: { id: created.id } } })).data!.name).toBe(created.name);
    const other = openDatabase(srv.databaseUrl);
    try {
      await other.knex("mcp_servers").where({ id: created.id }).update({ name: "renamed elsewhere", version: 2 });
    } finally {
      await other.close();
    }
    const { data, response } = await api.GET("/api/mcp-servers/{id}", { params: { path: { id: created.id } } });
    expect(data!.name).toBe("renamed elsewhere");
    expect(response.headers.get("etag")).toBe('"v2"');
    const list = (await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } })).data!;
    expect(list.data.map((s) => s.name)).toEqual(["renamed elsewhere"]);
  });

  test("when the id is unknown, then 404", async () => {
    const { api } = await workspace();
    const { error, response } = await api.GET("/api/mcp-servers/{id}", { params: { path: { id: "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE" } } });
    expect(response.status).toBe(404);
    expect(error).toMatchObject({ type: "/problems/not-found", status: 404 });
  });

  test("when the id lacks the mcp_ prefix, then 400", async () => {
    const { token } = await workspace();
    const res = await raw(srv.baseUrl, "GET", "/api/mcp-servers/srv_123", { token });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].path).toContain("id");
  });
});

describe("workspace isolation", () => {
  test("when a token reads, changes or deletes another workspace's server, then 404 and the record is untouched", async () => {
    const owner = await workspace("owner");
    const stranger = await workspace("stranger");
    const created = (await owner.api.POST("/api/mcp-servers", { body: body(owner.ws, { name: "Private" }) })).data!;
    const path = { params: { path: { id: created.id } } };
    expect((await stranger.api.GET("/api/mcp-servers/{id}", path)).response.status).toBe(404);
    expect((await stranger.api.PATCH("/api/mcp-servers/{id}", { ...path, body: { name: "Hijacked" } })).response.status).toBe(404);
    expect((await stranger.api.DELETE("/api/mcp-servers/{id}", path)).response.status).toBe(404);
    const list = await stranger.api.GET("/api/mcp-servers", { params: { query: { workspaceId: owner.ws } } });
    expect(list.response.status).toBe(403);
    expect((await owner.api.GET("/api/mcp-servers/{id}", path)).data).toEqual(created);
  });

  test("when a token covers two workspaces, then it acts in both", async () => {
    const a = uniqueWorkspace();
    const b = uniqueWorkspace();
    const api = srv.client(await srv.token([a, b]));
    expect((await api.POST("/api/mcp-servers", { body: body(a) })).response.status).toBe(201);
    expect((await api.POST("/api/mcp-servers", { body: body(b) })).response.status).toBe(201);
  });
});

describe("GET /api/mcp-servers", () => {
  test("when there are more records than a page, then pages follow nextCursor newest first with no gaps or repeats", async () => {
    const { ws, api } = await workspace();
    const ids: string[] = [];
    for (let i = 0; i < 45; i++) ids.push((await api.POST("/api/mcp-servers", { body: body(ws, { name: `s${i}` }) })).data!.id);
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    do {
      const { data, response } = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws, cursor } } });
      expect(response.status).toBe(200);
      sizes.push(data!.data.length);
      seen.push(...data!.data.map((s) => s.id));
      cursor = data!.nextCursor ?? undefined;
    } while (cursor);
    expect(sizes).toEqual([20, 20, 5]);
    expect(seen).toEqual([...ids].reverse());
  });

  test("when limit is given, then pages have that size and the last page has nextCursor null", async () => {
    const { ws, api } = await workspace();
    for (let i = 0; i < 3; i++) await api.POST("/api/mcp-servers", { body: body(ws) });
    const first = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws, limit: 2 } } });
    expect(first.data!.data).toHaveLength(2);
    const second = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws, limit: 2, cursor: first.data!.nextCursor! } } });
    expect(second.data!.data).toHaveLength(1);
    expect(second.data!.nextCursor).toBeNull();
  });

  test("when records hold quotes, escapes, control and non-ASCII characters, numbers and flags, then the page shows each as GET does", async () => {
    const { ws, api } = await workspace();
    const config = { q: 'a"b\\c\u0001\u2028é😀', n: 1.5, big: 12345678901234, none: null, list: [true, false, { deep: "x" }] };
    const made = [
      (await api.POST("/api/mcp-servers", { body: body(ws, { name: "Ünïcødé ☃ \"quoted\"", connectorConfig: config, headers: { "X-Q": 'say "hi" \\ é' } }) })).data!,
      (await api.POST("/api/mcp-servers", { body: body(ws, { authType: "api_key", apiKey: "sk_secret", enabled: false, toolPinning: true, allowedTools: ["a", "b\"c"], secretHeaders: { "X-Secret": "v" } }) })).data!,
      (await api.POST("/api/mcp-servers", { body: body(ws) })).data!,
    ];
    const { data } = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } });
    const one = async (id: string) => (await api.GET("/api/mcp-servers/{id}", { params: { path: { id } } })).data;
    expect(data!.data).toEqual(await Promise.all([...made].reverse().map((s) => one(s.id))));
    expect(data!.data[2]).toMatchObject({ connectorConfig: config, headers: { "X-Q": 'say "hi" \\ é' } });
    expect(data!.data[1]).toMatchObject({ hasApiKey: true, enabled: false, toolPinning: true, allowedTools: ["a", "b\"c"], secretHeaderNames: ["X-Secret"] });
  });

  test("when the workspace is empty, then an empty page", async () => {
    const { ws, api } = await workspace();
    const { data } = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } });
    expect(data).toEqual({ data: [], nextCursor: null });
  });

  test.each([
    ["limit=0", "limit=0"],
    ["limit=101", "limit=101"],
    ["limit=abc", "limit=abc"],
    ["a cursor the server did not issue", "cursor=bm90LWEtY3Vyc29y.AAAA"],
    ["a garbage cursor", "cursor=%%%"],
    ["an unknown query parameter", "sort=name"],
  ])("when the query has %s, then 400", async (_label, query) => {
    const { ws, token } = await workspace();
    const res = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}&${query}`, { token });
    expect(res.status).toBe(400);
    expect(res.json.type).toBe("/problems/validation-error");
  });

  test("when workspaceId is missing, then 400", async () => {
    const { token } = await workspace();
    expect((await raw(srv.baseUrl, "GET", "/api/mcp-servers", { token })).status).toBe(400);
  });

  test("when a cursor from another workspace is replayed, then 400", async () => {
    const a = uniqueWorkspace();
    const b = uniqueWorkspace();
    const api = srv.client(await srv.token([a, b]));
    for (let i = 0; i < 2; i++) await api.POST("/api/mcp-servers", { body: body(a) });
    const page = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: a, limit: 1 } } });
    const res = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: b, cursor: page.data!.nextCursor! } } });
    expect(res.response.status).toBe(400);
  });
});

describe("PATCH /api/mcp-servers/{id}", () => {
  async function created(extra: Partial<McpServerCreate> = {}) {
    const w = await workspace();
    const server = (await w.api.POST("/api/mcp-servers", { body: body(w.ws, extra) })).data!;
    return { ...w, server, path: { params: { path: { id: server.id } } } };
  }

  test("when fields are given, then they replace and the rest is kept", async () => {
    const { api, server, path } = await created({ headers: { "X-A": "1" }, connectorId: CONNECTOR });
    const { data, response } = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { name: "Renamed", url: "http://other.example.com/mcp" } });
    expect(response.status).toBe(200);
    expect(data).toMatchObject({ name: "Renamed", url: "http://other.example.com/mcp", headers: { "X-A": "1" }, connectorId: CONNECTOR, createdAt: server.createdAt });
    expect(data!.updatedAt >= server.updatedAt).toBe(true);
    expect((await api.GET("/api/mcp-servers/{id}", path)).data).toEqual(data);
  });

  test("when the body is {}, then 200 and nothing changes", async () => {
    const { api, server, path } = await created();
    const { data, response } = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: {} });
    expect(response.status).toBe(200);
    expect(data).toEqual(server);
  });

  test("when the body is empty (not even {}), then 400 naming /body and nothing changes", async () => {
    const { api, server, path, token } = await created();
    const res = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${server.id}`, { token, body: "" });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/body", message: "is required: send a JSON object" }]);
    expect((await api.GET("/api/mcp-servers/{id}", path)).data).toEqual(server);
  });

  test("when an optional field is null, then it is cleared", async () => {
    const { api, path } = await created({ connectorId: CONNECTOR, connectorConfig: { region: "us" }, headers: { "X-A": "1" } });
    const { data } = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { connectorId: null, connectorConfig: null, headers: null } });
    expect(data).toMatchObject({ connectorId: null, connectorConfig: null, headers: {} });
  });

  test("when the apiKey is left out, then the stored key is kept; when null, it is cleared with authType none", async () => {
    const { api, path } = await created({ authType: "api_key", apiKey: "sk_keep_me" });
    expect((await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { name: "still has key" } })).data!.hasApiKey).toBe(true);
    const cleared = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { apiKey: null } });
    expect(cleared.response.status).toBe(400);
    expect(cleared.error!.errors![0]).toMatchObject({ path: "/apiKey", message: "cannot be cleared while authType is api_key" });
    const none = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { authType: "none", apiKey: null } });
    expect(none.data).toMatchObject({ authType: "none", hasApiKey: false });
  });

  test("when authType switches away from oauth, then its credentials are dropped", async () => {
    const { api, path } = await created({
      authType: "oauth",
      oauthClientId: "c",
      oauthClientSecret: "s3cret",
      oauthTokenEndpoint: "https://a.example.com/token",
      oauthScopes: "read",
    });
    const { data } = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { authType: "api_key", apiKey: "k2" } });
    expect(data).toMatchObject({ authType: "api_key", hasApiKey: true, hasOauthClientSecret: false, oauthClientId: null, oauthTokenEndpoint: null, oauthScopes: null });
  });

  test("when authType switches to api_key without a key, then 400 and nothing changes", async () => {
    const { api, server, path } = await created();
    const { response, error } = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { authType: "api_key", name: "changed" } });
    expect(response.status).toBe(400);
    expect(error!.errors).toContainEqual({ path: "/apiKey", message: "is required when authType is api_key" });
    expect((await api.GET("/api/mcp-servers/{id}", path)).data).toEqual(server);
  });

  test("when the new name is taken, then 409 and nothing changes", async () => {
    const { ws, api, server, path } = await created();
    await api.POST("/api/mcp-servers", { body: body(ws, { name: "Taken" }) });
    const { response } = await api.PATCH("/api/mcp-servers/{id}", { ...path, body: { name: "TAKEN", connectorId: CONNECTOR } });
    expect(response.status).toBe(409);
    expect((await api.GET("/api/mcp-servers/{id}", path)).data).toEqual(server);
  });

  test.each([
    ["id", { id: "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE" }, "/id"],
    ["workspaceId", { workspaceId: "ws_other" }, "/workspaceId"],
    ["createdBy", { createdBy: "usr_evil" }, "/createdBy"],
    ["connectorStatus", { connectorStatus: "connected" }, "/connectorStatus"],
    ["a null name", { name: null }, "/name"],
    ["a null url", { url: null }, "/url"],
    ["a bad url", { url: "javascript:alert(1)" }, "/url"],
  ])("when the body sets %s, then 400 naming it and nothing changes", async (_label, patch, path) => {
    const { token, api, server } = await created();
    const res = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${server.id}`, { token, body: JSON.stringify(patch) });
    expect(res.status).toBe(400);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect((await api.GET("/api/mcp-servers/{id}", { params: { path: { id: server.id } } })).data).toEqual(server);
  });

  test("when the id is unknown, then 404", async () => {
    const { api } = await workspace();
    const { response } = await api.PATCH("/api/mcp-servers/{id}", { params: { path: { id: "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE" } }, body: { name: "x" } });
    expect(response.status).toBe(404);
  });

  test("when the content type is not JSON, then 415; when the body is over 1 MiB, then 413", async () => {
    const { token, server } = await created();
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${server.id}`, { token, body: "name=x", contentType: "application/x-www-form-urlencoded" })).status).toBe(415);
    const big = JSON.stringify({ connectorConfig: { blob: "x".repeat(1024 * 1024 + 10) } });
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${server.id}`, { token, body: big })).status).toBe(413);
  });

  test("when concurrent patches change different fields, then neither is lost", async () => {
    const { api, path } = await created();
    const results = await Promise.all([
      api.PATCH("/api/mcp-servers/{id}", { ...path, body: { connectorId: CONNECTOR } }),
      api.PATCH("/api/mcp-servers/{id}", { ...path, body: { headers: { "X-B": "2" } } }),
      api.PATCH("/api/mcp-servers/{id}", { ...path, body: { oauthScopes: null, name: "renamed-concurrently" } }),
    ]);
    expect(results.map((r) => [r.response.status, r.error])).toEqual([[200, undefined], [200, undefined], [200, undefined]]);
    expect((await api.GET("/api/mcp-servers/{id}", path)).data).toMatchObject({ connectorId: CONNECTOR, headers: { "X-B": "2" }, name: "renamed-concurrently" });
  });
});

describe("DELETE /api/mcp-servers/{id}", () => {
  test("when the server exists, then 204, and afterwards it is gone", async () => {
    const { ws, api } = await workspace();
    const server = (await api.POST("/api/mcp-servers", { body: body(ws, { name: "Doomed" }) })).data!;
    const path = { params: { path: { id: server.id } } };
    const { response } = await api.DELETE("/api/mcp-servers/{id}", path);
    expect(response.status).toBe(204);
    expect((await api.GET("/api/mcp-servers/{id}", path)).response.status).toBe(404);
    expect((await api.DELETE("/api/mcp-servers/{id}", path)).response.status).toBe(404);
    // The name is free again.
    expect((await api.POST("/api/mcp-servers", { body: body(ws, { name: "Doomed" }) })).response.status).toBe(201);
  });

  test("when the id is malformed, then 400", async () => {
    const { token } = await workspace();
    expect((await raw(srv.baseUrl, "DELETE", "/api/mcp-servers/nope", { token })).status).toBe(400);
  });
});

describe("errors outside operations", () => {
  test("when the route is unknown, then 404 problem+json", async () => {
    const res = await raw(srv.baseUrl, "GET", "/api/nothing-here");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  });

  test("when the method is not allowed, then 405 problem+json", async () => {
    const { token } = await workspace();
    const res = await raw(srv.baseUrl, "PUT", "/api/mcp-servers", { token, body: "{}" });
    expect(res.status).toBe(405);
    expect(res.json.status).toBe(405);
  });

  test("every response carries an X-Request-Id, and a well-formed one is echoed", async () => {
    const res = await raw(srv.baseUrl, "GET", "/healthz", { headers: { "x-request-id": "req-abc.123" } });
    expect(res.headers.get("x-request-id")).toBe("req-abc.123");
    const bad = await raw(srv.baseUrl, "GET", "/healthz", { headers: { "x-request-id": "bad id\u00e9" } });
    expect(bad.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("response headers of GET, create and PATCH", () => {
  // Every header of the answer as the wire carries it (names, order, values), with the
  // per-request parts (date, request id, ids, the rate limit window) masked: what the HTTP
  // stack adds or drops is a change of the answer, whatever the handler returns.
  function wire(method: string, path: string, token: string, body?: string): Promise<{ status: number; headers: [string, string][]; body: string }> {
    const url = new URL(srv.baseUrl + path);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const pairs: [string, string][] = [];
            for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]]);
            resolve({ status: res.statusCode!, headers: pairs, body: text });
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }
  const mask = (headers: [string, string][], body: string, id: string) =>
    headers.map(([name, value]): [string, string] => {
      if (name === "Date") return [name, /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/.test(value) ? "<date>" : value];
      if (name === "X-Request-Id") return [name, /^[0-9a-f-]{36}$/.test(value) ? "<uuid>" : value];
      if (name === "RateLimit") return [name, value.replace(/r=\d+;t=\d+$/, "r=<n>;t=<s>")];
      if (name === "RateLimit-Policy") return [name, value.replace(/q=\d+;/, "q=<limit>;")];
      if (name === "Content-Length") return [name, value === String(Buffer.byteLength(body)) ? "<length of the body>" : value];
      return [name, value.replace(id, "<id>")];
    });

  test("when a record is created, read and patched, then each answer carries exactly its headers", async () => {
    const { ws, token } = await workspace("headers");
    const created = await wire("POST", "/api/mcp-servers", token, JSON.stringify(body(ws)));
    expect(created.status).toBe(201);
    const id = JSON.parse(created.body).id as string;
    const common: [string, string][] = [
      ["X-Request-Id", "<uuid>"],
      ["RateLimit-Policy", '"default";q=<limit>;w=60'],
      ["RateLimit", '"default";r=<n>;t=<s>'],
    ];
    const tail: [string, string][] = [
      ["Content-Type", "application/json; charset=utf-8"],
      ["Content-Length", "<length of the body>"],
      ["Date", "<date>"],
      ["Connection", "keep-alive"],
      ["Keep-Alive", "timeout=5"],
    ];
    expect(mask(created.headers, created.body, id)).toEqual([...common, ["Location", "/api/mcp-servers/<id>"], ["ETag", '"v1"'], ...tail]);
    const got = await wire("GET", `/api/mcp-servers/${id}`, token);
    expect(got.status).toBe(200);
    expect(got.body).toBe(created.body);
    expect(mask(got.headers, got.body, id)).toEqual([...common, ["ETag", '"v1"'], ...tail]);
    const patched = await wire("PATCH", `/api/mcp-servers/${id}`, token, JSON.stringify({ name: "renamed" }));
    expect(patched.status).toBe(200);
    expect(JSON.parse(patched.body).name).toBe("renamed");
    expect(mask(patched.headers, patched.body, id)).toEqual([...common, ["ETag", '"v2"'], ...tail]);
  });
});
