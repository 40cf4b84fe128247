// GET /metrics after agents cancel their own requests (closing the connection, or
// notifications/cancelled) on both MCP endpoints: mcp_api_upstream_failures_total does not move,
// and the upstream exchange is counted with outcome cancelled. A deadline still counts as a
// timeout failure (series per server: MCP_API_METRICS_DETAIL=server). A real server process, SDK v1 agents and an SDK v1 upstream on loopback that
// answers in JSON (so its response headers wait for the answer) and is slow to open its GET stream.
import { execFile, type ChildProcess } from "node:child_process";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { z } from "zod";
import { closer, listen } from "../helpers/mcp-peers.js";
import { dropStore, provisionStore, raw } from "../helpers/server.js";
import { spawnServerProcess } from "../helpers/server-process.js";

const root = join(import.meta.dirname, "../..");
const METRICS_TOKEN = "metrics-token-cancel-3b9e";
const TOOL_TIMEOUT_MS = 1500;

let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
let peer: JsonPeer;
let base: string;
let metricsUrl: string;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface JsonPeer {
  url: string;
  /** Every JSON-RPC message POSTed to it, in order. */
  messages: Record<string, unknown>[];
  /** GET streams asked for and not opened yet. */
  waitingStreams(): number;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
}

/** A sessionful SDK v1 server answering in JSON (tools echo and slow); with `holdStreams`, a session's GET stream is not answered while its client waits. */
async function startJsonPeer({ holdStreams = false } = {}): Promise<JsonPeer> {
  const messages: Record<string, unknown>[] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let waiting = 0;
  const http = createHttpServer(async (req, res) => {
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? sessions.get(sid) : undefined;
    if (holdStreams && req.method === "GET" && transport) {
      waiting++;
      res.on("close", () => waiting--);
      return;
    }
    const body = req.method === "POST" ? await readBody(req) : undefined;
    if (body !== undefined) messages.push(...((Array.isArray(body) ? body : [body]) as Record<string, unknown>[]));
    if (!transport) {
      const server = new McpServer({ name: "json-upstream", version: "1.0.0" });
      server.registerTool("echo", { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: "text", text }] }));
      server.registerTool("slow", { inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
        await new Promise((resolve) => {
          const t = setTimeout(resolve, ms);
          extra.signal.addEventListener("abort", () => (clearTimeout(t), resolve(null)));
        });
        return { content: [{ type: "text", text: "slept" }] };
      });
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomBytes(8).toString("hex"),
        enableJsonResponse: true,
        onsessioninitialized: (id) => void sessions.set(id, created),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      await server.connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, messages, waitingStreams: () => waiting, close: closer(http) };
}

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

/** Every series of `name` in a scrape, keyed by its label text. */
function series(scrape: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of scrape.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    out.set(/\{(.*)\}/.exec(line)?.[1] ?? "", Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}

/** The series of `name` for one MCP server that moved between two scrapes, and by how much (its server label left out). */
function moved(before: string, after: string, name: string, serverId: string): Record<string, number> {
  const was = series(before, name);
  const label = `server="${serverId}"`;
  const out: Record<string, number> = {};
  for (const [labels, n] of series(after, name)) {
    if (!labels.split(",").includes(label) || n === (was.get(labels) ?? 0)) continue;
    out[labels.split(",").filter((l) => l !== label).join(",")] = n - (was.get(labels) ?? 0);
  }
  return out;
}

async function scrape(): Promise<string> {
  const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  return res.text();
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-metrics-cancel-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  peer = await startJsonPeer();
  const metricsPort = await freePort();
  base = await spawnServerProcess(
    root,
    { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_TOOL_TIMEOUT_MS: String(TOOL_TIMEOUT_MS), MCP_API_METRICS_PORT: String(metricsPort), MCP_API_METRICS_TOKEN: METRICS_TOKEN, MCP_API_METRICS_DETAIL: "server" },
    processes,
  );
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await peer?.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

async function setup(upstream: JsonPeer = peer) {
  const ws = `ws_mcancel_${randomBytes(3).toString("hex")}`;
  const admin = await cli("create", "--user", "usr_mcancel_admin", "--workspace", ws);
  const token = await cli("create", "--user", "usr_mcancel_agent", "--workspace", ws, "--scope", "gateway");
  const created = await raw(base, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "member", url: upstream.url }) });
  expect(created.status, created.text).toBe(201);
  return { id: created.json.id as string, admin, token, perServer: `${base}/api/mcp-servers/${created.json.id}/mcp`, workspace: `${base}/api/workspaces/${ws}/mcp` };
}

