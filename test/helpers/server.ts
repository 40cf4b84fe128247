// Starts the real server in-process on an ephemeral port with a temporary store,
// and records which (operation, status) pairs the suite exercised.
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { MAX_HEADER_BYTES } from "../../server/app.js";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import knex from "knex";
import { createMcpServersClient } from "../../client/index.js";
import { appFor, openServices, type Services } from "../../server/compose.js";
import { readConfig, type Config } from "../../server/config.js";
import { createLogger } from "../../server/logger.js";

export const COVERAGE_DIR = join(process.cwd(), "test-artifacts", "status-coverage");

export const STORE = process.env.TEST_STORE === "postgres" ? "postgres" : "sqlite";

export interface TestServer {
  baseUrl: string;
  databaseUrl: string;
  services: Services;
  config: Config;
  /** Every log line the server wrote, as raw JSON text. */
  logs: string[];
  dataDir: string;
  token(workspaces: string[], userId?: string): Promise<string>;
  client(token: string): ReturnType<typeof createMcpServersClient>;
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export interface StartOptions {
  /** Reuse the store of an earlier server (to test restarts). */
  reuse?: { dataDir: string; databaseUrl: string };
  env?: Record<string, string>;
  /** Start even if the store is unavailable, as `npm start` does. */
  waitForDatabase?: boolean;
}

/** A fresh, empty store for one test server: a temporary SQLite file, or a new PostgreSQL database. */
export async function provisionStore(dataDir: string): Promise<string> {
  if (STORE === "sqlite") return `sqlite:${join(dataDir, "mcp-api.sqlite")}`;
  const admin = process.env.TEST_DATABASE_URL;
  if (!admin) throw new Error("TEST_STORE=postgres needs TEST_DATABASE_URL");
  const name = `mcp_t_${randomBytes(6).toString("hex")}`;
  const db = knex({ client: "pg", connection: admin, pool: { min: 0, max: 1 } });
  try {
    await db.raw(`create database ${name}`);
  } finally {
    await db.destroy();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropStore(databaseUrl: string): Promise<void> {
  if (!databaseUrl.startsWith("postgres")) return;
  const name = new URL(databaseUrl).pathname.slice(1);
  const db = knex({ client: "pg", connection: process.env.TEST_DATABASE_URL!, pool: { min: 0, max: 1 } });
  try {
    await db.raw(`drop database if exists ${name} with (force)`);
  } finally {
    await db.destroy();
  }
}

export function uniqueWorkspace(label = "ws"): string {
  return `${label}_${randomBytes(6).toString("hex")}`;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.reuse?.dataDir ?? mkdtempSync(join(tmpdir(), "mcp-api-test-"));
  const databaseUrl = options.reuse?.databaseUrl ?? (await provisionStore(dataDir));
  const config = readConfig({
    DATABASE_URL: databaseUrl,
    MCP_API_ENCRYPTION_KEY: randomKeyFor(dataDir),
    LOG_LEVEL: "debug",
    MCP_API_VALIDATE_RESPONSES: "true",
    ...options.env,
  });
  const logs: string[] = [];
  const logger = createLogger(config.logLevel, { write: (line: string) => void logs.push(line) });
  let publicUrl = "";
  const services = await openServices(config, logger, { waitForDatabase: options.waitForDatabase, retryMs: 200, publicUrl: () => publicUrl });
  const coverageFile = join(COVERAGE_DIR, `${process.pid}.jsonl`);
  const app = appFor(services, config, logger, {
    onResponse: (operationId, status) => {
      mkdirSync(COVERAGE_DIR, { recursive: true });
      appendFileSync(coverageFile, JSON.stringify({ operationId, status }) + "\n");
    },
  });
  const server: Server = await new Promise((resolve) => {
    const s = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app).listen(0, "127.0.0.1", () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  publicUrl = baseUrl;

  return {
    baseUrl,
    databaseUrl: config.databaseUrl,
    services,
    config,
    logs,
    dataDir,
    async token(workspaces, userId = "usr_test") {
      return (await services.tokens.mint({ userId, workspaces })).token;
    },
    client: (token) => createMcpServersClient({ baseUrl, token }),
    async stop({ keepData = false } = {}) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await services.upstreams.close();
      await services.db.close();
      if (!keepData) {
        rmSync(dataDir, { recursive: true, force: true });
        await dropStore(config.databaseUrl);
      }
    },
  };
}

// One key per data directory, so a restart on the same directory can read its secrets.
const keys = new Map<string, string>();
function randomKeyFor(dataDir: string): string {
  if (!keys.has(dataDir)) keys.set(dataDir, randomBytes(32).toString("base64"));
  return keys.get(dataDir)!;
}

/** Everything the store holds, as text: the SQLite files, or a dump of the PostgreSQL tables. */
export async function storeContents(srv: TestServer): Promise<string> {
  if (STORE === "sqlite") {
    await srv.services.db.knex.raw("PRAGMA wal_checkpoint(TRUNCATE)");
    return readdirSync(srv.dataDir)
      .map((f) => readFileSync(join(srv.dataDir, f)).toString("latin1"))
      .join("\n");
  }
  const tables = ["mcp_servers", "api_tokens"];
  const rows = await Promise.all(tables.map((t) => srv.services.db.knex(t).select()));
  return JSON.stringify(rows);
}

/** One request exactly as given (no header added but Host: no fetch defaults), and what came back. */
export function exactRequest(
  baseUrl: string,
  { method, path, headers = {}, body }: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Raw HTTP for input the typed client cannot express. */
export async function raw(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: string; contentType?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
  const response = await fetch(baseUrl + path, { method, headers, body: options.body });
  const text = await response.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: response.status, headers: response.headers, text, json };
}
