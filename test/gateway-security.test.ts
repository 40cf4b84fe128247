// Issue 18 at the gateway: no upstream can stall the relay, a disabled server is really off,
// policy covers everything relayed, and sessions die with their origin. Each test has a
// hostile loopback peer that records what it receives.
import type { ServerResponse } from "node:http";
import { createMcpServerRepo, type Secrets, type StoredServer } from "../server/data/mcp-server-repo.js";
import { createGatewayService } from "../server/domain/gateway/service.js";
import { createSessionCodec } from "../server/domain/gateway/session-codec.js";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startHostilePeer, type HostilePeer, type Received } from "./helpers/hostile-peer.js";
import { startOAuthPeer } from "./helpers/oauth-peer.js";
import { startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let v2: GatewayPeer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_TOOL_TIMEOUT_MS: "60000" } });
  v2 = await startV2Peer();
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});
afterAll(async () => {
  await v2?.close();
  await srv?.stop();
});

async function hostile(...args: Parameters<typeof startHostilePeer>) {
  const p = await startHostilePeer(...args);
  cleanups.push(p.close);
  return p;
}

async function setup(url: string, extra: Record<string, unknown> = {}) {
  const ws = uniqueWorkspace("sec");
  const admin = await srv.token([ws], "usr_admin");
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "upstream", url, ...extra }) });
  expect(created.status, created.text).toBe(201);
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
  return { ws, admin, token, id: created.json.id as string, path: `/api/mcp-servers/${created.json.id}/mcp` };
}

const ACCEPT = { accept: "application/json, text/event-stream" };
const rpc = (method: string, id: number | null = 1, params?: Record<string, unknown>) =>
  JSON.stringify({ jsonrpc: "2.0", ...(id === null ? {} : { id }), method, ...(params ? { params } : {}) });

/** The one JSON-RPC message of a gateway answer, whether a JSON body or an SSE stream. */
function answerOf(res: { json: unknown; text: string }): unknown {
  if (res.json !== null) return res.json;
  const data = res.text.split("\n").filter((l) => l.startsWith("data: "));
  return data.length === 1 ? JSON.parse(data[0].slice(6)) : data.map((l) => JSON.parse(l.slice(6)));
}

describe("a dripping upstream (issue 18, item 2)", () => {
  test("when one workspace's upstream sends 3.5 MiB without a newline and then drips one byte at a time on many calls, then another workspace's calls are still answered while it drips", async () => {
    const dripping = new Set<ServerResponse>();
    const head = "data: " + "x".repeat(3.5 * 1024 * 1024);
    const peer: HostilePeer = await hostile((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(head);
      dripping.add(res);
      const timer = setInterval(() => res.write("y"), 1);
      res.on("close", () => {
        clearInterval(timer);
        dripping.delete(res);
      });
    });
    const a = await setup(peer.origin);
    const b = await setup(v2.url);

    const CALLS = 20;
    const agentGone = new AbortController();
    const stalled = Array.from({ length: CALLS }, (_, i) =>
      fetch(srv.baseUrl + a.path, {
        method: "POST",
        headers: { ...ACCEPT, authorization: `Bearer ${a.token}`, "content-type": "application/json" },
        body: rpc("tools/call", i + 1, { name: "anything" }),
        signal: agentGone.signal,
      }).then((r) => r.text()).catch(() => "aborted"),
    );
    while (dripping.size < CALLS) await new Promise((r) => setTimeout(r, 20));

    for (let i = 0; i < 5; i++) {
      const answered = await raw(srv.baseUrl, "POST", b.path, { token: b.token, body: rpc("ping", i), headers: ACCEPT });
      expect(answered.status, answered.text).toBe(200);
      expect(answerOf(answered)).toMatchObject({ jsonrpc: "2.0", id: i, result: {} });
      expect(dripping.size, "the hostile upstream is still dripping").toBe(CALLS);
    }
    const health = await fetch(srv.baseUrl + "/healthz");
    expect(health.status).toBe(200);

    agentGone.abort();
    await Promise.all(stalled);
    // The agents left: the gateway closes every upstream stream too.
    expect(await peer.settled()).toBe(0);
  }, 120_000);
});

