// The gateway's per-process caches, checked for correctness across real server processes on
// one store: the record and its opened credential (trusted for RECORD_CACHE_MS, dropped at
// once by a write in the same process), and the buffered tool_called events (written at
// graceful shutdown, whatever the flush interval).
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import { RECORD_CACHE_MS } from "../server/domain/gateway/record-cache.js";
import { closer, listen } from "./helpers/mcp-peers.js";
import { createMcpServerRepo, type StoredServer } from "../server/data/mcp-server-repo.js";
import { createGatewayService } from "../server/domain/gateway/service.js";
import { createSessionCodec } from "../server/domain/gateway/session-codec.js";
import { dropStore, provisionStore, raw, startServer } from "./helpers/server.js";
import { spawnServerProcess } from "./helpers/server-process.js";

const root = join(import.meta.dirname, "..");
let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
let upstream: { url: string; seen: IncomingHttpHeaders[]; close: () => Promise<void> };
let admin: string;

/** A stateless SDK v1 upstream with an `echo` tool that records every request's headers. */
async function startUpstream() {
  const seen: IncomingHttpHeaders[] = [];
  const http = createServer(async (req, res) => {
    seen.push(req.headers);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const server = new McpServer({ name: "cache-upstream", version: "1.0.0" });
    server.registerTool("echo", { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: "text", text }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => void transport.close());
    await server.connect(transport);
    await transport.handleRequest(req, res, chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined);
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, seen, close: closer(http) };
}

const startProcess = (extra: Record<string, string> = {}) => spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true", ...extra }, processes);

async function toolCall(base: string, id: string, text: string) {
  return raw(base, "POST", `/api/mcp-servers/${id}/mcp`, {
    token: admin,
    headers: { accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text } } }),
  });
}

async function register(base: string, ws: string, apiKey: string): Promise<string> {
  const res = await raw(base, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: `cached ${randomBytes(3).toString("hex")}`, url: upstream.url, authType: "api_key", apiKey }) });
  expect(res.status, res.text).toBe(201);
  return res.json.id;
}

let ws: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-gw-cache-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  upstream = await startUpstream();
  ws = `ws_gwcache_${randomBytes(3).toString("hex")}`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", "create", "--user", "usr_cache", "--workspace", ws], { cwd: root, env, encoding: "utf8" });
  admin = stdout.trim();
}, 60_000);

afterAll(async () => {
  for (const p of processes) if (p.exitCode === null) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await upstream?.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the gateway's record and credential cache", () => {
  test("when the credential is replaced through another process, then after the bound the old one is never sent again; through the same process, at once", async () => {
    const [a, b] = await Promise.all([startProcess(), startProcess()]);
    const id = await register(a, ws, "sk_cache_first_0001");
    // A reads the record and opens the credential, and so caches both.
    expect((await toolCall(a, id, "warm")).status).toBe(200);
    expect(upstream.seen.at(-1)!.authorization).toBe("Bearer sk_cache_first_0001");

    const patched = await raw(b, "PATCH", `/api/mcp-servers/${id}`, { token: admin, body: JSON.stringify({ apiKey: "sk_cache_second_0002" }) });
    expect(patched.status, patched.text).toBe(200);
    await sleep(RECORD_CACHE_MS + 200); // the documented bound, plus scheduling slack
    const from = upstream.seen.length;
    for (let i = 0; i < 5; i++) expect((await toolCall(a, id, `after ${i}`)).status).toBe(200);
    const sent = upstream.seen.slice(from).map((h) => h.authorization);
    expect(sent).toHaveLength(5);
    expect(sent.every((v) => v === "Bearer sk_cache_second_0002")).toBe(true);

    // A write through A itself drops A's entry before it answers: the next call uses the new key.
    expect((await raw(a, "PATCH", `/api/mcp-servers/${id}`, { token: admin, body: JSON.stringify({ apiKey: "sk_cache_third_0003" }) })).status).toBe(200);
    expect((await toolCall(a, id, "same process")).status).toBe(200);
    expect(upstream.seen.at(-1)!.authorization).toBe("Bearer sk_cache_third_0003");
  }, 60_000);

  test("when the record is deleted through another process, then after the bound the gateway answers 404 and the upstream sees nothing more", async () => {
    const [a, b] = await Promise.all([startProcess(), startProcess()]);
    const id = await register(a, ws, "sk_cache_deleted_0004");
    expect((await toolCall(a, id, "warm")).status).toBe(200);
    expect((await raw(b, "DELETE", `/api/mcp-servers/${id}`, { token: admin })).status).toBe(204);
    await sleep(RECORD_CACHE_MS + 200);
    const from = upstream.seen.length;
    expect((await toolCall(a, id, "gone")).status).toBe(404);
    expect(upstream.seen.length).toBe(from);
  }, 60_000);
});

