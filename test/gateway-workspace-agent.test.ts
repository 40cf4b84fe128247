// What the workspace endpoint relays between an upstream and the agent whose request it is
// answering (issue 21): log messages (their logger naming the member's namespace, each agent's
// level applied by the gateway), server-to-client requests (sampling), answered by the agent
// and routed back to the upstream call that asked, and members' list_changed on the GET stream of
// a sealed agent session. Real SDK v1 and v2 agents and upstreams on loopback.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { startV1SessionPeer, startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "sk_agent_upstream_0123456789";
let srv: TestServer;
let v1: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "2000", MCP_API_TOOL_TIMEOUT_MS: "8000" } });
  v1 = await startV1SessionPeer({ bearer: KEY });
});
afterAll(async () => {
  await v1?.close();
  await srv?.stop();
});

async function workspace() {
  const ws = uniqueWorkspace("agent");
  const admin = await srv.token([ws], "usr_admin");
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Alpha", url: v1.url, authType: "api_key", apiKey: KEY }) });
  expect(res.status, res.text).toBe(201);
  const mint = async () => (await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
  return { ws, endpoint: `${srv.baseUrl}/api/workspaces/${ws}/mcp`, mint };
}

/** A 2025-11-25 initialize by hand, for what the SDK clients cannot send. */
const initialize = (path: string, token: string) =>
  raw(srv.baseUrl, "POST", path, {
    token,
    headers: { accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
  });

type Log = { level: string; logger?: string; data: unknown };

/** A fetch that tells when the agent's GET stream has opened (the endpoint watches the members by then). */
function streamOpened() {
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const fetchTelling: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if ((init?.method ?? "GET") === "GET" && response.status === 200) opened();
    return response;
  };
  return { open, fetch: fetchTelling };
}

/** A 2025-era agent (SDK v1) whose model answers `says`. */
async function v1Agent(endpoint: string, token: string, says: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
  const logs: Log[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params as Log));
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", model: "test", content: { type: "text", text: says } }));
  const stream = streamOpened();
  await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: stream.fetch }));
  return { client, logs, streamOpen: stream.open };
}

/** A 2025-11-25 agent on SDK v2 whose model answers `says`. */
async function v2Agent(endpoint: string, token: string, says: string) {
  const client = new V2Client({ name: "agent-v2", version: "1.0.0" }, { capabilities: { sampling: {} }, versionNegotiation: { mode: "legacy" } });
  const logs: Log[] = [];
  client.setNotificationHandler("notifications/message", (n) => void logs.push(n.params as Log));
  client.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "test", content: { type: "text", text: says } }));
  const stream = streamOpened();
  await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: stream.fetch }));
  return { client, logs, streamOpen: stream.open };
}

