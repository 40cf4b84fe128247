// Gateway namespaces unique in the database (issue 18 item 8): a column with a unique index
// per workspace, filled by migration 010, so that colliding writes race to one winner.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openDatabase } from "../server/data/db.js";
import { migrationSource, namespaceAt010 } from "../server/data/migrations.js";
import { namespaceOf } from "../server/domain/names.js";
import { dropStore, provisionStore, raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

describe("migration 010 (namespace column)", () => {
  test.each(["GitHub Tools", "github-tools", "Ärger & Co", "!!!", "contract-check-1795920000000-unreachable-tools-2", "x".repeat(100)])(
    "its frozen copy gives %j the namespace the domain gives",
    (name) => {
      expect(namespaceAt010(name)).toBe(namespaceOf(name));
    },
  );

  test("when records exist before it, then each gets its namespace, a pre-existing duplicate keeps none (the oldest keeps it), and the index refuses a new duplicate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-api-ns-"));
    const url = await provisionStore(dir);
    const db = openDatabase(url);
    try {
      const k = db.knex;
      for (let i = 0; i < 9; i++) await k.migrate.up({ migrationSource });
      const [, pending] = (await k.migrate.list({ migrationSource })) as [unknown, { name: string }[]];
      expect(pending.map((m) => m.name)[0]).toMatch(/^010_/);
      const row = (id: string, workspace: string, name: string) => ({
        id,
        workspace_id: workspace,
        name,
        name_key: name.toLowerCase(),
        url: "https://mcp.example.com/mcp",
        auth_type: "none",
        headers: "{}",
        created_by: "usr_m",
        created_at: "2026-12-01T00:00:00.000Z",
        updated_at: "2026-12-01T00:00:00.000Z",
      });
      await k("mcp_servers").insert([
        row("mcp_01AAAAAAAAAAAAAAAAAAAAAAA1", "ws_a", "Acme Tools"),
        row("mcp_01AAAAAAAAAAAAAAAAAAAAAAA2", "ws_a", "acme-tools"),
        row("mcp_01AAAAAAAAAAAAAAAAAAAAAAA3", "ws_a", "Weather"),
        row("mcp_01AAAAAAAAAAAAAAAAAAAAAAA4", "ws_b", "ACME_TOOLS"),
      ]);
      await k.migrate.latest({ migrationSource });
      const after = await k("mcp_servers").select("id", "namespace").orderBy("id");
      expect(after).toEqual([
        { id: "mcp_01AAAAAAAAAAAAAAAAAAAAAAA1", namespace: "acme_tools" },
        { id: "mcp_01AAAAAAAAAAAAAAAAAAAAAAA2", namespace: null },
        { id: "mcp_01AAAAAAAAAAAAAAAAAAAAAAA3", namespace: "weather" },
        { id: "mcp_01AAAAAAAAAAAAAAAAAAAAAAA4", namespace: "acme_tools" },
      ]);
      await expect(k("mcp_servers").insert({ ...row("mcp_01AAAAAAAAAAAAAAAAAAAAAAA5", "ws_a", "acme.tools"), namespace: "acme_tools" })).rejects.toThrow(/unique|duplicate/i);
    } finally {
      await db.knex.destroy();
      await dropStore(url);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("POST /api/mcp-servers with names of one namespace", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv?.stop();
  });

  test("when 20 creates whose names differ but share a namespace race, then one 201 and 19 × 409 naming the server that has it", async () => {
    const ws = uniqueWorkspace();
    const token = await srv.token([ws]);
    // "acme-tools", "acme--tools", …: 20 names (and name keys), one namespace.
    const names = Array.from({ length: 20 }, (_, i) => `acme${"-".repeat(i + 1)}tools`);
    const results = await Promise.all(
      names.map((name) => raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name, url: "https://mcp.example.com/mcp" }) })),
    );
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    const refused = results.filter((r) => r.status === 409);
    expect(refused).toHaveLength(19);
    const winner = created[0].json;
    for (const r of refused) expect(r.json.detail).toContain(`gateway namespace 'acme_tools', which MCP server '${winner.name}' (${winner.id})`);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).json.data).toHaveLength(1);
  });

  test("when a rename takes a namespace another server has, then 409 naming it; the same namespace in another workspace is fine", async () => {
    const ws = uniqueWorkspace();
    const other = uniqueWorkspace();
    const token = await srv.token([ws, other]);
    const create = (workspaceId: string, name: string) =>
      raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId, name, url: "https://mcp.example.com/mcp" }) });
    const first = (await create(ws, "Weather Tools")).json;
    const second = (await create(ws, "Forecast")).json;
    expect((await create(other, "weather.tools")).status).toBe(201);
    const renamed = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${second.id}`, { token, body: JSON.stringify({ name: "weather_tools" }) });
    expect(renamed.status).toBe(409);
    expect(renamed.json.detail).toContain(`MCP server 'Weather Tools' (${first.id})`);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${second.id}`, { token })).json.name).toBe("Forecast");
    // Renaming a server within its own namespace is not a collision with itself.
    expect((await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${first.id}`, { token, body: JSON.stringify({ name: "weather-tools" }) })).status).toBe(200);
  });
});