async function agent(endpoint: string, token: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" });
  const transport = new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

/** Resolves once the upstream has been sent a tools/call of `slow` beyond the first `since` messages. */
const slowReached = (since: number) => vi.waitFor(() => expect(peer.messages.slice(since).some((m) => m.method === "tools/call" && (m.params as { name?: string }).name === "slow")).toBe(true), { timeout: 5000 });

/** Past the deadline a call left hanging would reach, so a failure counted late is seen too. */
const pastDeadline = () => new Promise((resolve) => setTimeout(resolve, TOOL_TIMEOUT_MS + 1000));

/** The upstream exchanges of `method` that moved, by outcome. */
const exchangesOf = (before: string, after: string, method: string, serverId: string) =>
  Object.fromEntries(
    Object.entries(moved(before, after, "mcp_api_upstream_duration_seconds_count", serverId))
      .filter(([labels]) => labels.includes(`method="${method}"`))
      .map(([labels, n]) => [/outcome="([^"]*)"/.exec(labels)![1], n]),
  );

describe.each([
  ["POST /api/mcp-servers/{id}/mcp", "perServer", ""],
  ["POST /api/workspaces/{workspaceId}/mcp", "workspace", "member__"],
] as const)("GET /metrics after %s calls the agent cancelled", (_route, endpointKind, prefix) => {
  test("when the agent closes its connection mid-call and then sends notifications/cancelled mid-call, then mcp_api_upstream_failures_total does not move and both upstream exchanges count as cancelled", async () => {
    const s = await setup();
    const { client, transport } = await agent(s[endpointKind], s.token);
    await client.callTool({ name: `${prefix}echo`, arguments: { text: "warm" } });
    const before = await scrape();

    // The agent closes its connection while the upstream works on the call.
    let since = peer.messages.length;
    const controller = new AbortController();
    const sent = fetch(s[endpointKind], {
      method: "POST",
      headers: {
        Authorization: `Bearer ${s.token}`,
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
        "MCP-Protocol-Version": transport.protocolVersion ?? "2025-11-25",
        ...(endpointKind === "perServer" ? { "Mcp-Session-Id": transport.sessionId! } : {}),
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 41, method: "tools/call", params: { name: `${prefix}slow`, arguments: { ms: 10_000 } } }),
      signal: controller.signal,
    }).then((res) => res.text());
    await slowReached(since);
    controller.abort();
    await expect(sent).rejects.toThrow();

    // The SDK agent cancels a call (notifications/cancelled).
    since = peer.messages.length;
    const cancel = new AbortController();
    const call = client.callTool({ name: `${prefix}slow`, arguments: { ms: 10_000 } }, undefined, { signal: cancel.signal });
    await slowReached(since);
    cancel.abort("changed my mind");
    await expect(call).rejects.toThrow();

    await pastDeadline();
    const after = await scrape();
    expect(moved(before, after, "mcp_api_upstream_failures_total", s.id)).toEqual({});
    expect(exchangesOf(before, after, "tools/call", s.id)).toEqual({ cancelled: 2 });
    await client.close();
  }, 30_000);

  test("when the member does not answer within MCP_API_TOOL_TIMEOUT_MS, then that still counts: one timeout failure and a timeout exchange", async () => {
    const s = await setup();
    const { client } = await agent(s[endpointKind], s.token);
    await client.callTool({ name: `${prefix}echo`, arguments: { text: "warm" } });
    const before = await scrape();
    await expect(client.callTool({ name: `${prefix}slow`, arguments: { ms: 10_000 } })).rejects.toThrow(/no answer within 1500 ms/);
    const after = await scrape();
    expect(moved(before, after, "mcp_api_upstream_failures_total", s.id)).toEqual({ 'class="timeout"': 1 });
    expect(exchangesOf(before, after, "tools/call", s.id)).toEqual({ timeout: 1 });
    await client.close();
  }, 30_000);
});

describe("GET /metrics after GET /api/mcp-servers/{id}/mcp the agent left", () => {
  test("when the agent closes its event stream before the member opened it, then mcp_api_upstream_failures_total does not move, the exchange counts as cancelled and the record has no lastError", async () => {
    const own = await startJsonPeer({ holdStreams: true });
    try {
      const s = await setup(own);
      const headers = { Authorization: `Bearer ${s.token}`, Accept: "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25" };
      const init = await fetch(s.perServer, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
      });
      expect(init.status, await init.text()).toBe(200);
      const session = init.headers.get("mcp-session-id")!;
      const before = await scrape();
      const controller = new AbortController();
      const stream = fetch(s.perServer, { headers: { ...headers, "Mcp-Session-Id": session }, signal: controller.signal });
      await vi.waitFor(() => expect(own.waitingStreams()).toBe(1), { timeout: 5000 });
      controller.abort();
      await expect(stream).rejects.toThrow();
      await vi.waitFor(() => expect(own.waitingStreams()).toBe(0), { timeout: 5000 });
      const after = await scrape();
      expect(moved(before, after, "mcp_api_upstream_failures_total", s.id)).toEqual({});
      // A GET stream's method label is "other" (not one of the bounded MCP methods).
      expect(exchangesOf(before, after, "other", s.id)).toEqual({ cancelled: 1 });
      // Nor is it the record's failure.
      expect((await raw(base, "GET", `/api/mcp-servers/${s.id}`, { token: s.admin })).json).toMatchObject({ lastError: null });
    } finally {
      await own.close();
    }
  }, 30_000);
});