describe("POST /api/workspaces/{workspaceId}/mcp relays to the agent", () => {
  test("when upstreams ask for sampling during calls of two agents at once, then each agent is asked and its own answer reaches the call that asked", async () => {
    const { endpoint, mint } = await workspace();
    const one = await v1Agent(endpoint, await mint(), "four");
    const two = await v2Agent(endpoint, await mint(), "cuatro");
    const [a, b, c] = await Promise.all([
      one.client.callTool({ name: "alpha__ask" }),
      two.client.callTool({ name: "alpha__ask" }),
      one.client.callTool({ name: "alpha__ask" }),
    ]);
    expect(a.content).toEqual([{ type: "text", text: "model said four" }]);
    expect(b.content).toEqual([{ type: "text", text: "model said cuatro" }]);
    expect(c.content).toEqual([{ type: "text", text: "model said four" }]);
    // The upstream got each answer as the result of its own request (the SDK matched them by id).
    const answers = v1.messages!.filter((m) => m.method === undefined && (m.result as { model?: string } | undefined)?.model === "test");
    expect(answers.length).toBeGreaterThanOrEqual(3);
    await one.client.close();
    await two.client.close();
  }, 30_000);

  test("when another token POSTs an answer under the id of a request relayed to an agent, then it is dropped and the agent's own answer reaches the upstream", async () => {
    const { ws, endpoint, mint } = await workspace();
    const intruder = await mint();
    const client = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
    const forged: number[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, async (_request, extra) => {
      const body = JSON.stringify({ jsonrpc: "2.0", id: extra.requestId, result: { role: "assistant", model: "test", content: { type: "text", text: "forged" } } });
      const res = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: intruder, body, headers: { accept: "application/json, text/event-stream" } });
      forged.push(res.status);
      return { role: "assistant", model: "test", content: { type: "text", text: "four" } };
    });
    await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${await mint()}` } } }));
    expect((await client.callTool({ name: "alpha__ask" })).content).toEqual([{ type: "text", text: "model said four" }]);
    expect(forged).toEqual([202]);
    expect(JSON.stringify(v1.messages)).not.toContain("forged");
    await client.close();
  }, 30_000);

  test("when an agent cannot answer sampling, then the upstream gets its error and the call says so", async () => {
    const { endpoint, mint } = await workspace();
    const client = new V1Client({ name: "no-sampling", version: "1.0.0" });
    await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${await mint()}` } } }));
    const result = await client.callTool({ name: "alpha__ask" }).catch((err: Error) => ({ isError: true, content: [{ type: "text", text: err.message }] }));
    expect(result.isError).toBe(true);
    await client.close();
  }, 30_000);

  test("when a member logs while answering, then its messages reach that agent alone with the member's namespace as logger, at the level each agent set", async () => {
    const { endpoint, mint } = await workspace();
    const one = await v1Agent(endpoint, await mint(), "x");
    const two = await v2Agent(endpoint, await mint(), "y");
    await one.client.callTool({ name: "alpha__report" });
    expect(one.logs).toEqual([
      { level: "info", logger: "alpha", data: "fyi" },
      { level: "error", logger: "alpha__disk", data: "full" },
    ]);
    expect(two.logs).toEqual([]);

    expect(await one.client.setLoggingLevel("warning")).toEqual({});
    await one.client.callTool({ name: "alpha__report" });
    await two.client.callTool({ name: "alpha__report" });
    expect(one.logs.slice(2)).toEqual([{ level: "error", logger: "alpha__disk", data: "full" }]);
    expect(two.logs.map((l) => l.data)).toEqual(["fyi", "full"]); // another agent's level is its own
    await one.client.close();
    await two.client.close();
  }, 30_000);

  test("when a 2026-07-28 agent calls without a logLevel, then no log message reaches it", async () => {
    const { endpoint, mint } = await workspace();
    const bodies: string[] = [];
    const keep: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      bodies.push(await response.clone().text());
      return response;
    };
    const client = new V2Client({ name: "agent-modern", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${await mint()}` } }, fetch: keep }));
    expect((await client.callTool({ name: "alpha__report" })).content).toEqual([{ type: "text", text: "reported" }]);
    expect(bodies.join("\n")).not.toContain("notifications/message");
    await client.close();
  }, 30_000);
});

describe("multi-round-trip requests (input_required) of a 2026-07-28 member", () => {
  async function modernWorkspace() {
    const v2 = await startV2Peer({ multiRoundTrip: true });
    const ws = uniqueWorkspace("mrtr");
    const admin = await srv.token([ws], "usr_admin");
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Modern", url: v2.url }) });
    expect(res.status, res.text).toBe(201);
    const token = (await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
    return { v2, endpoint: new URL(`${srv.baseUrl}/api/workspaces/${ws}/mcp`), headers: { Authorization: `Bearer ${token}` } };
  }

  test("when a 2026-07-28 agent calls a tool that answers input_required, then the result reaches it with its state, and its retry with the responses reaches the member", async () => {
    const { v2, endpoint, headers } = await modernWorkspace();
    const agent = new V2Client({ name: "agent-modern", version: "1.0.0" }, { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: { pin: "2026-07-28" } } });
    const asked: string[] = [];
    agent.setRequestHandler("elicitation/create", async (request) => {
      asked.push((request.params as { message: string }).message);
      return { action: "accept", content: { go: true } };
    });
    await agent.connect(new V2Transport(endpoint, { requestInit: { headers } }));
    expect((await agent.callTool({ name: "modern__confirm" })).content).toEqual([{ type: "text", text: 'accept {"go":true} with state-1' }]);
    expect(asked).toEqual(["Go ahead?"]);
    await agent.close();
    await v2.close();
  }, 30_000);

  test("when a 2025-era agent calls such a tool, then it is asked on its request's stream and its answer fulfils the member's request", async () => {
    const { v2, endpoint, headers } = await modernWorkspace();
    const agent = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { elicitation: {} } });
    agent.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { go: false } }));
    await agent.connect(new V1Transport(endpoint, { requestInit: { headers } }));
    expect((await agent.callTool({ name: "modern__confirm" })).content).toEqual([{ type: "text", text: 'accept {"go":false} with state-1' }]);
    await agent.close();
    await v2.close();
  }, 30_000);
});

describe("a 2025-era member's request of a 2026-07-28 agent (held, input_required)", () => {
  async function modernAgent(endpoint: string, token: string, says: string) {
    const agent = new V2Client({ name: "agent-modern", version: "1.0.0" }, { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: "2026-07-28" } } });
    agent.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "m", content: { type: "text", text: says } }));
    await agent.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return agent;
  }

  test("when a member asks for sampling during two concurrent calls, then each agent gets input_required, retries with its answer, and gets the result that used its own answer", async () => {
    const { endpoint, mint } = await workspace();
    const [one, two] = await Promise.all([modernAgent(endpoint, await mint(), "four"), modernAgent(endpoint, await mint(), "vier")]);
    const [a, b] = await Promise.all([one.callTool({ name: "alpha__ask" }), two.callTool({ name: "alpha__ask" })]);
    expect(a.content).toEqual([{ type: "text", text: "model said four" }]);
    expect(b.content).toEqual([{ type: "text", text: "model said vier" }]);
    for (const c of [one, two]) await c.close();
  }, 30_000);

  test("when the agent calls by hand, then the result is input_required with a sealed state; a forged or another token's state is refused, and the right retry gets the result", async () => {
    const { endpoint, mint } = await workspace();
    const token = await mint();
    const post = (t: string, params: object) =>
      fetch(endpoint, {
        method: "POST",
        headers: { authorization: `Bearer ${t}`, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "alpha__ask" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "alpha__ask", ...params, _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { sampling: {} }, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" } } } }),
      }).then(async (r) => {
        const text = await r.text();
        const data = text.split("\n").find((l) => l.startsWith("data: "));
        return JSON.parse(data ? data.slice(6) : text) as { result?: Record<string, unknown>; error?: { code: number; message: string } };
      });
    const first = await post(token, {});
    expect(first.result?.resultType, JSON.stringify(first)).toBe("input_required");
    const requests = first.result!.inputRequests as Record<string, { method: string }>;
    const [key] = Object.keys(requests);
    expect(requests[key].method).toBe("sampling/createMessage");
    const state = first.result!.requestState as string;
    const answerOf = { [key]: { role: "assistant", model: "m", content: { type: "text", text: "five" } } };
    const forged = await post(token, { inputResponses: answerOf, requestState: state.slice(0, -4) + "AAAA" });
    expect(forged.error?.code).toBe(-32602);
    expect(forged.error?.message).toMatch(/not one this endpoint handed/);
    const other = await post(await mint(), { inputResponses: answerOf, requestState: state });
    expect(other.error?.message).toMatch(/not one this endpoint handed/);
    const done = await post(token, { inputResponses: answerOf, requestState: state });
    expect(done.result?.content, JSON.stringify(done)).toEqual([{ type: "text", text: "model said five" }]);
    const again = await post(token, { inputResponses: answerOf, requestState: state });
    expect(again.error?.message).toMatch(/already answered or has ended/);
  }, 30_000);
});

/** A 2026-07-28 tools/call by hand (raw JSON-RPC), its JSON-RPC answer read from the body or its one SSE event. */
function modernCall(endpoint: string, token: string, name: string, params: object = {}, capabilities: object = { sampling: {}, elicitation: { form: {} }, roots: {} }) {
  return fetch(endpoint, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, ...params, _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": capabilities, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" } } } }),
  }).then(async (r) => {
    const text = await r.text();
    const data = text.split("\n").find((l) => l.startsWith("data: "));
    return JSON.parse(data ? data.slice(6) : text) as { result?: Record<string, unknown>; error?: { code: number; message: string } };
  });
}

describe("a 2025-era member's elicitation and roots requests of a 2026-07-28 agent, and holds the agent does not retry", () => {
  const BOUND_MS = 3000;
  let asking: GatewayPeer;
  let short: TestServer;
  beforeAll(async () => {
    asking = await startV1SessionPeer({ bearer: KEY, asking: true });
    short = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "2000", MCP_API_TOOL_TIMEOUT_MS: String(BOUND_MS) } });
  });
  afterAll(async () => {
    await asking?.close();
    await short?.stop();
  });

  async function askingWorkspace(on: TestServer) {
    const ws = uniqueWorkspace("asks");
    const admin = await on.token([ws], "usr_admin");
    const res = await raw(on.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Alpha", url: asking.url, authType: "api_key", apiKey: KEY }) });
    expect(res.status, res.text).toBe(201);
    const token = (await on.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
    return { endpoint: `${on.baseUrl}/api/workspaces/${ws}/mcp`, token };
  }

  async function modernAgent(endpoint: string, token: string, capabilities: Record<string, object>) {
    const agent = new V2Client({ name: "agent-modern", version: "1.0.0" }, { capabilities, versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await agent.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return agent;
  }

  /** The gateway's answers to the member's requests of the agent that were errors, by their message. */
  const unanswered = () => asking.messages!.filter((m) => m.method === undefined && (m.error as { code?: number } | undefined)?.code === -32001).map((m) => (m.error as { message: string }).message);

  test("when a member asks for a form elicitation, then a 2026-07-28 agent (SDK v2) gets it as input_required, fulfils it, and the member gets the agent's content", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const agent = await modernAgent(endpoint, token, { elicitation: { form: {} } });
    const asked: unknown[] = [];
    agent.setRequestHandler("elicitation/create", async (request) => {
      asked.push(request.params);
      return { action: "accept", content: { ok: true } };
    });
    expect((await agent.callTool({ name: "alpha__confirm" })).content).toEqual([{ type: "text", text: 'accept {"ok":true}' }]);
    expect(asked).toMatchObject([{ message: "Proceed?", requestedSchema: { type: "object", properties: { ok: { type: "boolean" } } } }]);
    await agent.close();
  }, 30_000);

  test("when a member lists the agent's roots, then a 2026-07-28 agent (SDK v2) gets roots/list as input_required and the member gets its roots", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const agent = await modernAgent(endpoint, token, { roots: {} });
    agent.setRequestHandler("roots/list", async () => ({ roots: [{ uri: "file:///work/one", name: "one" }, { uri: "file:///work/two" }] }));
    expect((await agent.callTool({ name: "alpha__roots" })).content).toEqual([{ type: "text", text: "roots file:///work/one file:///work/two" }]);
    await agent.close();
  }, 30_000);

  test("when a member asks twice in one call (sampling, then roots/list), then the agent's retry gets the second request as another input_required with a new state, and the second retry the result", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const agent = await modernAgent(endpoint, token, { sampling: {}, roots: {} });
    agent.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "m", content: { type: "text", text: "four" } }));
    agent.setRequestHandler("roots/list", async () => ({ roots: [{ uri: "file:///work/one" }] }));
    expect((await agent.callTool({ name: "alpha__ask_twice" })).content).toEqual([{ type: "text", text: "model said four; roots file:///work/one" }]);
    await agent.close();

    const first = await modernCall(endpoint, token, "alpha__ask_twice");
    const [key] = Object.keys(first.result!.inputRequests as object);
    const second = await modernCall(endpoint, token, "alpha__ask_twice", { inputResponses: { [key]: { role: "assistant", model: "m", content: { type: "text", text: "vier" } } }, requestState: first.result!.requestState });
    expect(second.result?.resultType, JSON.stringify(second)).toBe("input_required");
    const [rootsKey] = Object.keys(second.result!.inputRequests as object);
    expect((second.result!.inputRequests as Record<string, unknown>)[rootsKey]).toEqual({ method: "roots/list" });
    expect(second.result!.requestState).not.toBe(first.result!.requestState);
    const done = await modernCall(endpoint, token, "alpha__ask_twice", { inputResponses: { [rootsKey]: { roots: [] } }, requestState: second.result!.requestState });
    expect(done.result?.content, JSON.stringify(done)).toEqual([{ type: "text", text: "model said vier; roots " }]);
  }, 30_000);

  test("when the member reports progress and logs after the agent's answer, then they reach the agent's retry (progress under the retry's own progressToken, the log with the member's namespace as logger)", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const agent = await modernAgent(endpoint, token, { sampling: {} });
    agent.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "m", content: { type: "text", text: "four" } }));
    const logs: Log[] = [];
    agent.setNotificationHandler("notifications/message", (n) => void logs.push(n.params as Log));
    const progress: { progress: number; message?: string }[] = [];
    const done = await agent.callTool({ name: "alpha__ask_then_report", _meta: { "io.modelcontextprotocol/logLevel": "info" } }, { onprogress: (p) => void progress.push(p) });
    expect(done.content).toEqual([{ type: "text", text: "model said four" }]);
    // The SDK reports each round it fulfils as progress of its own; the member's comes on the retry.
    expect(progress.filter((p) => p.message === "after the answer")).toEqual([{ progress: 1, total: 1, message: "after the answer" }]);
    expect(logs).toEqual([{ level: "info", logger: "alpha", data: "answered" }]);
    await agent.close();

    // By hand: the retry's events carry its own token, not the first request's, and nothing comes for a retry without one.
    const events = async (params: object) => {
      const r = await fetch(endpoint, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "alpha__ask_then_report" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 8, method: "tools/call", params: { name: "alpha__ask_then_report", ...params } }),
      });
      const text = await r.text();
      const lines = text.split("\n").filter((l) => l.startsWith("data: "));
      return (lines.length ? lines.map((l) => JSON.parse(l.slice(6))) : [JSON.parse(text)]) as { method?: string; params?: Record<string, unknown>; result?: Record<string, unknown> }[];
    };
    const envelope = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { sampling: {} }, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" }, "io.modelcontextprotocol/logLevel": "info" };
    for (const retryToken of ["p-retry", undefined]) {
      const first = (await events({ _meta: { ...envelope, progressToken: "p-first" } })).at(-1)!;
      expect(first.result?.resultType, JSON.stringify(first)).toBe("input_required");
      const [key] = Object.keys(first.result!.inputRequests as object);
      const retry = await events({
        inputResponses: { [key]: { role: "assistant", model: "m", content: { type: "text", text: "five" } } },
        requestState: first.result!.requestState,
        _meta: retryToken === undefined ? envelope : { ...envelope, progressToken: retryToken },
      });
      expect(retry.at(-1)!.result?.content, JSON.stringify(retry)).toEqual([{ type: "text", text: "model said five" }]);
      expect(retry.filter((m) => m.method === "notifications/progress").map((m) => m.params), JSON.stringify(retry)).toEqual(
        retryToken === undefined ? [] : [{ progressToken: retryToken, progress: 1, total: 1, message: "after the answer" }],
      );
      expect(retry.filter((m) => m.method === "notifications/message").map((m) => m.params)).toEqual([{ level: "info", logger: "alpha", data: "answered" }]);
    }
  }, 30_000);

  test("when the agent calls by hand and gets elicitation/create or roots/list as input_required, then its retry's answer reaches the member", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const asks = await modernCall(endpoint, token, "alpha__confirm");
    const [key] = Object.keys(asks.result!.inputRequests as object);
    expect((asks.result!.inputRequests as Record<string, { method: string }>)[key].method).toBe("elicitation/create");
    const confirmed = await modernCall(endpoint, token, "alpha__confirm", { inputResponses: { [key]: { action: "decline" } }, requestState: asks.result!.requestState });
    expect(confirmed.result?.content, JSON.stringify(confirmed)).toEqual([{ type: "text", text: "decline null" }]);

    const lists = await modernCall(endpoint, token, "alpha__roots");
    const [rootsKey] = Object.keys(lists.result!.inputRequests as object);
    expect((lists.result!.inputRequests as Record<string, unknown>)[rootsKey]).toEqual({ method: "roots/list" });
    const listed = await modernCall(endpoint, token, "alpha__roots", { inputResponses: { [rootsKey]: { roots: [] } }, requestState: lists.result!.requestState });
    expect(listed.result?.content, JSON.stringify(listed)).toEqual([{ type: "text", text: "roots " }]);
  }, 30_000);

  test("when the agent's request does not declare the capability the member's request needs, then -32021 names it, and the member is answered at once (nothing is held)", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const seen = asking.messages!.length;
    const refused = await modernCall(endpoint, token, "alpha__confirm", {}, { sampling: {} });
    expect(refused.error?.code, JSON.stringify(refused)).toBe(-32021);
    expect(refused.error?.message).toMatch(/do not declare elicitation/);
    await vi.waitFor(() => expect(asking.messages!.slice(seen).filter((m) => m.method === undefined && m.error).map((m) => (m.error as { message: string }).message)).toEqual(["the agent does not declare the elicitation capability"]), { timeout: 15_000, interval: 100 });
  }, 30_000);

  test("when the agent cancels its retry while the member is still working with its answer, then the member's call is cancelled then, not at the call's bound", async () => {
    const { endpoint, token } = await askingWorkspace(srv);
    const agent = await modernAgent(endpoint, token, { sampling: {} });
    agent.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "m", content: { type: "text", text: "then cancelled" } }));
    const seen = asking.messages!.length;
    const mine = () => asking.messages!.slice(seen);
    const abort = new AbortController();
    const call = agent.callTool({ name: "alpha__ask_late", arguments: { ms: 0, thenMs: 60_000 } }, { signal: abort.signal });
    call.catch(() => {});
    // The retry delivered the answer; the member now works on (thenMs) while the retry waits.
    await vi.waitFor(() => expect(JSON.stringify(mine())).toContain("then cancelled"), { timeout: 15_000, interval: 50 });
    abort.abort();
    await expect(call).rejects.toThrow();
    const callId = mine().find((m) => m.method === "tools/call" && (m.params as { name: string }).name === "ask_late")!.id;
    await vi.waitFor(() => expect(mine().some((m) => m.method === "notifications/cancelled" && (m.params as { requestId: unknown }).requestId === callId)).toBe(true), { timeout: 15_000, interval: 50 });
    const cancelled = mine().find((m) => m.method === "notifications/cancelled" && (m.params as { requestId: unknown }).requestId === callId)!;
    expect((cancelled.params as { reason?: string }).reason).not.toMatch(/no answer within/); // not the pool's deadline
    await agent.close();
  }, 30_000);

  test("when the agent retries after the call's bound (MCP_API_TOOL_TIMEOUT_MS), then -32602 says the held request expired, and the member was answered with an error instead", async () => {
    const { endpoint, token } = await askingWorkspace(short);
    const first = await modernCall(endpoint, token, "alpha__confirm");
    expect(first.result?.resultType, JSON.stringify(first)).toBe("input_required");
    const [key] = Object.keys(first.result!.inputRequests as object);
    const before = unanswered().length;
    await vi.waitFor(() => expect(unanswered().length).toBeGreaterThan(before), { timeout: 15_000, interval: 100 });
    const late = await modernCall(endpoint, token, "alpha__confirm", { inputResponses: { [key]: { action: "accept", content: { ok: true } } }, requestState: first.result!.requestState });
    expect(late.error?.code, JSON.stringify(late)).toBe(-32602);
    expect(late.error?.message).toMatch(/held request expired at .*MCP_API_TOOL_TIMEOUT_MS/);
    const [told, ...more] = unanswered().slice(before);
    expect(more).toEqual([]);
    // From the hold's deadline; or, should the pool's deadline for the call (a few ms later) be seen first, from the call's end.
    expect([`the agent did not answer elicitation/create within the call's bound (MCP_API_TOOL_TIMEOUT_MS, ${BOUND_MS} ms)`, "the call ended"]).toContain(told.startsWith("the call ended while waiting") ? "the call ended" : told);
  }, 30_000);

  test("when the member asks late in the call and the agent never retries, then the hold ends with the call's bound, not the ask's: the member's request gets an error answer, its call is cancelled, and a late retry reaches nobody", async () => {
    const { endpoint, token } = await askingWorkspace(short);
    const seen = asking.messages!.length;
    // Asked half-way through the call: a hold counted from the ask would outlive the pool's deadline for the call by that much.
    const first = await modernCall(endpoint, token, "alpha__ask_late", { arguments: { ms: BOUND_MS / 3 } });
    expect(first.result?.resultType, JSON.stringify(first)).toBe("input_required");
    const [key] = Object.keys(first.result!.inputRequests as object);
    const mine = () => asking.messages!.slice(seen);
    const callId = mine().find((m) => m.method === "tools/call" && (m.params as { name: string }).name === "ask_late")!.id;
    // Its one error answer (-32001): "did not answer" from the hold's deadline, or "the call ended" should the pool's deadline for the call, a few ms later, be seen first.
    await vi.waitFor(() => expect(mine().filter((m) => m.method === undefined && (m.error as { code?: number } | undefined)?.code === -32001), JSON.stringify(mine())).toHaveLength(1), { timeout: 15_000, interval: 100 });
    await vi.waitFor(() => expect(mine().some((m) => m.method === "notifications/cancelled" && (m.params as { requestId: unknown }).requestId === callId), JSON.stringify(mine())).toBe(true), { timeout: 15_000, interval: 100 });
    const late = await modernCall(endpoint, token, "alpha__ask_late", { inputResponses: { [key]: { role: "assistant", model: "m", content: { type: "text", text: "too late" } } }, requestState: first.result!.requestState });
    expect(late.error?.message, JSON.stringify(late)).toMatch(/held request expired/);
    expect(JSON.stringify(mine())).not.toContain("too late");
  }, 30_000);
});

