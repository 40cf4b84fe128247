// GET /metrics on its own listener of a real server process, after a known mix of REST calls,
// gateway calls (both endpoints), an upstream failure and a rate-limit refusal: each counter
// moved by exactly that mix, and no label holds a secret, a token, a user or an id.
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV2Peer, type GatewayPeer } from "../helpers/gateway-peers.js";
import { closedPortUrl } from "../helpers/mcp-peers.js";
import { dropStore, provisionStore, raw } from "../helpers/server.js";
import { spawnServerProcess } from "../helpers/server-process.js";

const root = join(import.meta.dirname, "../..");
const UPSTREAM_KEY = "sk_metrics_upstream_5f3a9c";
const METRICS_TOKEN = "metrics-token-7d1e2b";
const ARGUMENT = "argument-text-9c4d";
const LIMIT = 30;
const ACCEPT = { accept: "application/json, text/event-stream" };
const MODERN = { ...ACCEPT, "mcp-protocol-version": "2026-07-28" };
const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };

let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
let peer: GatewayPeer;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

/** The value of one series in a scrape (0 when absent). */
function value(scrape: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of scrape.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    const inner = /\{(.*)\}/.exec(line)?.[1] ?? "";
    const have = inner.split(",").filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-metrics-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  peer = await startV2Peer();
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await peer?.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("GET /metrics", () => {
  test("when a known mix of REST calls, gateway calls, an upstream failure and a rate-limit refusal has run, then the counters moved by exactly that mix and no label holds a secret or id", async () => {
    const metricsPort = await freePort();
    const base = await spawnServerProcess(
      root,
      { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_RATE_LIMIT: String(LIMIT), MCP_API_METRICS_PORT: String(metricsPort), MCP_API_METRICS_TOKEN: METRICS_TOKEN },
      processes,
    );
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const scrape = async () => {
      const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      return res.text();
    };
    const before = await scrape();

    const ws = `ws_metrics_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_metrics_admin", "--workspace", ws);
    const flood = await cli("create", "--user", "usr_metrics_flood", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_metrics_agent", "--workspace", ws, "--scope", "gateway");
    const tokenIds = (await cli("list")).split("\n").filter((l) => l.includes(ws)).map((l) => l.split("\t")[0]);
    expect(tokenIds).toHaveLength(3);

    // REST: two creates, one 404, then the flood token's LIMIT reads and one refusal.
    const good = await raw(base, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "upstream", url: peer.url, authType: "api_key", apiKey: UPSTREAM_KEY }) });
    expect(good.status, good.text).toBe(201);
    const broken = await raw(base, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "broken", url: await closedPortUrl() }) });
    expect(broken.status, broken.text).toBe(201);
    expect((await raw(base, "GET", "/api/mcp-servers/mcp_01JZZZZZZZZZZZZZZZZZZZZZZZ", { token: admin })).status).toBe(404);
    for (let i = 0; i < LIMIT; i++) expect((await raw(base, "GET", `/api/mcp-servers/${good.json.id}`, { token: flood })).status).toBe(200);
    expect((await raw(base, "GET", `/api/mcp-servers/${good.json.id}`, { token: flood })).status).toBe(429);

    // The per-server endpoint: two tool calls and a list that work, one call to a server that is down.
    const call = (id: string, n: number) =>
      raw(base, "POST", `/api/mcp-servers/${id}/mcp`, {
        token: agent,
        headers: { ...MODERN, "mcp-method": "tools/call", "mcp-name": "echo" },
        body: JSON.stringify({ jsonrpc: "2.0", id: n, method: "tools/call", params: { name: "echo", arguments: { text: ARGUMENT }, _meta: META } }),
      });
    for (const n of [1, 2]) {
      const r = await call(good.json.id, n);
      expect(r.status, r.text).toBe(200);
      expect(r.json.result.content[0].text).toBe(ARGUMENT);
    }
    const listed = await raw(base, "POST", `/api/mcp-servers/${good.json.id}/mcp`, {
      token: agent,
      headers: { ...MODERN, "mcp-method": "tools/list" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list", params: { _meta: META } }),
    });
    expect(listed.status, listed.text).toBe(200);
    const down = await call(broken.json.id, 4);
    expect(down.status).toBe(200);
    expect(down.json.error.code).toBeLessThan(0);

    // The workspace endpoint: one tool call, answered by the one working server.
    const viaWorkspace = await raw(base, "POST", `/api/workspaces/${ws}/mcp`, {
      token: agent,
      headers: { ...MODERN, "mcp-method": "tools/call", "mcp-name": "upstream__echo" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "upstream__echo", arguments: { text: ARGUMENT }, _meta: META } }),
    });
    expect(viaWorkspace.status, viaWorkspace.text).toBe(200);
    expect(viaWorkspace.text).toContain(ARGUMENT);

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    const http = (operation: string, status_class: string) => moved("mcp_api_http_requests_total", { operation, status_class });
    expect(http("createMcpServer", "2xx")).toBe(2);
    expect(http("getMcpServer", "2xx")).toBe(LIMIT);
    expect(http("getMcpServer", "4xx")).toBe(2); // the 404 and the 429
    expect(http("sendMcpServerMessage", "2xx")).toBe(4);
    expect(http("sendWorkspaceMessage", "2xx")).toBe(1);
    expect(moved("mcp_api_http_request_duration_seconds_count", { operation: "getMcpServer", status_class: "2xx" })).toBe(LIMIT);

    const gw = (endpoint: string, method: string, outcome: string) => moved("mcp_api_gateway_messages_total", { endpoint, method, outcome });
    expect(gw("server", "tools/call", "ok")).toBe(2);
    expect(gw("server", "tools/list", "ok")).toBe(1);
    expect(gw("server", "tools/call", "upstream_error")).toBe(1);
    expect(gw("workspace", "tools/call", "ok")).toBe(1);
    expect(moved("mcp_api_gateway_message_duration_seconds_count", { endpoint: "server", method: "tools/call", outcome: "ok" })).toBe(2);

    expect(moved("mcp_api_upstream_failures_total", { class: "connect" })).toBe(1);
    expect(moved("mcp_api_upstream_duration_seconds_count", { method: "tools/call", outcome: "connect" })).toBe(1);
    // Two calls through the per-server endpoint, one through the workspace endpoint.
    expect(moved("mcp_api_upstream_duration_seconds_count", { method: "tools/call", outcome: "ok" })).toBe(3);
    expect(moved("mcp_api_upstream_duration_seconds_count", { method: "tools/list", outcome: "ok" })).toBe(1);
    expect(moved("mcp_api_rate_limited_total", { by: "token" })).toBe(1);
    // The workspace endpoint's call opened one upstream session, which its pool keeps.
    expect(moved("mcp_api_upstream_sessions_opened_total", {})).toBe(1);
    expect(value(after, "mcp_api_upstream_pool_sessions", {})).toBe(1);
    expect(after).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(after).toMatch(/^mcp_api_db_pool_connections\{state="used"\} \d/m);
    expect(after).toMatch(/^mcp_api_db_pool_wait_seconds_count \d/m);

    for (const secret of [UPSTREAM_KEY, METRICS_TOKEN, ARGUMENT, admin, flood, agent, ...tokenIds, "usr_metrics", ws, good.json.id, broken.json.id]) {
      expect(after, secret).not.toContain(secret);
    }

    // Not on the API port; the token is required.
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(metricsUrl)).status).toBe(401);
    expect((await fetch(metricsUrl, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  }, 120_000);
});
