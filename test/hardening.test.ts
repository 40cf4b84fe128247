import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLogger } from "../server/logger.js";
import { everySecuredOperation } from "./helpers/operations.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "1000" } });
});
afterAll(async () => {
  await srv?.stop();
});

async function workspace() {
  const ws = uniqueWorkspace();
  const token = await srv.token([ws], "usr_alice");
  return { ws, token, api: srv.client(token) };
}

const bodyFor = (ws: string, name = "idem") => JSON.stringify({ workspaceId: ws, name, url: "https://mcp.example.com/mcp" });

describe("POST /api/mcp-servers with Idempotency-Key", () => {
  test("when a create is retried with the same key and body, then the first 201 is replayed and nothing new is created", async () => {
    const { ws, token, api } = await workspace();
    const headers = { "idempotency-key": "key-1" };
    const first = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws), headers });
    const again = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(JSON.parse(bodyFor(ws))), headers });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect((await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } })).data!.data).toHaveLength(1);
  });

  test("when the same key comes with a different body, then 422 and nothing is created", async () => {
    const { ws, token, api } = await workspace();
    const headers = { "idempotency-key": "key-2" };
    await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws, "a"), headers });
    const other = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws, "b"), headers });
    expect(other.status).toBe(422);
    expect(other.json.type).toBe("/problems/idempotency-key-reused");
    expect((await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } })).data!.data.map((s) => s.name)).toEqual(["a"]);
  });

  test("when 10 requests with one key race, then exactly one record exists", async () => {
    const { ws, token, api } = await workspace();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws), headers: { "idempotency-key": "race" } })),
    );
    expect(results.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    const ids = new Set(results.filter((r) => r.status === 201).map((r) => r.json.id));
    expect(ids.size).toBe(1);
    expect((await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } })).data!.data).toHaveLength(1);
  });

  test("when another token uses the same key, then it is a separate request", async () => {
    const { ws, token } = await workspace();
    const other = await srv.token([ws], "usr_bob");
    const headers = { "idempotency-key": "shared" };
    expect((await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws, "one"), headers })).status).toBe(201);
    expect((await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: other, body: bodyFor(ws, "two"), headers })).status).toBe(201);
  });

  test("when the first attempt failed, then a retry with the same key runs again", async () => {
    const { ws, token } = await workspace();
    const headers = { "idempotency-key": "after-failure" };
    expect((await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(uniqueWorkspace("other")), headers })).status).toBe(403);
    expect((await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws), headers })).status).toBe(201);
  });

  test("when the key is older than 24 hours, then it is forgotten", async () => {
    const { ws, token } = await workspace();
    const headers = { "idempotency-key": "old" };
    await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws, "first"), headers });
    await srv.services.db.knex("idempotency_keys").where({ idem_key: "old" }).update({ created_at: new Date(Date.now() - 25 * 3600_000).toISOString() });
    expect((await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws, "second"), headers })).status).toBe(201);
  });

  test("when the key is malformed, then 400", async () => {
    const { ws, token } = await workspace();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws), headers: { "idempotency-key": "x".repeat(300) } });
    expect(res.status).toBe(400);
  });
});

describe("ETag and If-Match", () => {
  async function created() {
    const w = await workspace();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: w.token, body: bodyFor(w.ws) });
    return { ...w, id: res.json.id as string, etag: res.headers.get("etag")! };
  }

  test("when a record is read and written, then every single-record response carries a strong ETag that changes on every write", async () => {
    const { token, id, etag } = await created();
    expect(etag).toMatch(/^"v\d+"$/);
    const got = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token });
    expect(got.headers.get("etag")).toBe(etag);
    const patched = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"connectorConfig":{"k":"x"}}' });
    expect(patched.headers.get("etag")).not.toBe(etag);
  });

  test("when PATCH sends the current ETag, then 200; a stale one, then 412 and nothing changes", async () => {
    const { token, id, etag } = await created();
    const ok = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"name":"first"}', headers: { "if-match": etag } });
    expect(ok.status).toBe(200);
    const stale = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"name":"second"}', headers: { "if-match": etag } });
    expect(stale.status).toBe(412);
    expect(stale.json.type).toBe("/problems/precondition-failed");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).json.name).toBe("first");
  });

  test.each([
    ["a weak ETag", (e: string) => `W/${e}`],
    ["garbage", () => "nonsense"],
  ])("when If-Match is %s, then 412", async (_label, tag) => {
    const { token, id, etag } = await created();
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: "{}", headers: { "if-match": tag(etag) } })).status).toBe(412);
  });

  test("when If-Match is *, then any version matches", async () => {
    const { token, id } = await created();
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"connectorConfig":{"k":"y"}}', headers: { "if-match": "*" } })).status).toBe(200);
  });

  test("when DELETE sends a stale ETag, then 412 and the record stays; the current one, then 204", async () => {
    const { token, id, etag } = await created();
    const patched = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"connectorConfig":{"k":"z"}}' });
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}`, { token, headers: { "if-match": etag } })).status).toBe(412);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).status).toBe(200);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}`, { token, headers: { "if-match": patched.headers.get("etag")! } })).status).toBe(204);
  });

  test("when two clients patch from the same read, then the second gets 412 instead of losing the first's change", async () => {
    const { token, id, etag } = await created();
    const [a, b] = await Promise.all([
      raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"name":"alice"}', headers: { "if-match": etag } }),
      raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"name":"bob"}', headers: { "if-match": etag } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
  });
});

