// A bounded audit trail (issue 18 item 3): every field of an event bounded, tool names cut at
// 128 as in the agent's message, invalid names refused, and events past retention removed.
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createAuditRepo } from "../server/data/audit-repo.js";
import { readConfig } from "../server/config.js";
import { createEventRetention } from "../server/domain/event-retention.js";
import { closer, listen } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
/** An upstream that records every request it receives and answers none usefully. */
let upstream: { url: string; received: string[]; close(): Promise<void> };

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_EVENT_RETENTION_DAYS: "30" } });
  const received: string[] = [];
  const http = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push(body.slice(0, 200));
      res.writeHead(500).end();
    });
  });
  const port = await listen(http);
  upstream = { url: `http://127.0.0.1:${port}/mcp`, received, close: closer(http) };
});
afterAll(async () => {
  await upstream?.close();
  await srv?.stop();
});

async function setup(body: Record<string, unknown> = {}) {
  const ws = uniqueWorkspace();
  const token = await srv.token([ws]);
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "audited", url: upstream.url, ...body }) });
  expect(created.status).toBe(201);
  return { ws, token, id: created.json.id as string };
}
const callTool = (token: string, id: string, name: string) =>
  raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, {
    token,
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, arguments: {} } }),
    headers: { accept: "application/json, text/event-stream" },
  });
const toolEvents = async (token: string, id: string) =>
  (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token })).json.data.filter((e: { type: string }) => e.type === "tool_called") as {
    toolCall: { tool: string; outcome: string };
  }[];

describe("POST /api/mcp-servers/{id}/mcp tools/call, in the audit trail", () => {
  test.each([
    ["a 1,000,000-character name", "x".repeat(1_000_000), {}],
    ["a 129-character name of valid characters", "t".repeat(129), {}],
    ["a name with a space", "search issues", {}],
    ["a long invalid name on a server with allowedTools", `${"y".repeat(300)} !`, { allowedTools: ["search"] }],
  ])("when the name is %s, then it is refused as not a valid MCP tool name, nothing goes upstream, and the event holds it cut at 128 as the message does", async (_label, name, extra) => {
    const { token, id } = await setup(extra);
    const before = upstream.received.length;
    const res = await callTool(token, id, name);
    expect(res.status).toBe(200);
    const bounded = name.slice(0, 128);
    expect(res.json.error).toEqual({ code: -32602, message: `Tool '${bounded}' is not a valid MCP tool name (1 to 128 of A-Z, a-z, 0-9, _, - and .).` });
    expect(upstream.received.length).toBe(before);
    // The event is written beside the answer, not before it.
    await vi.waitFor(async () => {
      expect(await toolEvents(token, id)).toEqual([expect.objectContaining({ toolCall: expect.objectContaining({ tool: bounded, outcome: "denied" }) })]);
    });
  });

  test("when 20 calls carry 1,000,000-character names, then the events page stays small", async () => {
    const { token, id } = await setup();
    for (let i = 0; i < 20; i++) await callTool(token, id, String(i).repeat(1_000_000 / String(i).length));
    await vi.waitFor(async () => expect(await toolEvents(token, id)).toHaveLength(20));
    const page = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events?limit=100`, { token });
    expect(page.text.length).toBeLessThan(20 * 1024);
  });

  test("when a valid name is not among allowedTools, then it is denied with the name as given", async () => {
    const { token, id } = await setup({ allowedTools: ["search"] });
    const res = await callTool(token, id, "delete_everything");
    expect(res.json.error).toEqual({ code: -32003, message: "Tool 'delete_everything' is not allowed on MCP server 'audited'." });
    await vi.waitFor(async () => expect((await toolEvents(token, id))[0]?.toolCall).toMatchObject({ tool: "delete_everything", outcome: "denied" }));
  });
});

describe("MCP_API_EVENT_RETENTION_DAYS", () => {
  const DAY = 86_400_000;
  const at = (daysAgo: number) => new Date(Date.now() - daysAgo * DAY).toISOString();

  test("when events are older than the retention, then a sweep removes them in batches of 100, deleted servers' included, and keeps the rest", async () => {
    const kept = await setup();
    const gone = await setup();
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${gone.id}`, { token: gone.token })).status).toBe(204);
    const knex = srv.services.db.knex;
    const old = (server: { id: string; ws: string }, n: number, daysAgo: number, tag: string) =>
      Array.from({ length: n }, (_, i) => ({
        id: `evt_0${tag}${String(i).padStart(24, "0")}`.slice(0, 30),
        server_id: server.id,
        workspace_id: server.ws,
        type: "updated",
        actor: "usr_old",
        token_id: null,
        request_id: null,
        at: at(daysAgo),
        fields: "[]",
        tool_call: null,
      }));
    const rows = [...old(kept, 700, 31, "A"), ...old(gone, 500, 400, "B"), ...old(kept, 3, 29, "C")];
    for (let i = 0; i < rows.length; i += 100) await knex("audit_events").insert(rows.slice(i, i + 100));

    const batches: number[] = [];
    const repo = createAuditRepo(knex);
    const retention = createEventRetention(
      {
        deleteOlderThan: async (cutoff, batch) => {
          const n = await repo.deleteOlderThan(cutoff, batch);
          batches.push(n);
          return n;
        },
      },
      { days: srv.config.eventRetentionDays },
    );
    expect(await retention.runOnce()).toBe(1200);
    expect(batches).toEqual([...Array(12).fill(100), 0]);

    const left = await knex("audit_events").whereIn("server_id", [kept.id, gone.id]).select("actor", "type");
    expect(left.filter((r) => r.actor === "usr_old")).toHaveLength(3);
    // The deleted server's own recent events (created, deleted) are still readable.
    const goneEvents = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${gone.id}/events`, { token: gone.token });
    expect(goneEvents.json.data.map((e: { type: string }) => e.type)).toEqual(["deleted", "created"]);
    // The service the server composes sweeps the same store, with the configured days.
    expect(srv.services.retention.days).toBe(30);
    expect(await srv.services.retention.runOnce()).toBe(0);
  });

  test("when started, then the timer sweeps again and again until closed", async () => {
    const cutoffs: string[] = [];
    let swept = 0;
    const twice = new Promise<void>((resolve) => {
      const retention = createEventRetention(
        {
          deleteOlderThan: async (cutoff) => {
            cutoffs.push(cutoff);
            return 0;
          },
        },
        {
          days: 2,
          firstAfterMs: 1,
          intervalMs: 1,
          now: () => new Date("2026-12-10T00:00:00.000Z"),
          onSwept: () => {
            if (++swept === 2) void retention.close().then(resolve);
          },
        },
      );
      retention.start();
    });
    await twice;
    expect(cutoffs.slice(0, 2)).toEqual(["2026-12-08T00:00:00.000Z", "2026-12-08T00:00:00.000Z"]);
  });

  test.each(["0", "-1", "ninety", "1.5"])("when it is %j, then the configuration is refused, naming it", (value) => {
    expect(() => readConfig({ DATABASE_URL: "sqlite::memory:", MCP_API_EVENT_RETENTION_DAYS: value })).toThrow(/MCP_API_EVENT_RETENTION_DAYS/);
  });

  test("when unset, then events are kept 90 days", () => {
    expect(readConfig({ DATABASE_URL: "sqlite::memory:" }).eventRetentionDays).toBe(90);
  });
});
