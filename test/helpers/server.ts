// Starts the real server in-process on an ephemeral port with a temporary store,
// and records which (operation, status) pairs the suite exercised.
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createMcpServersClient } from "../../client/index.js";
import { appFor, openServices, type Services } from "../../server/compose.js";
import { readConfig, type Config } from "../../server/config.js";
import { createLogger } from "../../server/logger.js";

export const COVERAGE_DIR = join(process.cwd(), "test-artifacts", "status-coverage");

export interface TestServer {
  baseUrl: string;
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
  /** Reuse a data directory (to test restarts). */
  dataDir?: string;
  env?: Record<string, string>;
}

export function uniqueWorkspace(label = "ws"): string {
  return `${label}_${randomBytes(6).toString("hex")}`;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "mcp-api-test-"));
  const config = readConfig({
    DATABASE_URL: `sqlite:${join(dataDir, "mcp-api.sqlite")}`,
    MCP_API_ENCRYPTION_KEY: randomKeyFor(dataDir),
    LOG_LEVEL: "debug",
    MCP_API_VALIDATE_RESPONSES: "true",
    ...options.env,
  });
  const logs: string[] = [];
  const logger = createLogger(config.logLevel, { write: (line: string) => void logs.push(line) });
  const services = await openServices(config, logger);
  const coverageFile = join(COVERAGE_DIR, `${process.pid}.jsonl`);
  const app = appFor(services, config, logger, {
    onResponse: (operationId, status) => {
      mkdirSync(COVERAGE_DIR, { recursive: true });
      appendFileSync(coverageFile, JSON.stringify({ operationId, status }) + "\n");
    },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
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
      await services.db.close();
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// One key per data directory, so a restart on the same directory can read its secrets.
const keys = new Map<string, string>();
function randomKeyFor(dataDir: string): string {
  if (!keys.has(dataDir)) keys.set(dataDir, randomBytes(32).toString("base64"));
  return keys.get(dataDir)!;
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
