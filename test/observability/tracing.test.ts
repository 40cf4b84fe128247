// OpenTelemetry traces from a real server process to a real OTLP/HTTP receiver on loopback
// (a small server decoding the JSON export requests), with a real SDK upstream recording the
// traceparent it is sent: one agent tools/call is one trace, parented correctly.
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV2Peer, type GatewayPeer } from "../helpers/gateway-peers.js";
import { closer, listen } from "../helpers/mcp-peers.js";
import { dropStore, provisionStore, raw } from "../helpers/server.js";
import { spawnServerProcess } from "../helpers/server-process.js";

const root = join(import.meta.dirname, "../..");
const UPSTREAM_KEY = "sk_tracing_upstream_4b8e1f";
const ARGUMENT = "argument-text-2a7c";
const MODERN = { accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28" };
const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

/** OTLP/JSON ids are hex (the spec) — base64 too, in case an exporter sends bytes that way. */
const hex = (id: string | undefined) => (!id ? "" : /^[0-9a-f]+$/.test(id) ? id : Buffer.from(id, "base64").toString("hex"));

function attributesOf(list: { key: string; value: Record<string, unknown> }[] = []) {
  return Object.fromEntries(list.map(({ key, value }) => [key, value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue]));
}

async function startReceiver() {
  const spans: OtlpSpan[] = [];
  const bodies: string[] = [];
  const paths: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    paths.push(`${req.method} ${req.url} ${req.headers["content-type"]}`);
    bodies.push(text);
    const body = JSON.parse(text) as { resourceSpans: { scopeSpans: { spans: (Omit<OtlpSpan, "attributes"> & { attributes: never })[] }[] }[] };
    for (const rs of body.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? []) spans.push({ ...s, traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), attributes: attributesOf(s.attributes) });
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, spans, bodies, paths, close: closer(server) };
}

let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
let peer: GatewayPeer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-tracing-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  peer = await startV2Peer();
  receiver = await startReceiver();
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await peer?.close();
  await receiver?.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("OpenTelemetry traces", () => {
  test("when an agent sends one tools/call with its traceparent, then one trace holds the HTTP, database and upstream spans, parented correctly, and the upstream saw the same trace id", async () => {
    const base = await spawnServerProcess(
      root,
      { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true", OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_SERVICE_NAME: "mcp-api-under-test" },
      processes,
    );
    const ws = `ws_tracing_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_tracing_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_tracing_agent", "--workspace", ws, "--scope", "gateway");
    const created = await raw(base, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "upstream", url: peer.url, authType: "api_key", apiKey: UPSTREAM_KEY }) });
    expect(created.status, created.text).toBe(201);

    const traceId = randomBytes(16).toString("hex");
    const agentSpan = randomBytes(8).toString("hex");
    const before = peer.requests.length;
    const answer = await raw(base, "POST", `/api/mcp-servers/${created.json.id}/mcp`, {
      token: agent,
      headers: { ...MODERN, "mcp-method": "tools/call", "mcp-name": "echo", traceparent: `00-${traceId}-${agentSpan}-01` },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: ARGUMENT }, _meta: META } }),
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.result.content[0].text).toBe(ARGUMENT);

    let trace: OtlpSpan[] = [];
    for (let i = 0; i < 100; i++) {
      trace = receiver.spans.filter((s) => s.traceId === traceId);
      if (trace.some((s) => s.kind === 2)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(receiver.paths[0]).toMatch(/^POST \/v1\/traces application\/json/);
    const server = trace.filter((s) => s.kind === 2);
    expect(server.map((s) => s.name)).toEqual(["POST /api/mcp-servers/{id}/mcp"]);
    expect(server[0].parentSpanId).toBe(agentSpan);
    expect(server[0].attributes).toMatchObject({ "http.request.method": "POST", "http.route": "/api/mcp-servers/{id}/mcp", "http.response.status_code": 200, "mcp_api.operation_id": "sendMcpServerMessage", "mcp.method.name": "tools/call", "gen_ai.tool.name": "echo" });

    const upstream = trace.filter((s) => s.kind === 3 && s.attributes["mcp.method.name"] !== undefined);
    expect(upstream).toHaveLength(1);
    expect(upstream[0]).toMatchObject({ name: "tools/call echo", parentSpanId: server[0].spanId });
    expect(upstream[0].attributes).toMatchObject({ "mcp.method.name": "tools/call", "gen_ai.tool.name": "echo", "gen_ai.operation.name": "execute_tool", "mcp_api.server.id": created.json.id, "mcp_api.outcome": "ok", "http.response.status_code": 200 });

    const statements = trace.filter((s) => s.attributes["db.system.name"] === "sqlite" || s.attributes["db.system.name"] === "postgresql");
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.map((s) => s.name)).toContain("select mcp_servers");
    for (const s of statements) expect(s.parentSpanId).toBe(server[0].spanId);

    // The upstream got the gateway's traceparent: the same trace, the upstream span as parent.
    const seen = peer.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0].traceparent).toBe(`00-${traceId}-${upstream[0].spanId}-01`);

    for (const secret of [UPSTREAM_KEY, ARGUMENT, admin, agent]) expect(receiver.bodies.join("\n"), secret).not.toContain(secret);
    expect(receiver.bodies[0]).toContain("mcp-api-under-test");
  }, 120_000);
});
