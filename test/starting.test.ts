// The compiled server before its app is built (server/main.ts listens first; http/starting.ts):
// /healthz, liveness only, is answered as the app answers it, and every other request waits for
// the app instead of being refused. The start is held at a known point, the migration lock.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import knex from "knex";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { ensureBuilt } from "./helpers/dist-build.js";
import { raw } from "./helpers/server.js";

const root = join(import.meta.dirname, "..");
let dataDir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  await ensureBuilt();
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-starting-"));
}, 120_000);

afterAll(() => {
  if (child?.exitCode === null) child.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function until<T>(attempt: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const got = await attempt().catch(() => undefined);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("gave up waiting");
}

describe("the compiled server while it starts", () => {
  test("when the app is not built yet (migration lock held), then GET /healthz is answered as the app answers it, /readyz waits and is answered by the app once it is built", async () => {
    const databaseUrl = `sqlite:${join(dataDir, "mcp-api.sqlite")}`;
    const env = { ...process.env, DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "info" };
    const services = await openServices(readConfig(env), createLogger("silent"));
    await services.db.close();
    const db = knex({ client: "better-sqlite3", connection: { filename: join(dataDir, "mcp-api.sqlite") }, useNullAsDefault: true });
    try {
      await db("knex_migrations_lock").update({ is_locked: 1 });
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      child = spawn(process.execPath, ["dist/server/main.js"], { cwd: root, env: { ...env, PORT: String(port), HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout!.on("data", (c) => (out += c));
      child.stderr!.on("data", (c) => (out += c));
      await until(async () => (/another process is migrating the database; waiting/.test(out) ? true : undefined));

      const early = await until(() => raw(base, "GET", "/healthz", { headers: { "x-request-id": "req-early-1" } }));
      expect(early.status).toBe(200);
      expect(early.json).toEqual({ status: "ok" });
      expect(early.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(early.headers.get("x-request-id")).toBe("req-early-1");
      await until(async () => (/"requestId":"req-early-1".*"route":"\/healthz","operationId":"getHealth","status":200/.test(out) ? true : undefined));

      let readyAnswered = false;
      const ready = raw(base, "GET", "/readyz").then((r) => ((readyAnswered = true), r));
      const listing = raw(base, "GET", "/api/mcp-servers?workspaceId=ws_x");
      await until(() => raw(base, "GET", "/healthz")); // a later request is answered meanwhile
      expect(readyAnswered).toBe(false);
      expect(out).not.toMatch(/listening on/);

      await db("knex_migrations_lock").update({ is_locked: 0 });
      const readyz = await ready;
      expect(readyz.status).toBe(200);
      expect(readyz.json).toEqual({ status: "ready" });
      // The app answered what waited: a request without a token is refused by its validator.
      const waited = await listing;
      expect(waited.status).toBe(401);
      expect(waited.headers.get("content-type")).toBe("application/problem+json; charset=utf-8");
      expect(out).toMatch(/listening on/);

      const late = await raw(base, "GET", "/healthz", { headers: { "x-request-id": "req-late-1" } });
      expect({ status: late.status, body: late.json, type: late.headers.get("content-type"), id: late.headers.get("x-request-id") }).toEqual({
        status: early.status,
        body: early.json,
        type: early.headers.get("content-type"),
        id: "req-late-1",
      });
      expect([...late.headers.keys()].sort()).toEqual([...early.headers.keys()].sort());
    } finally {
      await db.destroy();
    }
  });
});