describe("agent sessions of the workspace endpoint", () => {
  test("when a member's tools change, then 2025-era agents (SDK v1 and v2) get tools/list_changed on their GET stream, and listChanged is advertised to them", async () => {
    const { endpoint, mint } = await workspace();
    const one = await v1Agent(endpoint, await mint(), "x");
    const changed: string[] = [];
    one.client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed.push("v1"));
    const two = await v2Agent(endpoint, await mint(), "y");
    two.client.setNotificationHandler("notifications/tools/list_changed", () => void changed.push("v2"));
    expect(one.client.getServerCapabilities()?.tools).toEqual({ listChanged: true });
    expect(two.client.getServerCapabilities()?.prompts).toEqual({ listChanged: true });
    const modern = new V2Client({ name: "agent-modern", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await modern.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${await mint()}` } } }));
    expect(modern.getServerCapabilities()?.tools?.listChanged).toBe(true); // told on subscriptions/listen

    // Both agents' streams are open once the upstream is watched; a call that grows the member's tools tells them.
    expect((await one.client.listTools()).tools.map((t) => t.name)).not.toContain("alpha__grown");
    await Promise.all([one.streamOpen, two.streamOpen]);
    await one.client.callTool({ name: "alpha__grow" });
    await vi.waitFor(() => expect(changed.sort()).toEqual(["v1", "v2"]), { timeout: 5000 });
    expect((await two.client.listTools()).tools.map((t) => t.name)).toContain("alpha__grown");
    for (const c of [one.client, two.client, modern]) await c.close();
  }, 30_000);

  test("when a 2026-07-28 agent listens (subscriptions/listen) and a member's tools change, then tools/list_changed reaches it on the listen stream, and a stream filtered to prompts gets none", async () => {
    const { endpoint, mint } = await workspace();
    const token = await mint();
    const agent = async () => {
      const client = new V2Client({ name: "agent-modern", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
      await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      return client;
    };
    const tools = await agent();
    const prompts = await agent();
    const changed: string[] = [];
    tools.setNotificationHandler("notifications/tools/list_changed", () => void changed.push("tools"));
    prompts.setNotificationHandler("notifications/tools/list_changed", () => void changed.push("prompts stream"));
    const one = await tools.listen({ toolsListChanged: true });
    const two = await prompts.listen({ promptsListChanged: true });
    await tools.callTool({ name: "alpha__grow" });
    await vi.waitFor(() => expect(changed).toEqual(["tools"]), { timeout: 5000 });
    expect((await tools.listTools()).tools.map((t) => t.name)).toContain("alpha__grown");
    await one.close();
    await two.close();
    await tools.close();
    await prompts.close();
  }, 30_000);

  test("when a server is added to the workspace and then disabled, then agents on a GET stream and on subscriptions/listen are told tools/list_changed each time", async () => {
    const { ws, endpoint, mint } = await workspace();
    const admin = await srv.token([ws], "usr_admin");
    const one = await v1Agent(endpoint, await mint(), "x");
    const told: string[] = [];
    one.client.setNotificationHandler(ToolListChangedNotificationSchema, () => void told.push("stream"));
    const modern = new V2Client({ name: "agent-modern", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await modern.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${await mint()}` } } }));
    modern.setNotificationHandler("notifications/tools/list_changed", () => void told.push("listen"));
    const listening = await modern.listen({ toolsListChanged: true });
    await one.streamOpen;
    const count = (who: string) => told.filter((t) => t === who).length;

    const added = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Beta", url: v1.url, authType: "api_key", apiKey: KEY }) });
    expect(added.status, added.text).toBe(201);
    await vi.waitFor(() => expect([count("stream"), count("listen")]).toEqual([1, 1]), { timeout: 10_000 });
    expect((await one.client.listTools()).tools.map((t) => t.name)).toContain("beta__echo");

    const disabled = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${added.json.id}`, { token: admin, body: JSON.stringify({ enabled: false }) });
    expect(disabled.status, disabled.text).toBe(200);
    await vi.waitFor(() => expect([count("stream"), count("listen")]).toEqual([2, 2]), { timeout: 10_000 });
    expect((await one.client.listTools()).tools.map((t) => t.name)).not.toContain("beta__echo");

    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${added.json.id}`, { token: admin })).status).toBe(204);
    // A disabled member is already out of the lists: removing it changes nothing an agent sees, so nothing is told.
    await listening.close();
    await one.client.close();
    await modern.close();
  }, 40_000);

  test("when a 2025-era agent subscribes to a member's resource, then notifications/resources/updated reaches its GET stream under the namespaced URI; unsubscribing unsubscribes the upstream", async () => {
    const { endpoint, mint } = await workspace();
    const one = await v1Agent(endpoint, await mint(), "x");
    const updated: string[] = [];
    one.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    expect(one.client.getServerCapabilities()?.resources).toEqual({ listChanged: true, subscribe: true });
    await one.streamOpen;
    const uri = "mcpws://alpha/mem%3A%2F%2Fgreeting";
    expect(await one.client.subscribeResource({ uri })).toEqual({});
    await vi.waitFor(() => expect(updated).toEqual([uri]), { timeout: 5000 });
    expect(await one.client.unsubscribeResource({ uri })).toEqual({});
    expect(v1.messages!.filter((m) => m.method === "resources/unsubscribe").map((m) => (m.params as { uri: string }).uri)).toContain("mem://greeting");
    await expect(one.client.subscribeResource({ uri: "mcpws://nobody/x" })).rejects.toThrow(/Unknown resource/);
    await one.client.close();
  }, 30_000);

  test("when a 2026-07-28 agent names resources in its listen filter (resourceSubscriptions), then the member is subscribed before the acknowledgement, its updates reach only streams naming them, and closing the stream unsubscribes the upstream", async () => {
    const { ws, endpoint, mint } = await workspace();
    const token = await mint();
    const agent = async () => {
      const client = new V2Client({ name: "agent-modern", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
      await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      const updated: string[] = [];
      client.setNotificationHandler("notifications/resources/updated", (n) => void updated.push(n.params.uri));
      return { client, updated };
    };
    const [one, two, other] = [await agent(), await agent(), await agent()];
    expect(one.client.getServerCapabilities()?.resources).toEqual({ listChanged: true, subscribe: true });
    const [x, y] = [`mem://listen-${ws}/x`, `mem://listen-${ws}/y`];
    const agentUri = (uri: string) => `mcpws://alpha/${encodeURIComponent(uri)}`;
    const first = await one.client.listen({ resourceSubscriptions: [agentUri(x)] });
    expect(first.honoredFilter).toEqual({ resourceSubscriptions: [agentUri(x)] });
    const second = await two.client.listen({ resourceSubscriptions: [agentUri(x), agentUri(y)] });
    const third = await other.client.listen({ toolsListChanged: true });
    // Held before each acknowledgement, once per URI (the peer tells a new subscription at once, too).
    expect([v1.subscribed!(x), v1.subscribed!(y)]).toEqual([1, 1]);
    await vi.waitFor(() => expect(two.updated).toContain(agentUri(y)), { timeout: 5000 });
    one.updated.length = two.updated.length = 0;
    v1.touch!(x);
    v1.touch!(y);
    await vi.waitFor(() => expect(one.updated).toEqual([agentUri(x)]), { timeout: 5000 });
    await vi.waitFor(() => expect(two.updated.sort()).toEqual([agentUri(x), agentUri(y)].sort()), { timeout: 5000 });
    expect(other.updated).toEqual([]);
    // y is named by the second stream alone: closing it lets y go upstream, x stays for the first.
    await second.close();
    await vi.waitFor(() => expect([v1.subscribed!(x), v1.subscribed!(y)]).toEqual([1, 0]), { timeout: 5000 });
    await first.close();
    await vi.waitFor(() => expect(v1.subscribed!(x)).toBe(0), { timeout: 5000 });
    await third.close();

    // Bad input: more URIs than a stream may name is a JSON-RPC error, and nothing is held.
    const many = Array.from({ length: 257 }, (_, i) => agentUri(`mem://many/${i}`));
    await expect(one.client.listen({ resourceSubscriptions: many })).rejects.toThrow(/at most 256/);
    for (const c of [one.client, two.client, other.client]) await c.close();
  }, 30_000);

  test("when the agent ends its session (DELETE), then 204, and the session is refused after (404 on POST, GET and DELETE)", async () => {
    const { endpoint, mint } = await workspace();
    const token = await mint();
    const path = new URL(endpoint).pathname;
    const init = await initialize(path, token);
    const session = init.headers.get("mcp-session-id")!;
    const ping = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" });
    const post = () => raw(srv.baseUrl, "POST", path, { token, headers: { accept: "application/json, text/event-stream", "mcp-session-id": session }, body: ping });
    expect((await post()).status).toBe(200);
    expect((await raw(srv.baseUrl, "DELETE", path, { token: await mint(), headers: { "mcp-session-id": session } })).status).toBe(404); // not that token's
    expect((await raw(srv.baseUrl, "DELETE", path, { token, headers: { "mcp-session-id": session } })).status).toBe(204);
    expect((await post()).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", path, { token, headers: { accept: "text/event-stream", "mcp-session-id": session } })).status).toBe(404);
    expect((await raw(srv.baseUrl, "DELETE", path, { token, headers: { "mcp-session-id": session } })).status).toBe(404);
  }, 30_000);

  test("when the session id is not one the endpoint handed out for this workspace and token, then POST and GET answer 404; GET without text/event-stream 406, without the header 400, for another workspace 403, without a token 401", async () => {
    const { ws, endpoint, mint } = await workspace();
    const token = await mint();
    const path = new URL(endpoint).pathname;
    const init = await initialize(path, token);
    expect(init.status).toBe(200);
    const session = init.headers.get("mcp-session-id")!;
    expect(session).toMatch(/^[\x21-\x7e]+$/);
    const sse = { accept: "text/event-stream" };
    const ping = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" });
    const post = (headers: Record<string, string>, t = token) => raw(srv.baseUrl, "POST", path, { token: t, headers: { accept: "application/json, text/event-stream", ...headers }, body: ping });
    expect((await post({ "mcp-session-id": session })).status).toBe(200);
    const other = await mint(); // another token of the same workspace: the session is not its own
    expect((await post({ "mcp-session-id": session }, other)).status).toBe(404);
    expect((await post({ "mcp-session-id": "mcpgw1.forged" })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", path, { token: other, headers: { ...sse, "mcp-session-id": session } })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", path, { token, headers: { accept: "application/json", "mcp-session-id": session } })).status).toBe(406);
    expect((await raw(srv.baseUrl, "GET", path, { token, headers: sse })).status).toBe(400);
    expect((await raw(srv.baseUrl, "GET", path, { headers: { ...sse, "mcp-session-id": session } })).status).toBe(401);
    const elsewhere = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [`${ws}_other`], scope: "gateway" });
    expect((await raw(srv.baseUrl, "GET", path, { token: elsewhere.token, headers: { ...sse, "mcp-session-id": session } })).status).toBe(403);
    expect((await raw(srv.baseUrl, "DELETE", path, { token: elsewhere.token, headers: { "mcp-session-id": session } })).status).toBe(403);

    const stream = await fetch(endpoint, { headers: { authorization: `Bearer ${token}`, ...sse, "mcp-session-id": session } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await stream.body?.cancel();
  }, 30_000);
});