const KEY = "sk_relay_secret_0123456789";
const withKey = { authType: "api_key", apiKey: KEY };

/**
 * A hostile, recording MCP server: initialize opens session "up-1"; other requests are answered
 * with `{}` as JSON (or by `answer`); notifications and responses get 202; GET opens a session
 * stream the test writes to through `streams`; DELETE ends the session.
 */
async function recordingMcp(answer?: (m: Record<string, unknown>, res: ServerResponse) => boolean) {
  const streams: ServerResponse[] = [];
  const peer = await hostile((req, res) => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "text/event-stream", "mcp-session-id": "up-1" });
      res.write(": open\n\n");
      streams.push(res);
      return;
    }
    if (req.method === "DELETE") return void res.writeHead(200).end();
    const m = JSON.parse(req.body) as Record<string, unknown>;
    if (Array.isArray(m) || typeof m.method !== "string" || !("id" in m)) return void res.writeHead(202).end();
    if (answer?.(m, res)) return;
    const result = m.method === "initialize" ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "hostile", version: "1" } } : {};
    res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "up-1" }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }));
  });
  return { peer, streams };
}

const post = (path: string, token: string, body: unknown, headers: Record<string, string> = {}) =>
  raw(srv.baseUrl, "POST", path, { token, body: JSON.stringify(body), headers: { ...ACCEPT, ...headers } });

async function openSession(path: string, token: string): Promise<string> {
  const res = await post(path, token, { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } });
  expect(res.status, res.text).toBe(200);
  const sid = res.headers.get("mcp-session-id");
  expect(sid).toMatch(/^mcpgw1\./);
  return sid!;
}

const patch = (admin: string, id: string, body: Record<string, unknown>) => raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token: admin, body: JSON.stringify(body) });

