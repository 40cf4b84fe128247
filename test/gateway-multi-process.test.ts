// The gateway in two real server processes behind a plain round-robin balancer (no sticky
// sessions): 2025-11-25 sessions, including a sampling request answered through the other
// process, and 2026-07-28 stateless requests. Tokens come from the token CLI.
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { closer, listen } from "./helpers/mcp-peers.js";
import { dropStore, provisionStore, raw } from "./helpers/server.js";
import { spawnServerProcess } from "./helpers/server-process.js";

const root = join(import.meta.dirname, "..");
const UPSTREAM_KEY = "sk_mp_upstream_0123456789";
let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
let v1: GatewayPeer;
let v2: GatewayPeer;

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

async function startProcess(): Promise<string> {
  return spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, processes);
}

/** A plain round-robin balancer: each request to the next backend, nothing kept together. */
async function startBalancer(backends: string[]) {
  let next = 0;
  const served: number[] = [];
  const server: Server = createServer((req, res) => {
    const index = next++ % backends.length;
    served.push(index);
    const target = new URL(req.url ?? "/", backends[index]);
    const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders(); // a GET stream's headers now, not with its first event
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, served, close: closer(server) };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-gw-mp-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  v1 = await startV1SessionPeer({ bearer: UPSTREAM_KEY });
  v2 = await startV2Peer();
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await v1?.close();
  await v2?.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the gateway in two processes behind a round-robin balancer", () => {
  test("when agents on 2025-11-25 (sessions, sampling) and on 2026-07-28 alternate between the processes, then every request works", async () => {
    const ws = `ws_gwmp_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_agent", "--workspace", ws, "--scope", "gateway");
    const listed = (await cli("list")).split("\n").filter((line) => line.includes(ws));
    expect(listed.map((line) => line.split("\t")[3]).sort()).toEqual(["admin", "gateway"]);

    const [a, b] = await Promise.all([startProcess(), startProcess()]);
    const balancer = await startBalancer([a, b]);
    try {
      const create = async (name: string, body: Record<string, unknown>) => {
        const res = await raw(a, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name, ...body }) });
        expect(res.status, res.text).toBe(201);
        return `${balancer.url}/api/mcp-servers/${res.json.id}/mcp`;
      };
      const legacyEndpoint = await create("legacy", { url: v1.url, authType: "api_key", apiKey: UPSTREAM_KEY });
      const modernEndpoint = await create("modern", { url: v2.url });
      // The gateway token is refused by the rest of the API, on either process.
      expect((await raw(balancer.url, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token: agent })).status).toBe(403);
      expect((await raw(balancer.url, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token: agent })).status).toBe(403);

      const headers = { Authorization: `Bearer ${agent}` };
      const legacy = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
      legacy.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", model: "test", content: { type: "text", text: "4" } }));
      const legacyTransport = new V1Transport(new URL(legacyEndpoint), { requestInit: { headers } });
      await legacy.connect(legacyTransport);
      const before = balancer.served.length;
      for (let i = 0; i < 4; i++) {
        expect(await legacy.callTool({ name: "echo", arguments: { text: `round ${i}` } })).toMatchObject({ content: [{ text: `round ${i}` }] });
      }
      // The sampling request arrives on one process's stream; the agent's answer goes to the other.
      expect(await legacy.callTool({ name: "ask" })).toMatchObject({ content: [{ text: "model said 4" }] });
      const used = new Set(balancer.served.slice(before));
      expect(used).toEqual(new Set([0, 1]));
      await legacyTransport.terminateSession();
      expect(v1.openSessions()).toBe(0);
      await legacy.close();

      const modern = new V2Client({ name: "agent-v2", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
      await modern.connect(new V2Transport(new URL(modernEndpoint), { requestInit: { headers } }));
      for (let i = 0; i < 4; i++) {
        expect(await modern.callTool({ name: "echo", arguments: { text: `modern ${i}` } })).toMatchObject({ content: [{ text: `modern ${i}` }] });
      }
      await modern.close();
    } finally {
      await balancer.close();
    }
  }, 120_000);

  test("when agents use the workspace endpoint through both processes, then calls, lists, progress and list_changed on the session's GET stream work, each process keeps at most one upstream session, and stopping them ends those sessions upstream", async () => {
    const ws = `ws_gwmp_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_agent", "--workspace", ws, "--scope", "gateway");
    const mine: ChildProcess[] = [];
    const [a, b] = await Promise.all([spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine), spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine)]);
    processes.push(...mine);
    const balancer = await startBalancer([a, b]);
    try {
      for (const [name, body] of [
        ["Legacy", { url: v1.url, authType: "api_key", apiKey: UPSTREAM_KEY }],
        ["Modern", { url: v2.url }],
      ] as const) {
        const res = await raw(a, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name, ...body }) });
        expect(res.status, res.text).toBe(201);
      }
      const endpoint = new URL(`${balancer.url}/api/workspaces/${ws}/mcp`);
      const headers = { Authorization: `Bearer ${agent}` };
      const opened = v1.sessionsOpened!();
      const open = v1.openSessions();
      const legacy = new V1Client({ name: "agent-v1", version: "1.0.0" });
      const changed: string[] = [];
      legacy.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed.push("tools"));
      let streamOpen!: () => void;
      const streaming = new Promise<void>((resolve) => (streamOpen = resolve));
      const telling: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if ((init?.method ?? "GET") === "GET" && response.status === 200) streamOpen();
        return response;
      };
      // Its session is sealed: initialize, the GET stream and the calls land on either process.
      await legacy.connect(new V1Transport(endpoint, { requestInit: { headers }, fetch: telling }));
      const modern = new V2Client({ name: "agent-v2", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
      await modern.connect(new V2Transport(endpoint, { requestInit: { headers } }));
      const before = balancer.served.length;
      for (let i = 0; i < 10; i++) {
        const client = i % 2 ? legacy : modern;
        expect(await client.callTool({ name: "legacy__echo", arguments: { text: `ws ${i}` } })).toMatchObject({ content: [{ text: `ws ${i}` }] });
        expect(await client.callTool({ name: "modern__echo", arguments: { text: `m ${i}` } })).toMatchObject({ content: [{ text: `m ${i}` }] });
      }
      const progress: number[] = [];
      await legacy.callTool({ name: "legacy__work" }, undefined, { onprogress: (p) => void progress.push(p.progress) });
      expect(progress).toEqual([1, 2]);
      expect((await legacy.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(["legacy__echo", "modern__echo"]));
      expect((await modern.listResources()).resources.map((r) => r.uri)).toEqual(["mcpws://legacy/mem%3A%2F%2Fgreeting"]);
      expect(new Set(balancer.served.slice(before))).toEqual(new Set([0, 1]));
      // A member's tools change: the agent's GET stream, on whichever process holds it, says so.
      await streaming;
      await legacy.callTool({ name: "legacy__grow" });
      await vi.waitFor(() => expect(changed).toContain("tools"), { timeout: 10_000 });
      expect((await legacy.listTools()).tools.map((t) => t.name)).toContain("legacy__grown");
      expect(v1.sessionsOpened!() - opened).toBeLessThanOrEqual(2);
      await legacy.close();
      await modern.close();

      for (const p of mine) p.kill("SIGTERM");
      await Promise.all(mine.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
      expect(v1.openSessions()).toBe(open);
    } finally {
      await balancer.close();
    }
  }, 120_000);

  test("when a 2025-era agent of the workspace endpoint subscribes and unsubscribes through both processes, then updates reach its GET stream whichever process took them, an unsubscribe either takes releases the upstream, an edited record's new upstream session is subscribed again, and ending the session releases them", async () => {
    const ws = `ws_gwmp_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_agent", "--workspace", ws, "--scope", "gateway");
    const mine: ChildProcess[] = [];
    const [a, b] = await Promise.all([spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine), spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine)]);
    processes.push(...mine);
    const balancer = await startBalancer([a, b]);
    try {
      const res = await raw(a, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Subs", url: v1.url, authType: "api_key", apiKey: UPSTREAM_KEY }) });
      expect(res.status, res.text).toBe(201);
      const legacy = new V1Client({ name: "agent-v1", version: "1.0.0" });
      const updated: string[] = [];
      legacy.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
      let streamOpen!: () => void;
      const streaming = new Promise<void>((resolve) => (streamOpen = resolve));
      const telling: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if ((init?.method ?? "GET") === "GET" && response.status === 200) streamOpen();
        return response;
      };
      const transport = new V1Transport(new URL(`${balancer.url}/api/workspaces/${ws}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${agent}` } }, fetch: telling });
      await legacy.connect(transport);
      await streaming;
      // Server URIs unique to this test: the peer is shared with the other tests.
      const [one, two] = [`mem://subs-${ws}/1`, `mem://subs-${ws}/2`];
      const agentUri = (uri: string) => `mcpws://subs/${encodeURIComponent(uri)}`;
      const counts = () => [v1.subscribed!(one), v1.subscribed!(two)];

      // Two in a row: the balancer alternates, so one is taken by the process without the GET stream.
      const before = balancer.served.length;
      expect(await legacy.subscribeResource({ uri: agentUri(one) })).toEqual({});
      expect(await legacy.subscribeResource({ uri: agentUri(two) })).toEqual({});
      expect(new Set(balancer.served.slice(before))).toEqual(new Set([0, 1]));
      await vi.waitFor(() => expect(counts()).toEqual([1, 1]), { timeout: 10_000 });
      updated.length = 0;
      v1.touch!(one);
      v1.touch!(two);
      await vi.waitFor(() => expect(new Set(updated)).toEqual(new Set([agentUri(one), agentUri(two)])), { timeout: 10_000 });

      // Unsubscribed in the other order, one request apart: each is taken by the other process than its subscribe.
      await legacy.ping();
      expect(await legacy.unsubscribeResource({ uri: agentUri(one) })).toEqual({});
      expect(await legacy.unsubscribeResource({ uri: agentUri(two) })).toEqual({});
      await vi.waitFor(() => expect(counts()).toEqual([0, 0]), { timeout: 10_000 });

      // A record edit replaces the upstream session: the new one is subscribed again.
      updated.length = 0;
      expect(await legacy.subscribeResource({ uri: agentUri(one) })).toEqual({});
      await vi.waitFor(() => expect(updated).toEqual([agentUri(one)]), { timeout: 10_000 });
      expect(counts()).toEqual([1, 0]);
      const opened = v1.sessionsOpened!();
      updated.length = 0;
      const patched = await raw(a, "PATCH", `/api/mcp-servers/${res.json.id}`, { token: admin, body: JSON.stringify({ apiKey: UPSTREAM_KEY }) });
      expect(patched.status, patched.text).toBe(200);
      // The peer tells each new subscription at once: the new session's arrives.
      await vi.waitFor(() => expect(updated).toEqual([agentUri(one)]), { timeout: 10_000 });
      expect(v1.sessionsOpened!()).toBeGreaterThan(opened);
      expect(counts()).toEqual([1, 0]);
      updated.length = 0;
      v1.touch!(one);
      await vi.waitFor(() => expect(updated).toEqual([agentUri(one)]), { timeout: 10_000 });

      // Ending the session (on whichever process) releases its subscriptions upstream.
      await transport.terminateSession();
      await vi.waitFor(() => expect(counts()).toEqual([0, 0]), { timeout: 10_000 });
      await legacy.close();
    } finally {
      await balancer.close();
    }
  }, 120_000);

  test("when a 2025-era agent of the workspace endpoint sets its log level on one process, then calls served by either process pass on only messages at that level or above", async () => {
    const ws = `ws_gwmp_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_agent", "--workspace", ws, "--scope", "gateway");
    const mine: ChildProcess[] = [];
    const [a, b] = await Promise.all([spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine), spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine)]);
    processes.push(...mine);
    const balancer = await startBalancer([a, b]);
    try {
      const res = await raw(a, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Lv", url: v1.url, authType: "api_key", apiKey: UPSTREAM_KEY }) });
      expect(res.status, res.text).toBe(201);
      const legacy = new V1Client({ name: "agent-v1", version: "1.0.0" });
      const logs: { level: string; logger?: string }[] = [];
      legacy.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push({ level: n.params.level, logger: n.params.logger }));
      const transport = new V1Transport(new URL(`${balancer.url}/api/workspaces/${ws}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${agent}` } } });
      await legacy.connect(transport);
      await legacy.setLoggingLevel("error");
      const before = balancer.served.length;
      for (let i = 0; i < 4; i++) expect(await legacy.callTool({ name: "lv__report" })).toMatchObject({ content: [{ text: "reported" }] });
      expect(new Set(balancer.served.slice(before))).toEqual(new Set([0, 1]));
      expect(logs).toEqual(Array.from({ length: 4 }, () => ({ level: "error", logger: "lv__disk" })));
      await transport.terminateSession();
      await legacy.close();
    } finally {
      await balancer.close();
    }
  }, 120_000);

  test("when upstreams ask agents of the workspace endpoint for sampling and each answer lands on whichever process the balancer picks, then every answer reaches the upstream call that asked; a session ended on one process is refused by both", async () => {
    const ws = `ws_gwmp_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_agent", "--workspace", ws, "--scope", "gateway");
    const mine: ChildProcess[] = [];
    // A lost answer shows as the upstream call timing out: kept short so that this fails fast.
    const own = { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_TOOL_TIMEOUT_MS: "6000" };
    const [a, b] = await Promise.all([spawnServerProcess(root, own, mine), spawnServerProcess(root, own, mine)]);
    processes.push(...mine);
    const balancer = await startBalancer([a, b]);
    try {
      const res = await raw(a, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Legacy", url: v1.url, authType: "api_key", apiKey: UPSTREAM_KEY }) });
      expect(res.status, res.text).toBe(201);
      const endpoint = new URL(`${balancer.url}/api/workspaces/${ws}/mcp`);
      const headers = { Authorization: `Bearer ${agent}` };
      const one = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
      one.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", model: "test", content: { type: "text", text: "four" } }));
      await one.connect(new V1Transport(endpoint, { requestInit: { headers } }));
      const two = new V2Client({ name: "agent-v2", version: "1.0.0" }, { capabilities: { sampling: {} }, versionNegotiation: { mode: "legacy" } });
      two.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "test", content: { type: "text" as const, text: "cuatro" } }));
      await two.connect(new V2Transport(endpoint, { requestInit: { headers } }));
      for (let i = 0; i < 3; i++) {
        expect(await one.callTool({ name: "legacy__ask" })).toMatchObject({ content: [{ text: "model said four" }] });
        expect(await two.callTool({ name: "legacy__ask" })).toMatchObject({ content: [{ text: "model said cuatro" }] });
      }
      // Both at once, so that the answers cross while both calls wait.
      const [x, y] = await Promise.all([one.callTool({ name: "legacy__ask" }), two.callTool({ name: "legacy__ask" })]);
      expect(x).toMatchObject({ content: [{ text: "model said four" }] });
      expect(y).toMatchObject({ content: [{ text: "model said cuatro" }] });
      // Some answers were served by the other process than the call that asked (the balancer alternates).
      expect(new Set(balancer.served)).toEqual(new Set([0, 1]));
      await one.close();
      await two.close();

      // A session ended on one process is refused by both: at once by that one, within a second by the other.
      const path = `/api/workspaces/${ws}/mcp`;
      const init = await raw(balancer.url, "POST", path, {
        token: agent,
        headers: { accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
      });
      const session = init.headers.get("mcp-session-id")!;
      const ping = (base: string) => raw(base, "POST", path, { token: agent, headers: { accept: "application/json, text/event-stream", "mcp-session-id": session }, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }) });
      expect([(await ping(a)).status, (await ping(b)).status]).toEqual([200, 200]);
      expect((await raw(a, "DELETE", path, { token: agent, headers: { "mcp-session-id": session } })).status).toBe(204);
      expect((await ping(a)).status).toBe(404);
      await vi.waitFor(async () => expect((await ping(b)).status).toBe(404), { timeout: 5000, interval: 200 });
    } finally {
      await balancer.close();
    }
  }, 120_000);

  test("when a 2026-07-28 agent's call is held for a 2025-era member's sampling request and its retry reaches the other process, then that process refuses it (-32602, held by another process) and delivers nothing; the retry on the holding process gets the result", async () => {
    const ws = `ws_gwmp_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_admin", "--workspace", ws);
    const agent = await cli("create", "--user", "usr_agent", "--workspace", ws, "--scope", "gateway");
    const mine: ChildProcess[] = [];
    const [a, b] = await Promise.all([spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine), spawnServerProcess(root, { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, mine)]);
    processes.push(...mine);
    const res = await raw(a, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Held", url: v1.url, authType: "api_key", apiKey: UPSTREAM_KEY }) });
    expect(res.status, res.text).toBe(201);
    const path = `/api/workspaces/${ws}/mcp`;
    const call = (base: string, params: object) =>
      fetch(base + path, {
        method: "POST",
        headers: { authorization: `Bearer ${agent}`, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "held__ask" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "held__ask", ...params, _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { sampling: {} }, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" } } } }),
      }).then(async (r) => {
        const text = await r.text();
        const data = text.split("\n").find((l) => l.startsWith("data: "));
        return JSON.parse(data ? data.slice(6) : text) as { result?: Record<string, unknown>; error?: { code: number; message: string } };
      });
    const first = await call(a, {});
    expect(first.result?.resultType, JSON.stringify(first)).toBe("input_required");
    const [key] = Object.keys(first.result!.inputRequests as object);
    const retry = (text: string) => ({ inputResponses: { [key]: { role: "assistant", model: "m", content: { type: "text", text } } }, requestState: first.result!.requestState });

    const elsewhere = await call(b, retry("from b"));
    expect(elsewhere.error?.code, JSON.stringify(elsewhere)).toBe(-32602);
    expect(elsewhere.error?.message).toMatch(/held by another process/);
    expect(JSON.stringify(v1.messages)).not.toContain("from b");

    const home = await call(a, retry("from a"));
    expect(home.result?.content, JSON.stringify(home)).toEqual([{ type: "text", text: "model said from a" }]);
  }, 120_000);
});
