import knex from "knex";
import { describe, expect, test } from "vitest";
import { everySecuredOperation } from "./helpers/operations.js";
import { raw, startServer, STORE } from "./helpers/server.js";

const TOKEN = `mcpk_${"A".repeat(43)}`;
const ID = "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE";
const EVERY_OPERATION = everySecuredOperation("ws_a", ID);

async function waitFor(check: () => Promise<boolean>, what: string, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("when the store is unavailable", () => {
  test.runIf(STORE === "sqlite")("at start-up (SQLite file cannot be opened), then every operation is 503, /readyz is 503 and /healthz 200", async () => {
    const srv = await startServer({ reuse: { dataDir: "/tmp", databaseUrl: "sqlite:/dev/null/not-a-dir/mcp-api.sqlite" }, waitForDatabase: true });
    try {
      for (const [method, path, body] of EVERY_OPERATION) {
        const res = await raw(srv.baseUrl, method, path, { token: TOKEN, body });
        expect(res.status, `${method} ${path}`).toBe(503);
        expect(res.headers.get("retry-after")).toBe("2");
        expect(res.json).toMatchObject({ type: "/problems/service-unavailable", status: 503 });
      }
      expect((await raw(srv.baseUrl, "GET", "/readyz")).status).toBe(503);
      expect((await raw(srv.baseUrl, "GET", "/healthz")).status).toBe(200);
      const page = await raw(srv.baseUrl, "GET", "/api/oauth/callback?state=abc&code=def");
      expect(page.status).toBe(503);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
    } finally {
      await srv.stop({ keepData: true });
    }
  });

  test.runIf(STORE === "postgres")("at start-up and while serving (PostgreSQL), then 503 and /readyz not ready, and it recovers by itself", async () => {
    const admin = knex({ client: "pg", connection: process.env.TEST_DATABASE_URL!, pool: { min: 0, max: 1 } });
    const name = `mcp_t_late_${Date.now()}`;
    const url = new URL(process.env.TEST_DATABASE_URL!);
    url.pathname = `/${name}`;
    const srv = await startServer({ reuse: { dataDir: "/tmp", databaseUrl: url.toString() }, waitForDatabase: true });
    try {
      // The database does not exist yet.
      for (const [method, path, body] of EVERY_OPERATION) {
        expect((await raw(srv.baseUrl, method, path, { token: TOKEN, body })).status, `${method} ${path}`).toBe(503);
      }
      expect((await raw(srv.baseUrl, "GET", "/readyz")).status).toBe(503);

      await admin.raw(`create database ${name}`);
      await waitFor(async () => (await raw(srv.baseUrl, "GET", "/readyz")).status === 200, "readiness after the database appeared");
      const token = await srv.token(["ws_a"]);
      const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: EVERY_OPERATION[0][2] });
      expect(created.status).toBe(201);

      // The database goes away while serving.
      await admin.raw(`alter database ${name} allow_connections false`);
      await admin.raw(`select pg_terminate_backend(pid) from pg_stat_activity where datname = ?`, [name]);
      await waitFor(async () => (await raw(srv.baseUrl, "GET", "/readyz")).status === 503, "readiness to drop");
      const during = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token });
      expect(during.status).toBe(503);
      expect(during.json.type).toBe("/problems/service-unavailable");

      await admin.raw(`alter database ${name} allow_connections true`);
      await waitFor(async () => (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token })).status === 200, "recovery");
      expect((await raw(srv.baseUrl, "GET", "/readyz")).status).toBe(200);
    } finally {
      await srv.stop({ keepData: true });
      await admin.raw(`drop database if exists ${name} with (force)`);
      await admin.destroy();
    }
  });
});

test("when the store is up, then /readyz answers ready", async () => {
  const srv = await startServer();
  try {
    const res = await raw(srv.baseUrl, "GET", "/readyz");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: "ready" });
  } finally {
    await srv.stop();
  }
});