/** Reads an SSE response's messages as they come; `next()` resolves with the next one, or null at the end. */
function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buffer = "";
  return {
    async next(): Promise<Record<string, unknown> | null> {
      for (;;) {
        const at = buffer.indexOf("\n\n");
        if (at >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
          if (data.length) return JSON.parse(data.join("\n")) as Record<string, unknown>;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) return null;
        buffer += dec.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}

const sent = (peer: HostilePeer, since: number): Received[] => peer.received.slice(since);

describe("enabled: false is a kill switch (issue 18, item 4)", () => {
  test("when the server is disabled, then requests, notifications, responses, the GET stream and DELETE are refused, on a session sealed before, and nothing reaches it", async () => {
    const { peer } = await recordingMcp();
    const s = await setup(peer.origin, withKey);
    const session = await openSession(s.path, s.token);
    expect((await patch(s.admin, s.id, { enabled: false })).status).toBe(200);
    const before = peer.received.length;
    const h = { "mcp-session-id": session };

    const request = await post(s.path, s.token, { jsonrpc: "2.0", id: 1, method: "tools/list" }, h);
    expect(request.status).toBe(200);
    expect(request.json.error).toEqual({ code: -32003, message: "MCP server 'upstream' is disabled in this workspace." });
    for (const message of [
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } },
      { jsonrpc: "2.0", id: 7, result: { content: [] } },
    ]) {
      const res = await post(s.path, s.token, message, h);
      expect(res.status, JSON.stringify(message)).toBe(403);
      expect(res.json.detail).toBe("MCP server 'upstream' is disabled in this workspace.");
    }
    const batch = await post(s.path, s.token, [{ jsonrpc: "2.0", method: "notifications/initialized" }, { jsonrpc: "2.0", id: 2, method: "ping" }], h);
    expect(batch.json).toEqual([{ jsonrpc: "2.0", id: 2, error: { code: -32003, message: "MCP server 'upstream' is disabled in this workspace." } }]);
    for (const method of ["GET", "DELETE"]) {
      const res = await raw(srv.baseUrl, method, s.path, { token: s.token, headers: { ...ACCEPT, ...h } });
      expect(res.status, method).toBe(403);
    }
    expect(sent(peer, before)).toEqual([]);
  });

  test("when a disabled record is opened for the gateway, then its credentials are not even decrypted", async () => {
    const repo = createMcpServerRepo(srv.services.db.knex, srv.services.box, (n) => n.toLowerCase(), (n) => n.toLowerCase());
    const { peer } = await recordingMcp();
    const s = await setup(peer.origin, { ...withKey, enabled: false });
    let opened = 0;
    const counting = { ...repo, openSecrets: async (ws: string, id: string): Promise<Secrets> => (opened++, repo.openSecrets(ws, id)) };
    const gateway = createGatewayService({
      repo: counting,
      audit: { append: async () => {} } as never,
      oauthToken: async (stored: StoredServer) => ({ ok: false, stored, error: { class: "auth", message: "no", httpStatus: null } }) as never,
      sessions: createSessionCodec([Buffer.alloc(32, 1)]),
    });
    const actor = await srv.services.tokens.authenticate(`Bearer ${s.token}`);
    const ctx = await gateway.open(actor, s.id, "mcpgw1.anything");
    expect(ctx.target).toBeNull();
    expect(() => ctx.requireEnabled()).toThrow(/disabled/);
    expect(opened).toBe(0);
  });

  test("when the server is disabled while its session stream is open, then the stream ends at the next message, which the agent never sees", async () => {
    const { peer, streams } = await recordingMcp();
    const s = await setup(peer.origin, withKey);
    const session = await openSession(s.path, s.token);
    const res = await fetch(srv.baseUrl + s.path, { headers: { ...ACCEPT, authorization: `Bearer ${s.token}`, "mcp-session-id": session } });
    expect(res.status).toBe(200);
    const agent = sseReader(res);
    while (streams.length === 0) await new Promise((r) => setTimeout(r, 10));
    const upstream = streams[0];
    const upstreamClosed = new Promise((r) => upstream.on("close", r));
    upstream.write(`data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "first" } })}\n\n`);
    expect(await agent.next()).toMatchObject({ params: { data: "first" } });

    expect((await patch(s.admin, s.id, { enabled: false })).status).toBe(200);
    upstream.write(`data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "after" } })}\n\n`);
    expect(await agent.next()).toBeNull();
    await upstreamClosed;
  });

  test("when the server is disabled while a request's answer is streaming, then the answer is a -32003 refusal, not the upstream's", async () => {
    let stream: ServerResponse | null = null;
    const { peer } = await recordingMcp((m, res) => {
      if (m.method !== "tools/call") return false;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } })}\n\n`);
      stream = res;
      return true;
    });
    const s = await setup(peer.origin, withKey);
    const res = await fetch(srv.baseUrl + s.path, {
      method: "POST",
      headers: { ...ACCEPT, authorization: `Bearer ${s.token}`, "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "echo", _meta: { progressToken: 1 } } }),
    });
    const agent = sseReader(res);
    expect(await agent.next()).toMatchObject({ method: "notifications/progress" });
    expect((await patch(s.admin, s.id, { enabled: false })).status).toBe(200);
    stream!.end(`data: ${JSON.stringify({ jsonrpc: "2.0", id: 3, result: { content: [{ type: "text", text: "leaked" }] } })}\n\n`);
    expect(await agent.next()).toEqual({ jsonrpc: "2.0", id: 3, error: { code: -32003, message: "MCP server 'upstream' is disabled in this workspace." } });
    expect(await agent.next()).toBeNull();
  });

  test("when a workspace holds a disabled server, then the workspace endpoint neither lists nor calls it, and nothing reaches it", async () => {
    const { peer } = await recordingMcp();
    const ws = uniqueWorkspace("sec");
    const admin = await srv.token([ws], "usr_admin");
    for (const [name, url, enabled] of [["live", v2.url, true], ["off", peer.origin, false]] as const) {
      const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name, url, enabled, ...withKey }) });
      expect(created.status, created.text).toBe(201);
    }
    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const path = `/api/workspaces/${ws}/mcp`;
    const h = { "mcp-protocol-version": "2025-11-25" };
    const list = answerOf(await post(path, token, { jsonrpc: "2.0", id: 1, method: "tools/list" }, h)) as { result: { tools: { name: string }[] } };
    expect(list.result.tools.map((t) => t.name)).toEqual(["live__echo"]);
    const call = answerOf(await post(path, token, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "off__anything", arguments: {} } }, h)) as { error?: unknown };
    expect(call.error).toBeDefined();
    expect(peer.received).toEqual([]);
  });
});

describe("the kill switch on the workspace endpoint (issue 18, item 4)", () => {
  test("when a member whose upstream session is kept in the pool is disabled, then the next list and call neither show nor reach it", async () => {
    const ws = uniqueWorkspace("sec");
    const admin = await srv.token([ws], "usr_admin");
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "live", url: v2.url }) });
    expect(created.status, created.text).toBe(201);
    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const path = `/api/workspaces/${ws}/mcp`;
    const h = { "mcp-protocol-version": "2025-11-25" };
    const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "live__echo", arguments: { text: "hi" } } };
    expect(answerOf(await post(path, token, call, h))).toMatchObject({ result: { content: [{ text: "hi" }] } });

    expect((await patch(admin, created.json.id, { enabled: false })).status).toBe(200);
    const before = v2.requests.length;
    const list = answerOf(await post(path, token, { jsonrpc: "2.0", id: 1, method: "tools/list" }, h)) as { result: { tools: unknown[] } };
    expect(list.result.tools).toEqual([]);
    const refused = answerOf(await post(path, token, call, h)) as { error?: { code: number } };
    expect(refused.error).toBeDefined();
    expect(v2.requests.length).toBe(before);
  });
});

describe("policy over everything relayed (issue 18, item 5)", () => {
  test("when a batch holds two requests with one id, then it is refused as an invalid request and nothing goes upstream", async () => {
    const { peer } = await recordingMcp();
    const s = await setup(peer.origin, { ...withKey, allowedTools: ["echo"] });
    const res = await post(s.path, s.token, [
      { jsonrpc: "2.0", id: 1, method: "tools/list" },
      { jsonrpc: "2.0", id: 1, method: "ping" },
    ]);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32600 } });
    expect(res.json.error.message).toMatch(/two requests of the batch have the id 1/);
    expect(peer.received).toEqual([]);
  });

  test("when the upstream sends a tools/list answer on the session's GET stream, or under an id the agent did not use for tools/list, then the disallowed tools are filtered out", async () => {
    const tools = { tools: [{ name: "echo", inputSchema: { type: "object" } }, { name: "secret_tool", inputSchema: { type: "object" } }] };
    const { peer, streams } = await recordingMcp((m, res) => {
      if (m.method !== "ping") return false;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: tools }));
      return true;
    });
    const s = await setup(peer.origin, { ...withKey, allowedTools: ["echo"] });
    const session = await openSession(s.path, s.token);
    const pinged = await post(s.path, s.token, { jsonrpc: "2.0", id: 4, method: "ping" }, { "mcp-session-id": session });
    expect(pinged.json.result.tools.map((t: { name: string }) => t.name)).toEqual(["echo"]);

    const res = await fetch(srv.baseUrl + s.path, { headers: { ...ACCEPT, authorization: `Bearer ${s.token}`, "mcp-session-id": session } });
    const agent = sseReader(res);
    while (streams.length === 0) await new Promise((r) => setTimeout(r, 10));
    streams[0].write(`data: ${JSON.stringify({ jsonrpc: "2.0", id: 9, result: tools })}\n\n`);
    const relayed = (await agent.next()) as { result: { tools: { name: string }[] } };
    expect(relayed.result.tools.map((t) => t.name)).toEqual(["echo"]);
    await agent.cancel();
  });

  test("when the agent sends a tools/call notification for a disallowed tool, then it is dropped (202) and never reaches the server", async () => {
    const { peer } = await recordingMcp();
    const s = await setup(peer.origin, { ...withKey, allowedTools: ["echo"] });
    const res = await post(s.path, s.token, { jsonrpc: "2.0", method: "tools/call", params: { name: "secret_tool" } });
    expect(res.status).toBe(202);
    expect(peer.received).toEqual([]);
  });

  test("when Mcp-Name or Mcp-Method disagree with the body, then -32020 on HTTP 400 and nothing goes upstream; when they agree, the upstream gets the values derived from the body", async () => {
    const { peer } = await recordingMcp();
    const s = await setup(peer.origin, { ...withKey, allowedTools: ["echo"] });
    const call = { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "echo", arguments: {} } };
    const v = { "mcp-protocol-version": "2026-07-28" };
    for (const headers of [
      { ...v, "mcp-method": "tools/call", "mcp-name": "secret_tool" },
      { ...v, "mcp-method": "tools/list", "mcp-name": "echo" },
      { ...v, "mcp-method": "tools/call", "mcp-name": "=?base64?c2VjcmV0X3Rvb2w=?=" },
    ]) {
      const res = await post(s.path, s.token, call, headers);
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expect(res.json).toMatchObject({ jsonrpc: "2.0", id: 5, error: { code: -32020 } });
    }
    expect(peer.received).toEqual([]);

    const ok = await post(s.path, s.token, call, { ...v, "mcp-method": "tools/call", "mcp-name": " =?base64?ZWNobw==?= " });
    expect(ok.status, ok.text).toBe(200);
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0].headers).toMatchObject({ "mcp-method": "tools/call", "mcp-name": "echo" });
    // A header the agent left out is not made up: the server sees it missing, as the agent sent it.
    await post(s.path, s.token, call, v);
    expect(peer.received[1].headers["mcp-method"]).toBeUndefined();
    expect(peer.received[1].headers["mcp-name"]).toBeUndefined();
  });
});

describe("sessions die with their origin (issue 18, item 7)", () => {
  test("when the record's url moves to another origin, then the old session id is refused with 'start a new session' and the new origin receives nothing", async () => {
    const { peer } = await recordingMcp();
    const { peer: next } = await recordingMcp();
    const s = await setup(peer.origin, withKey);
    const session = await openSession(s.path, s.token);
    expect((await patch(s.admin, s.id, { url: next.origin, apiKey: KEY })).status).toBe(200);
    for (const method of ["POST", "GET", "DELETE"]) {
      const res = await raw(srv.baseUrl, method, s.path, { token: s.token, body: method === "POST" ? JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }) : undefined, headers: { ...ACCEPT, "mcp-session-id": session } });
      expect(res.status, method).toBe(400);
      expect(res.json.detail).toMatch(/start a new session/);
    }
    expect(next.received).toEqual([]);
  });

  test("when the record's credentials are replaced or cleared, then the old session id is refused with 'start a new session'; a same-origin path change keeps it", async () => {
    const { peer } = await recordingMcp();
    const s = await setup(peer.origin + "/mcp", withKey);
    const ping = (session: string) => post(s.path, s.token, { jsonrpc: "2.0", id: 1, method: "ping" }, { "mcp-session-id": session });

    let session = await openSession(s.path, s.token);
    expect((await patch(s.admin, s.id, { url: peer.origin + "/v2/mcp" })).status).toBe(200);
    expect((await ping(session)).status).toBe(200);

    expect((await patch(s.admin, s.id, { apiKey: "sk_replaced_0123456789" })).status).toBe(200);
    const replaced = await ping(session);
    expect(replaced.status).toBe(400);
    expect(replaced.json.detail).toMatch(/start a new session/);

    session = await openSession(s.path, s.token);
    expect((await patch(s.admin, s.id, { secretHeaders: { "X-Extra": "another-secret" } })).status).toBe(200);
    expect((await ping(session)).status).toBe(400);

    session = await openSession(s.path, s.token);
    expect((await patch(s.admin, s.id, { authType: "none", apiKey: null })).status).toBe(200);
    expect((await ping(session)).status).toBe(400);
  });
});

describe("sessions die with the OAuth connection (issue 18, item 7)", () => {
  test("when an OAuth record is disconnected and reconnected, then a session sealed before is refused with 'start a new session'; a routine renewal keeps it", async () => {
    // A stateful upstream that publishes no OAuth metadata: the token endpoint is pinned.
    const peer = await hostile((req, res) => {
      if (req.method !== "POST") return void res.writeHead(404).end();
      const m = JSON.parse(req.body) as Record<string, unknown>;
      if (!("id" in m)) return void res.writeHead(202).end();
      const result = m.method === "initialize" ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "hostile", version: "1" } } : {};
      res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "up-1" }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }));
    });
    const as = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback`, accessTokenTtlSeconds: 600, extraResources: [peer.origin + "/mcp"] });
    cleanups.push(as.close);
    const s = await setup(peer.origin + "/mcp", { authType: "oauth", oauthClientId: as.clientId, oauthClientSecret: as.clientSecret, oauthTokenEndpoint: as.tokenEndpoint });
    const ping = (session: string) => post(s.path, s.token, { jsonrpc: "2.0", id: 1, method: "ping" }, { "mcp-session-id": session });
    const grants = () => as.tokenRequests.filter((r) => r.grant_type === "client_credentials").length;

    const session = await openSession(s.path, s.token);
    expect(grants()).toBe(1);
    expect((await ping(session)).status).toBe(200);

    // A routine renewal (the token is due; the connection test renews it): a new access token, the same connection.
    await srv.services.db.knex("mcp_servers").where({ id: s.id }).update({ oauth_obtained_at: new Date(Date.now() - 590_000).toISOString(), oauth_expires_at: new Date(Date.now() + 10_000).toISOString() });
    await raw(srv.baseUrl, "POST", `/api/mcp-servers/${s.id}/test`, { token: s.admin });
    expect(grants()).toBe(2);
    expect((await ping(session)).status).toBe(200);

    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${s.id}/oauth`, { token: s.admin })).status).toBe(200);
    // Reconnected: the next use gets tokens again by the same client.
    const fresh = await openSession(s.path, s.token);
    expect(grants()).toBe(3);
    expect((await ping(fresh)).status).toBe(200);
    const old = await ping(session);
    expect(old.status, old.text).toBe(400);
    expect(old.json.detail).toMatch(/start a new session/);
  });
});

describe("hostile upstream messages (issue 18, hardening)", () => {
  test("when the upstream answers with JSON values that are not JSON-RPC messages, in a JSON body or on its stream, then they are left out and the agent still gets its answer", async () => {
    const { peer } = await recordingMcp((m, res) => {
      if (m.method === "tools/list") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify([1, null, "x", [], { jsonrpc: "2.0", id: m.id, result: { tools: [] } }]));
        return true;
      }
      if (m.method !== "ping") return false;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(["null", "7", '"text"', "[]", JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} })].map((d) => `data: ${d}\n\n`).join(""));
      return true;
    });
    const s = await setup(peer.origin, { ...withKey, allowedTools: ["echo"] });
    const listed = await post(s.path, s.token, { jsonrpc: "2.0", id: 1, method: "tools/list" });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.json).toEqual({ jsonrpc: "2.0", id: 1, result: { tools: [] } });
    const pinged = await post(s.path, s.token, { jsonrpc: "2.0", id: 2, method: "ping" });
    expect(pinged.status, pinged.text).toBe(200);
    expect(answerOf(pinged)).toEqual({ jsonrpc: "2.0", id: 2, result: {} });
  });
});

describe("hostile upstream session ids (issue 18, hardening)", () => {
  test("when the upstream hands out a session id longer than 1024 characters, then the agent gets a JSON-RPC error and no session id it could never send back", async () => {
    const peer = await hostile((req, res) => {
      const m = JSON.parse(req.body) as { id: number };
      res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "s".repeat(5000) }).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }));
    });
    const s = await setup(peer.origin, withKey);
    const res = await post(s.path, s.token, { jsonrpc: "2.0", id: 1, method: "ping" });
    expect(res.status).toBe(200);
    expect(res.headers.get("mcp-session-id")).toBeNull();
    expect(res.json.error).toMatchObject({ code: -32004, message: expect.stringMatching(/session id that is not 1 to 1024 visible ASCII/) });
  });
});