describe("buffered tool_called events", () => {
  test("when the server stops gracefully with events still waiting to be written, then every one of them is in the store", async () => {
    // A flush interval far longer than the test: only the shutdown flush can write them.
    const [buffering, reader] = await Promise.all([startProcess({ MCP_API_AUDIT_FLUSH_MS: "600000" }), startProcess()]);
    const id = await register(reader, ws, "sk_cache_audit_0005");
    for (let i = 0; i < 7; i++) expect((await toolCall(buffering, id, `audited ${i}`)).status).toBe(200);
    const toolEvents = async () => {
      const res = await raw(reader, "GET", `/api/mcp-servers/${id}/events?limit=100`, { token: admin });
      expect(res.status).toBe(200);
      return (res.json.data as { type: string }[]).filter((e) => e.type === "tool_called").length;
    };
    expect(await toolEvents()).toBe(0); // still in the buffering process's memory

    const child = processes.at(-2)!; // the buffering process (spawned first of the two)
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await toolEvents()).toBe(7);
  }, 60_000);
});

describe("an upstream's status recorded from a cached record", () => {
  // The record an exchange works from may be a version behind once another exchange on it records
  // its outcome first (a call whose answer reached the agent before its success was written).
  test("when another exchange wrote the record's status after this one read it, then this one's failure is still recorded; after a person's edit, it is not", async () => {
    const srv = await startServer();
    try {
      const ws2 = `ws_gwstatus_${randomBytes(3).toString("hex")}`;
      const token = await srv.token([ws2], "usr_status");
      const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws2, name: "status", url: "https://mcp.example.com/mcp" }) });
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;
      const repo = createMcpServerRepo(srv.services.db.knex, srv.services.box, (n) => n.toLowerCase(), (n) => n.toLowerCase());
      const gateway = createGatewayService({
        repo,
        audit: { append: async () => {} } as never,
        oauthToken: async (stored: StoredServer) => ({ ok: false, stored, error: { class: "auth", message: "no", httpStatus: null } }) as never,
        sessions: createSessionCodec([Buffer.alloc(32, 1)]),
      });
      const actor = await srv.services.tokens.authenticate(`Bearer ${token}`);
      const status = async () => (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).json;

      const late = await gateway.open(actor, id, undefined);
      await (await gateway.open(actor, id, undefined)).recordSuccess();
      expect(await status()).toMatchObject({ connectorStatus: "connected", lastError: null });
      await late.recordFailure({ class: "timeout", message: "no answer within 1500 ms", httpStatus: null });
      expect(await status()).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });

      const beforeEdit = await gateway.open(actor, id, undefined);
      await (await gateway.open(actor, id, undefined)).recordSuccess();
      const etag = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).headers.get("etag") ?? "";
      const edited = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, headers: { "if-match": etag }, body: JSON.stringify({ name: "status edited" }) });
      expect(edited.status, edited.text).toBe(200);
      await beforeEdit.recordFailure({ class: "timeout", message: "no answer within 1500 ms", httpStatus: null });
      expect(await status()).toMatchObject({ connectorStatus: "connected", lastError: null });
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
