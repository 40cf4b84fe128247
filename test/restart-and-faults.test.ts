import { describe, expect, test } from "vitest";
import { everySecuredOperation } from "./helpers/operations.js";
import { raw, startServer, uniqueWorkspace } from "./helpers/server.js";

describe("restart", () => {
  test("when the server restarts on the same database, then records and their secrets survive", async () => {
    const first = await startServer();
    const ws = uniqueWorkspace();
    const token = await first.token([ws]);
    const created = (await first.client(token).POST("/api/mcp-servers", {
      body: { workspaceId: ws, name: "durable", url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: "sk_durable" },
    })).data!;
    await first.stop({ keepData: true });

    const second = await startServer({ reuse: first });
    try {
      const { data } = await second.client(token).GET("/api/mcp-servers/{id}", { params: { path: { id: created.id } } });
      expect(data).toEqual(created);
      expect((await second.services.servers.openSecrets(ws, created.id)).apiKey).toBe("sk_durable");
    } finally {
      await second.stop();
    }
  });
});

describe("unexpected faults", () => {
  test("when the store fails under every operation, then 500 problem+json with no stack trace, and the fault is logged", async () => {
    const srv = await startServer();
    const ws = uniqueWorkspace();
    const token = await srv.token([ws]);
    const id = (await srv.client(token).POST("/api/mcp-servers", { body: { workspaceId: ws, name: "x", url: "https://a.example.com" } })).data!.id;
    await srv.services.db.knex.destroy();
    try {
      for (const [method, path, body] of everySecuredOperation(ws, id)) {
        const res = await raw(srv.baseUrl, method, path, { token, body });
        expect(res.status, `${method} ${path}`).toBe(500);
        expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
        expect(res.json).toMatchObject({ type: "/problems/internal-error", status: 500, detail: "The fault was logged." });
        expect(res.text).not.toMatch(/at .*\.(ts|js):\d+/);
        expect(res.text).not.toMatch(/knex|sqlite|pool/i);
      }
      expect(srv.logs.some((l) => l.includes('"msg":"request failed"'))).toBe(true);
      // The OAuth callback is a page for a person: its fault is a page too.
      const page = await raw(srv.baseUrl, "GET", "/api/oauth/callback?state=abc&code=def");
      expect(page.status).toBe(500);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      expect(page.text).not.toMatch(/knex|sqlite|pool|at .*:\d+/i);
    } finally {
      await srv.stop().catch(() => undefined);
    }
  });
});