describe("agent sessions of the workspace endpoint have a bound", () => {
  test("when a session is older than MCP_API_WORKSPACE_SESSION_MAX_MS, then it answers 404 and its GET stream ends; the retention sweep then removes ended sessions' and subscriptions' rows past that bound and keeps younger ones", async () => {
    const short = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_WORKSPACE_SESSION_MAX_MS: "4000" } });
    try {
      const ws = uniqueWorkspace("expiry");
      const admin = await short.token([ws], "usr_admin");
      const added = await raw(short.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Alpha", url: v1.url, authType: "api_key", apiKey: KEY }) });
      expect(added.status, added.text).toBe(201);
      const token = (await short.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
      const path = `/api/workspaces/${ws}/mcp`;
      const post = (session: string, message: object) =>
        raw(short.baseUrl, "POST", path, { token, headers: { accept: "application/json, text/event-stream", "mcp-session-id": session }, body: JSON.stringify({ jsonrpc: "2.0", ...message }) });
      const start = async () => {
        const res = await raw(short.baseUrl, "POST", path, {
          token,
          headers: { accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
        });
        expect(res.status).toBe(200);
        return res.headers.get("mcp-session-id")!;
      };
      const rows = async () => [
        Number((await short.services.db.knex("workspace_sessions_ended").count({ n: "*" }))[0].n),
        Number((await short.services.db.knex("workspace_session_subscriptions").count({ n: "*" }))[0].n),
      ];
      const kept = await start();
      const ended = await start();
      const stream = await fetch(`${short.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream", "mcp-session-id": kept } });
      expect(stream.status).toBe(200);
      expect((await post(kept, { id: 2, method: "resources/subscribe", params: { uri: "mcpws://alpha/mem%3A%2F%2Fgreeting" } })).status).toBe(200);
      expect((await raw(short.baseUrl, "DELETE", path, { token, headers: { "mcp-session-id": ended } })).status).toBe(204);
      expect(await rows()).toEqual([1, 1]);
      expect(await short.services.retention.runOnce()).toBe(0);
      expect(await rows()).toEqual([1, 1]); // not past the bound yet

      // Past the bound: refused, and its GET stream ends.
      await vi.waitFor(async () => expect((await post(kept, { id: 3, method: "ping" })).status).toBe(404), { timeout: 15_000, interval: 250 });
      for await (const _ of stream.body as unknown as AsyncIterable<Uint8Array>) void _;
      expect((await raw(short.baseUrl, "GET", path, { token, headers: { accept: "text/event-stream", "mcp-session-id": kept } })).status).toBe(404);
      await vi.waitFor(async () => {
        await short.services.retention.runOnce();
        expect(await rows()).toEqual([0, 0]);
      }, { timeout: 15_000, interval: 250 });

      // A session ended just now keeps its row.
      const young = await start();
      expect((await raw(short.baseUrl, "DELETE", path, { token, headers: { "mcp-session-id": young } })).status).toBe(204);
      await short.services.retention.runOnce();
      expect(await rows()).toEqual([1, 0]);
      expect((await post(young, { id: 4, method: "ping" })).status).toBe(404);
    } finally {
      await short.stop();
    }
  }, 60_000);
});
