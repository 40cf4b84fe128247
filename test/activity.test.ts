// A workspace's activity (issue 23): every server's events with filters and cursors, and
// tool-call statistics computed by the database, through the typed client and a real gateway call.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAuditRepo } from "../server/data/audit-repo.js";
import { startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, STORE, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let v2: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  v2 = await startV2Peer();
});
afterAll(async () => {
  await v2?.close();
  await srv?.stop();
});

async function workspace() {
  const ws = uniqueWorkspace("act");
  const token = await srv.token([ws], "usr_admin");
  return { ws, token, api: srv.client(token) };
}

async function createServer(api: ReturnType<TestServer["client"]>, ws: string, name: string, url = "https://mcp.example.com/mcp") {
  return api.servers.create({ workspaceId: ws, name, url });
}

/** Writes tool_called events as the gateway does, with chosen outcomes, durations and times. */
async function recordCalls(server: { id: string; workspaceId: string }, calls: Array<[tool: string, outcome: string, durationMs: number, at?: string]>) {
  const audit = createAuditRepo(srv.services.db.knex);
  for (const [tool, outcome, durationMs, at] of calls) {
    await audit.append(
      server,
      { type: "tool_called", actor: "usr_agent", tokenId: "tok_x", requestId: null, fields: [], toolCall: { tool, outcome: outcome as "ok", durationMs, tokenId: "tok_x" } },
      at ?? new Date().toISOString(),
    );
  }
}

describe("GET /api/workspaces/{workspaceId}/events", () => {
  test("when a workspace has several servers, then every server's events come newest first across pages, and the filters narrow them", async () => {
    const { ws, api } = await workspace();
    const a = await createServer(api, ws, "alpha");
    const b = await createServer(api, ws, "beta");
    await api.servers.update(a.id, { name: "alpha-2" });
    const other = await workspace();
    await createServer(other.api, other.ws, "elsewhere");

    const all = [];
    let cursor: string | undefined;
    do {
      const { data, error } = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { limit: 2, ...(cursor ? { cursor } : {}) } } });
      expect(error).toBeUndefined();
      all.push(...data!.data);
      cursor = data!.nextCursor ?? undefined;
    } while (cursor);
    expect(all.map((e) => [e.serverId, e.type])).toEqual([
      [a.id, "updated"],
      [b.id, "created"],
      [a.id, "created"],
    ]);

    const byType = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { type: "created" } } });
    expect(byType.data!.data.map((e) => e.serverId)).toEqual([b.id, a.id]);
    const byServer = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { serverId: a.id } } });
    expect(byServer.data!.data.map((e) => e.type)).toEqual(["updated", "created"]);
    const future = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { since: new Date(Date.now() + 60_000).toISOString() } } });
    expect(future.data).toEqual({ data: [], nextCursor: null });
    const unknownType = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { type: "no_such_type" } } });
    expect(unknownType.data!.data).toEqual([]);
  });

  test("when the since filter is given with an offset, then it compares as the instant it names", async () => {
    const { ws, api } = await workspace();
    const s = await createServer(api, ws, "clock");
    await recordCalls(s, [["old", "ok", 1, "2026-01-01T10:00:00.000Z"], ["new", "ok", 1, "2026-01-01T12:00:00.000Z"]]);
    const { data } = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { type: "tool_called", since: "2026-01-01T12:30:00+01:00" } } });
    expect(data!.data.map((e) => e.toolCall?.tool)).toEqual(["new"]);
  });

  test("when a cursor is reused with other filters, or is not one the server issued, then 400 naming cursor", async () => {
    const { ws, api, token } = await workspace();
    await createServer(api, ws, "one");
    await createServer(api, ws, "two");
    const first = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { limit: 1 } } });
    const cursor = first.data!.nextCursor!;
    expect(cursor).toBeTruthy();
    const other = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/events?type=created&cursor=${encodeURIComponent(cursor)}`, { token });
    expect(other.status).toBe(400);
    expect(other.json.errors).toEqual([{ path: "/query/cursor", message: expect.any(String) }]);
    const forged = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/events?cursor=abc.def`, { token });
    expect(forged.status).toBe(400);
  });

  test.each([
    ["a type that is not lower-case letters", "type=Tool-Called", "/query/type"],
    ["a serverId that is not an mcp_ id", "serverId=srv_1", "/query/serverId"],
    ["a since that is not a date-time", "since=yesterday", "/query/since"],
    ["a since that names no instant (month 13)", "since=2026-13-01T00:00:00Z", "/query/since"],
    ["a limit above 100", "limit=101", "/query/limit"],
    ["an unknown parameter", "colour=red", "/query/colour"],
  ])("when the query has %s, then 400 naming it", async (_label, query, path) => {
    const { ws, token } = await workspace();
    const res = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/events?${query}`, { token });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  test("when the token lacks the workspace, is missing, or has scope gateway, then 403, 401 and 403", async () => {
    const { ws } = await workspace();
    const outsider = await srv.token([uniqueWorkspace("other")]);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/events`, { token: outsider })).status).toBe(403);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/events`)).status).toBe(401);
    const { token: gateway } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/events`, { token: gateway })).status).toBe(403);
  });
});

