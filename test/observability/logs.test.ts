// Logs that join up (issue 24): every line of a request carries its request id and trace id,
// and the gateway's lines name the server, method and outcome, never the arguments.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV2Peer, type GatewayPeer } from "../helpers/gateway-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "../helpers/server.js";

const ARGUMENT = "argument-text-logs-6e1f";
const MODERN = { accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28" };
const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };

let srv: TestServer;
let peer: GatewayPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  peer = await startV2Peer();
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

const lines = () => srv.logs.map((l) => JSON.parse(l) as Record<string, unknown>);

describe("request logs", () => {
  test("when an agent calls a tool with its traceparent, then every line of that request has its request id and the agent's trace id, and the gateway line names server, method, tool and outcome without the arguments", async () => {
    const ws = uniqueWorkspace("logs");
    const admin = await srv.token([ws], "usr_admin");
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "upstream", url: peer.url }) });
    expect(created.status, created.text).toBe(201);
    const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
    const traceId = randomBytes(16).toString("hex");
    const requestId = `req-logs-${randomBytes(4).toString("hex")}`;
    const r = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${created.json.id}/mcp`, {
      token,
      headers: { ...MODERN, "mcp-method": "tools/call", "mcp-name": "echo", traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`, "x-request-id": requestId },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: ARGUMENT }, _meta: META } }),
    });
    expect(r.status, r.text).toBe(200);

    const mine = lines().filter((l) => l.requestId === requestId);
    expect(mine.map((l) => l.msg)).toEqual(["mcp message", "request"]);
    for (const l of mine) expect(l.traceId).toBe(traceId);
    expect(mine[0]).toMatchObject({ endpoint: "server", serverId: created.json.id, method: "tools/call", tool: "echo", outcome: "ok" });
    expect(srv.logs.join("\n")).not.toContain(ARGUMENT);
  });

  test("when a request has no traceparent (or a malformed one), then its lines still share one new trace id", async () => {
    const ws = uniqueWorkspace("logs");
    const token = await srv.token([ws], "usr_admin");
    const ids: string[] = [];
    for (const traceparent of [undefined, "00-not-a-trace-01", `00-${"0".repeat(32)}-${"1".repeat(16)}-01`]) {
      const requestId = `req-logs-${randomBytes(4).toString("hex")}`;
      const res = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token, headers: { "x-request-id": requestId, ...(traceparent ? { traceparent } : {}) } });
      expect(res.status).toBe(200);
      const mine = lines().filter((l) => l.requestId === requestId);
      expect(mine.length).toBeGreaterThan(0);
      const traceIds = new Set(mine.map((l) => l.traceId));
      expect(traceIds.size).toBe(1);
      const [id] = [...traceIds] as string[];
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(id).not.toBe("0".repeat(32));
      ids.push(id);
    }
    expect(new Set(ids).size).toBe(3);
  });
});
