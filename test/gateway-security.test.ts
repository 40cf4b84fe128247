// Issue 18 at the gateway: no upstream can stall the relay, a disabled server is really off,
// policy covers everything relayed, and sessions die with their origin. Each test has a
// hostile loopback peer that records what it receives.
import type { ServerResponse } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startHostilePeer, type HostilePeer } from "./helpers/hostile-peer.js";
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