describe("GET /api/workspaces/{workspaceId}/tool-stats", () => {
  test("when tools were called, then calls, errors and nearest-rank p50/p95 per (server, tool) come busiest first, only for the window", async () => {
    const { ws, api } = await workspace();
    const a = await createServer(api, ws, "stats-a");
    const b = await createServer(api, ws, "stats-b");
    // 20 calls of 1..20 ms: p50 is the 10th (10 ms), p95 the 19th (19 ms).
    const twenty = Array.from({ length: 20 }, (_, i) => ["search", i % 5 === 0 ? "tool_error" : "ok", 20 - i] as [string, string, number]);
    await recordCalls(a, twenty);
    await recordCalls(a, [["fetch", "timeout", 300], ["fetch", "ok", 7], ["fetch", "denied", 0]]);
    await recordCalls(b, [["search", "ok", 5]]);
    await recordCalls(b, [["ancient", "ok", 5, new Date(Date.now() - 25 * 3600_000).toISOString()]]);

    const { data, error } = await api.GET("/api/workspaces/{workspaceId}/tool-stats", { params: { path: { workspaceId: ws } } });
    expect(error).toBeUndefined();
    expect(data!.data).toEqual([
      { serverId: a.id, tool: "search", calls: 20, errors: 4, p50Ms: 10, p95Ms: 19 },
      { serverId: a.id, tool: "fetch", calls: 3, errors: 2, p50Ms: 7, p95Ms: 300 },
      { serverId: b.id, tool: "search", calls: 1, errors: 0, p50Ms: 5, p95Ms: 5 },
    ]);

    const longer = await api.GET("/api/workspaces/{workspaceId}/tool-stats", { params: { path: { workspaceId: ws }, query: { since: new Date(Date.now() - 48 * 3600_000).toISOString() } } });
    expect(longer.data!.data.map((s) => s.tool)).toContain("ancient");
    const empty = await api.GET("/api/workspaces/{workspaceId}/tool-stats", { params: { path: { workspaceId: ws }, query: { since: new Date(Date.now() + 60_000).toISOString() } } });
    expect(empty.data).toEqual({ data: [] });
  });

  test("when an agent calls a tool through the gateway, then the call shows in tool-stats and in the workspace's tool_called events", async () => {
    const { ws, api } = await workspace();
    const s = await api.servers.create({ workspaceId: ws, name: "live", url: v2.url });
    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const agent = new V2Client({ name: "agent", version: "1.0.0" });
    await agent.connect(new V2Transport(new URL(`${srv.baseUrl}/api/mcp-servers/${s.id}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    await agent.callTool({ name: "echo", arguments: { text: "hello" } });
    await agent.close();

    const stats = await api.GET("/api/workspaces/{workspaceId}/tool-stats", { params: { path: { workspaceId: ws } } });
    expect(stats.data!.data).toEqual([{ serverId: s.id, tool: "echo", calls: 1, errors: 0, p50Ms: expect.any(Number), p95Ms: expect.any(Number) }]);
    const events = await api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws }, query: { type: "tool_called" } } });
    expect(events.data!.data.map((e) => [e.serverId, e.toolCall?.tool, e.toolCall?.outcome])).toEqual([[s.id, "echo", "ok"]]);
  });

  test("when since is not a date-time, then 400; without the workspace, 403; without a token, 401", async () => {
    const { ws, token } = await workspace();
    const bad = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-stats?since=last-week`, { token });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((e: { path: string }) => e.path)).toEqual(["/query/since"]);
    const outsider = await srv.token([uniqueWorkspace("other")]);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-stats`, { token: outsider })).status).toBe(403);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-stats`)).status).toBe(401);
  });
});