describe("GET /api/mcp-servers/{id}/events", () => {
  test("when a server is created, changed, checked and deleted, then every step is recorded newest first without secret values", async () => {
    const { ws, token } = await workspace();
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
      token,
      body: JSON.stringify({ workspaceId: ws, name: "audited", url: "http://127.0.0.1:9/mcp", authType: "api_key", apiKey: "sk_AUDIT_secret_1" }),
      headers: { "x-request-id": "req-create-1" },
    });
    const id = created.json.id;
    await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"name":"audited-2"}' });
    await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: '{"apiKey":"sk_AUDIT_secret_2"}' });
    await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}`, { token });

    const res = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token });
    expect(res.status).toBe(200);
    expect(res.json.data.map((e: { type: string }) => e.type)).toEqual(["deleted", "status_changed", "credentials_changed", "updated", "created"]);
    const [deleted, status, credentials, updated, creation] = res.json.data;
    expect(creation).toMatchObject({ serverId: id, workspaceId: ws, actor: "usr_alice", requestId: "req-create-1" });
    expect(creation.fields).toContainEqual({ name: "apiKey", change: "set" });
    expect(updated.fields).toEqual([{ name: "name", change: "changed" }]);
    expect(credentials.fields).toEqual([{ name: "apiKey", change: "replaced" }]);
    expect(status.fields).toEqual([{ name: "connectorStatus", change: "changed" }]);
    expect(deleted.fields).toEqual([]);
    expect(res.text).not.toContain("sk_AUDIT_secret");

    const page = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events?limit=2`, { token });
    expect(page.json.data).toHaveLength(2);
    const rest = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events?limit=10&cursor=${page.json.nextCursor}`, { token });
    expect(rest.json.data.map((e: { type: string }) => e.type)).toEqual(["credentials_changed", "updated", "created"]);
    expect(rest.json.nextCursor).toBeNull();
  });

  test("when the token does not cover the workspace, or the id never existed, then 404", async () => {
    const { ws, token } = await workspace();
    const id = (await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: bodyFor(ws) })).json.id;
    const stranger = await workspace();
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token: stranger.token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE/events`, { token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/nope/events`, { token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`)).status).toBe(401);
  });
});

// Windows are whole minutes; start a limit test early in one so it does not straddle two.
async function startOfWindow() {
  const second = (Date.now() / 1000) % 60;
  if (second > 45) await new Promise((r) => setTimeout(r, (61 - second) * 1000));
}

describe("rate limits", () => {
  test("when a token exceeds its limit, then 429 with Retry-After and RateLimit headers on every operation, shared by processes on one store", async () => {
    await startOfWindow();
    const a = await startServer({ env: { MCP_API_RATE_LIMIT: "4" } });
    const b = await startServer({ reuse: a, env: { MCP_API_RATE_LIMIT: "4" } });
    try {
      const ws = uniqueWorkspace();
      const token = await a.token([ws]);
      const first = await raw(a.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token });
      expect(first.status).toBe(200);
      expect(first.headers.get("ratelimit-policy")).toBe('"default";q=4;w=60');
      expect(first.headers.get("ratelimit")).toMatch(/^"default";r=3;t=\d+$/);
      // Three more on the other process use up the same budget.
      for (let i = 0; i < 3; i++) expect((await raw(b.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).status).toBe(200);
      const id = "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE";
      for (const [method, path, body] of everySecuredOperation(ws, id)) {
        const res = await raw(a.baseUrl, method, path, { token, body });
        expect(res.status, `${method} ${path}`).toBe(429);
        expect(res.json.type).toBe("/problems/rate-limited");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        expect(res.headers.get("ratelimit")).toMatch(/^"default";r=0;t=\d+$/);
      }
      // Probes are never limited.
      expect((await raw(a.baseUrl, "GET", "/healthz")).status).toBe(200);
    } finally {
      await b.stop({ keepData: true });
      await a.stop();
    }
  });

  test("when requests without a valid token keep coming from one address, then they are limited too", async () => {
    await startOfWindow();
    const s = await startServer({ env: { MCP_API_RATE_LIMIT: "3" } });
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await raw(s.baseUrl, "GET", "/api/mcp-servers?workspaceId=ws_x", { headers: { authorization: "Bearer nope" } })).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await s.stop();
    }
  });
});

describe("logs", () => {
  test("when a log line carries secrets or an Authorization header, then they are redacted", () => {
    const lines: string[] = [];
    const logger = createLogger("info", { write: (l: string) => void lines.push(l) });
    logger.info({
      req: { headers: { authorization: "Bearer mcpk_SHOULD_NOT_APPEAR" } },
      body: { apiKey: "sk_SHOULD_NOT_APPEAR", oauthClientSecret: "cs_SHOULD_NOT_APPEAR", oauthAccessToken: "at_SHOULD_NOT_APPEAR", oauthRefreshToken: "rt_SHOULD_NOT_APPEAR", codeVerifier: "cv_SHOULD_NOT_APPEAR" },
    });
    expect(lines.join("")).not.toContain("SHOULD_NOT_APPEAR");
    expect(lines.join("")).toContain("[redacted]");
  });

  test("when a request is served, then its log line has the request id, method, route, status and latency", async () => {
    const { ws, token } = await workspace();
    await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token, headers: { "x-request-id": "log-check-1" } });
    const line = srv.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === "log-check-1" && l.msg === "request");
    expect(line).toMatchObject({ method: "GET", route: "/api/mcp-servers", operationId: "listMcpServers", status: 200 });
    expect(typeof line.ms).toBe("number");
  });
});
