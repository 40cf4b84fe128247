// What the workspace endpoint relays between an upstream and the agent whose request it is
// answering (issue 21): log messages (their logger naming the member's namespace, each agent's
// level applied by the gateway) and server-to-client requests (sampling), answered by the agent
// and routed back to the upstream call that asked. Real SDK v1 and v2 agents and upstreams on loopback.
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV1SessionPeer, type GatewayPeer } from "./helpers/gateway-peers.js";
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
  return { endpoint: `${srv.baseUrl}/api/workspaces/${ws}/mcp`, mint };
}

type Log = { level: string; logger?: string; data: unknown };

/** A 2025-era agent (SDK v1) whose model answers `says`. */
async function v1Agent(endpoint: string, token: string, says: string) {
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" }, { capabilities: { sampling: {} } });
  const logs: Log[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params as Log));
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", model: "test", content: { type: "text", text: says } }));
  await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return { client, logs };
}

/** A 2025-11-25 agent on SDK v2 whose model answers `says`. */
async function v2Agent(endpoint: string, token: string, says: string) {
  const client = new V2Client({ name: "agent-v2", version: "1.0.0" }, { capabilities: { sampling: {} }, versionNegotiation: { mode: "legacy" } });
  const logs: Log[] = [];
  client.setNotificationHandler("notifications/message", (n) => void logs.push(n.params as Log));
  client.setRequestHandler("sampling/createMessage", async () => ({ role: "assistant", model: "test", content: { type: "text", text: says } }));
  await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return { client, logs };
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