describe("GET /api/workspaces/{workspaceId}/tool-call-hours", () => {
  const hoursAgo = (h: number, minute = 0) => {
    const start = Math.floor(Date.now() / 3600_000) * 3600_000 - h * 3600_000;
    return { at: new Date(start + minute * 60_000).toISOString(), hour: new Date(start).toISOString() };
  };

  test("when tools were called in several hours, then each (hour, outcome) with calls comes oldest hour first, outcomes in enum order, only for the window and the workspace", async () => {
    const { ws, api } = await workspace();
    const a = await createServer(api, ws, "hours-a");
    const b = await createServer(api, ws, "hours-b");
    const [h3, h1, h0, old] = [hoursAgo(3, 5), hoursAgo(1, 59), hoursAgo(0, 0), hoursAgo(30, 10)];
    await recordCalls(a, [["t", "ok", 1, h3.at], ["t", "timeout", 1, h3.at], ["u", "ok", 1, h3.at], ["t", "tool_error", 1, h1.at], ["t", "ok", 1, h1.at]]);
    await recordCalls(b, [["t", "denied", 0, h1.at], ["t", "ok", 1, h0.at], ["t", "ok", 1, old.at]]);
    const other = await workspace();
    const elsewhere = await createServer(other.api, other.ws, "hours-elsewhere");
    await recordCalls(elsewhere, [["t", "ok", 1, h3.at]]);
    // Events of other types in the window count for nothing.
    await api.servers.update(a.id, { name: "hours-a2" });

    const { data, error } = await api.GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId: ws } } });
    expect(error).toBeUndefined();
    expect(data).toEqual({
      data: [
        { hour: h3.hour, outcome: "ok", calls: 2 },
        { hour: h3.hour, outcome: "timeout", calls: 1 },
        { hour: h1.hour, outcome: "ok", calls: 1 },
        { hour: h1.hour, outcome: "tool_error", calls: 1 },
        { hour: h1.hour, outcome: "denied", calls: 1 },
        { hour: h0.hour, outcome: "ok", calls: 1 },
      ],
    });

    // A longer window reaches the old call; a since inside an hour counts only what came after it.
    const longer = await api.GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId: ws }, query: { since: hoursAgo(48).at } } });
    expect(longer.data!.data[0]).toEqual({ hour: old.hour, outcome: "ok", calls: 1 });
    const partial = await api.GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId: ws }, query: { since: hoursAgo(3, 6).at } } });
    expect(partial.data!.data.filter((e) => e.hour === h3.hour)).toEqual([]);
    const empty = await api.GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId: ws }, query: { since: new Date(Date.now() + 60_000).toISOString() } } });
    expect(empty.data).toEqual({ data: [] });
  });

  test("when an agent calls a tool through the gateway, then the call is counted in its hour", async () => {
    const { ws, api } = await workspace();
    const s = await api.servers.create({ workspaceId: ws, name: "live-hours", url: v2.url });
    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const agent = new V2Client({ name: "agent", version: "1.0.0" });
    await agent.connect(new V2Transport(new URL(`${srv.baseUrl}/api/mcp-servers/${s.id}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const before = hoursAgo(0).hour;
    await agent.callTool({ name: "echo", arguments: { text: "hello" } });
    await agent.close();
    const after = hoursAgo(0).hour;
    const { data } = await api.GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId: ws } } });
    expect(data!.data).toHaveLength(1);
    expect(data!.data[0]).toMatchObject({ outcome: "ok", calls: 1 });
    expect([before, after]).toContain(data!.data[0].hour);
  });

  test.each([
    ["a since that is not a date-time", "since=last-week", "/query/since"],
    ["a since that names no instant (month 13)", "since=2026-13-01T00:00:00Z", "/query/since"],
    ["an unknown parameter", "bucket=day", "/query/bucket"],
  ])("when the query has %s, then 400 naming it", async (_label, query, path) => {
    const { ws, token } = await workspace();
    const res = await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-call-hours?${query}`, { token });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toEqual([path]);
  });

  test("when the token lacks the workspace, is missing, or has scope gateway, then 403, 401 and 403", async () => {
    const { ws } = await workspace();
    const outsider = await srv.token([uniqueWorkspace("other")]);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-call-hours`, { token: outsider })).status).toBe(403);
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-call-hours`)).status).toBe(401);
    const { token: gateway } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    expect((await raw(srv.baseUrl, "GET", `/api/workspaces/${ws}/tool-call-hours`, { token: gateway })).status).toBe(403);
  });
});

describe("the database's plan", () => {
  /** The plan the store makes for each statement the call sends, read with EXPLAIN. */
  async function plans(call: () => Promise<unknown>): Promise<string[]> {
    const knex = srv.services.db.knex;
    const sent: Array<{ sql: string; bindings: readonly unknown[] }> = [];
    const listener = (q: { sql: string; bindings?: readonly unknown[] }) => void (/audit_events/.test(q.sql) && sent.push({ sql: q.sql, bindings: q.bindings ?? [] }));
    knex.on("query", listener);
    try {
      await call();
    } finally {
      knex.removeListener("query", listener);
    }
    expect(sent.length).toBeGreaterThan(0);
    return Promise.all(
      sent.map(async ({ sql, bindings }) => {
        if (STORE === "sqlite") return JSON.stringify((await knex.raw(`explain query plan ${sql}`, bindings as never[])) as unknown);
        // PostgreSQL prefers a sequential scan on tables this small; without that choice it must show the index it can use.
        return knex.transaction(async (trx) => {
          await trx.raw("set local enable_seqscan = off");
          return JSON.stringify((await trx.raw(`explain ${sql.replace(/\$\d+/g, "?")}`, bindings as never[])).rows);
        });
      }),
    );
  }

  test("when tool-stats, tool-call-hours and the workspace's events are read, then the database answers from the workspace indexes, not a scan of every event", async () => {
    const { ws, api } = await workspace();
    const s = await createServer(api, ws, "planned");
    await recordCalls(s, [["t", "ok", 1]]);
    const stats = await plans(() => api.GET("/api/workspaces/{workspaceId}/tool-stats", { params: { path: { workspaceId: ws } } }));
    expect(stats.join("\n")).toContain("audit_events_workspace_type_at_idx");
    const hours = await plans(() => api.GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId: ws } } }));
    expect(hours.join("\n")).toContain("audit_events_workspace_type_at_idx");
    const events = await plans(() => api.GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId: ws } } }));
    expect(events.join("\n")).toMatch(/audit_events_workspace(_type_at)?_idx/);
  });
});
