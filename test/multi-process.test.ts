// Several server processes on one store: the state that matters lives in the database.
import { execFile, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { startSilentPeer } from "./helpers/mcp-peers.js";
import { dropStore, provisionStore, raw, STORE } from "./helpers/server.js";
import { spawnServerProcess } from "./helpers/server-process.js";

const root = join(import.meta.dirname, "..");
let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];

// Asynchronous, so that the test's own connections stay serviced while the CLI runs.
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

async function startProcess(extraEnv: Record<string, string> = {}): Promise<string> {
  return spawnServerProcess(root, { ...env, ...extraEnv }, processes);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-mp-"));
  env = {
    ...process.env,
    DATABASE_URL: await provisionStore(dataDir),
    MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    LOG_LEVEL: "warn",
  };
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("server processes sharing one store", () => {
  test("when 50 creates with one name race (across two processes on PostgreSQL, one on SQLite), then one 201 and 49 × 409", async () => {
    const urls = STORE === "postgres" ? await Promise.all([startProcess(), startProcess()]) : [await startProcess()];
    const ws = `ws_mp_${randomBytes(3).toString("hex")}`;
    const token = await cli("create", "--user", "usr_mp", "--workspace", ws);
    expect(token).toMatch(/^mcpk_/);
    const body = JSON.stringify({ workspaceId: ws, name: "contended", url: "https://mcp.example.com/mcp" });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => raw(urls[i % urls.length], "POST", "/api/mcp-servers", { token, body })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(49);

    // What one process wrote, the other reads.
    const id = results.find((r) => r.status === 201)!.json.id;
    for (const url of urls) expect((await raw(url, "GET", `/api/mcp-servers/${id}`, { token })).json.name).toBe("contended");

    // A token revoked through the CLI is refused by every process at once.
    const tokenId = (await cli("list")).split("\n").find((line) => line.includes(ws))!.split("\t")[0];
    await cli("revoke", tokenId);
    for (const url of urls) expect((await raw(url, "GET", `/api/mcp-servers/${id}`, { token })).status).toBe(401);
  }, 90_000);

  test("when 40 creates whose names differ but share a namespace race (across two processes on PostgreSQL, one on SQLite), then one 201 and 39 × 409", async () => {
    const urls = STORE === "postgres" ? await Promise.all([startProcess(), startProcess()]) : [await startProcess()];
    const ws = `ws_ns_${randomBytes(3).toString("hex")}`;
    const token = await cli("create", "--user", "usr_ns", "--workspace", ws);
    // "acme-tools", "acme--tools", …: distinct names, one gateway namespace (issue 18 item 8).
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        raw(urls[i % urls.length], "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: `acme${"-".repeat(i + 1)}tools`, url: "https://mcp.example.com/mcp" }) }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(39);
    for (const url of urls) expect((await raw(url, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).json.data).toHaveLength(1);
  }, 90_000);

  test("when SIGTERM arrives, then in-flight requests finish, the store closes and the process exits 0", async () => {
    // A check against a peer that never answers keeps a request in flight for the connect timeout.
    const silent = await startSilentPeer();
    const url = await startProcess({ MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "2000" });
    const child = processes[processes.length - 1];
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const ws = `ws_term_${randomBytes(3).toString("hex")}`;
    const token = await cli("create", "--user", "usr_term", "--workspace", ws);
    const created = await raw(url, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "slow", url: silent.url }) });
    const inFlight = raw(url, "POST", `/api/mcp-servers/${created.json.id}/test`, { token });
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGTERM");
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.json.error.class).toBe("timeout");
    // A generous bound: a hung shutdown shows up as "still running", not as a slow test.
    const code = await Promise.race([exited, new Promise<"still running">((r) => setTimeout(() => r("still running"), 15_000))]);
    expect(code).toBe(0);
    await silent.close();
  }, 60_000);

  test("when four processes start together on a fresh database, then all migrate it and none fails", async () => {
    for (let round = 0; round < 3; round++) {
      const dir = mkdtempSync(join(tmpdir(), "mcp-api-race-"));
      const databaseUrl = await provisionStore(dir);
      try {
        const config = readConfig({ DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: env.MCP_API_ENCRYPTION_KEY!, LOG_LEVEL: "silent" });
        const opened = await Promise.allSettled(Array.from({ length: 4 }, () => openServices(config, createLogger("silent"))));
        expect(opened.map((r) => (r.status === "rejected" ? String(r.reason) : "ok"))).toEqual(["ok", "ok", "ok", "ok"]);
        await Promise.all(opened.map((r) => (r.status === "fulfilled" ? r.value.db.close() : undefined)));
      } finally {
        await dropStore(databaseUrl);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }, 90_000);
});
