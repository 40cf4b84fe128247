// What the workspace endpoint relays from a member that speaks 2026-07-28 (issue 21): such a member
// has no session and no GET stream, so the gateway listens (subscriptions/listen) on it; its
// list_changed and resources/updated reach 2025-era agents on their GET stream and 2026-07-28
// agents on theirs, its cached lists are dropped on list_changed, a dropped listen stream is
// opened again (and what the member may have sent meanwhile is told as a change), and the outbound
// deadline does not end a listen stream. A real SDK v2 member and real SDK v1 and v2 agents on loopback.
import { createServer, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { McpServer, createMcpHandler } from "@modelcontextprotocol/server";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import * as z4 from "zod/v4";
import { createUpstreamPool } from "../server/outbound/upstream-pool.js";
import { closer, listen } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

/** The listen streams a member has open, each with the filter it was opened with. */
interface OpenListen {
  filter: { toolsListChanged?: boolean; resourceSubscriptions?: string[] };
  res: ServerResponse;
}

/**
 * A 2026-07-28 member (SDK v2's createMcpHandler, stateless) whose tools/list may be cached for
 * ten minutes, with a subscribable resource; `grow()` adds a tool and tells its listen streams.
 * `ignoresSubscriptions`: it advertises resources.subscribe but leaves every URI out of what
 * its listen streams honor (as a member may).
 */
async function startMember({ ignoresSubscriptions = false } = {}) {
  let grown = false;
  const make = () => createMcpHandler(() => {
    const server = new McpServer(
      { name: "v2-listened", version: "2.0.0" },
      { capabilities: { resources: { subscribe: true, listChanged: true } }, cacheHints: { "tools/list": { ttlMs: 600_000, cacheScope: "private" } } },
    );
    server.registerTool("echo", { description: "Says it back.", inputSchema: z4.object({ text: z4.string() }) }, async ({ text }) => ({ content: [{ type: "text" as const, text }] }));
    if (grown) server.registerTool("grown", { description: "Added later." }, async () => ({ content: [{ type: "text" as const, text: "grown" }] }));
    server.registerResource("note", "mem://note", { mimeType: "text/plain" }, async (uri) => ({ contents: [{ uri: uri.href, text: "a note" }] }));
    return server;
  });
  let handler = make();
  const methods: string[] = [];
  const listens = new Set<OpenListen>();
  // While set, a notifications/cancelled (how a client ends its listen stream) is never answered.
  let hangCancels = false;
  const hanging = new Set<ServerResponse>();
  let listensOpened = 0;
  // While set, a subscriptions/listen request is refused (HTTP 503), as by a member that is down.
  let refuseListens = false;
  let listensRefused = 0;
  const http = createServer(async (req, res) => {
    const method = req.headers["mcp-method"];
    if (typeof method === "string") methods.push(method);
    if (refuseListens && method === "subscriptions/listen") {
      listensRefused++;
      res.writeHead(503).end();
      return;
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    let body: unknown;
    if (req.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    }
    if (hangCancels && (body as { method?: string } | undefined)?.method === "notifications/cancelled") {
      hanging.add(res);
      return;
    }
    const asked = method === "subscriptions/listen" ? { ...(body as { params: { notifications: OpenListen["filter"] } }).params.notifications } : null;
    if (asked && ignoresSubscriptions) delete (body as { params: { notifications: OpenListen["filter"] } }).params.notifications.resourceSubscriptions;
    const response = await handler.fetch(new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    let open: OpenListen | null = null;
    if (method === "subscriptions/listen") {
      listensOpened++;
      listens.add((open = { filter: asked!, res }));
      res.once("close", () => listens.delete(open!));
    }
    if (response.body) {
      try {
        for await (const chunk of Readable.fromWeb(response.body as never)) res.write(chunk);
      } catch {
        /* the stream was dropped */
      }
    }
    res.end();
  });
  const port = await listen(http);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    methods,
    listens: () => [...listens].map((l) => l.filter),
    listensOpened: () => listensOpened,
    grow: () => {
      grown = true;
      handler.notify.toolsChanged();
    },
    touch: (uri: string) => handler.notify.resourceUpdated(uri),
    /** The member restarts: its listen streams end gracefully (the empty subscriptions/listen result), and a new handler serves. */
    restart: async () => {
      const old = handler;
      handler = make();
      await old.close();
    },
    /** The network drops every open listen stream (no graceful end). */
    drop: () => {
      for (const l of listens) l.res.socket?.destroy();
    },
    /** Its listen requests are refused (`true`) or served again (`false`). */
    refuseListens: (refuse: boolean) => void (refuseListens = refuse),
    listensRefused: () => listensRefused,
    hangCancels: () => void (hangCancels = true),
    hung: () => hanging.size,
    close: async () => {
      for (const res of hanging) res.socket?.destroy();
      await handler.close();
      await closer(http)();
    },
  };
}

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000", MCP_API_LIST_TTL_MS: "600000" } });
});
afterAll(async () => {
  await srv?.stop();
});

async function workspaceWith(url: string) {
  const ws = uniqueWorkspace("listen");
  const admin = await srv.token([ws], "usr_admin");
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Modern", url }) });
  expect(res.status, res.text).toBe(201);
  const mint = async () => (await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
  return { endpoint: `${srv.baseUrl}/api/workspaces/${ws}/mcp`, mint };
}

/** A 2025-11-25 agent (SDK v1) with a session and its GET stream, which the endpoint watches the members for once open. */
async function legacyAgent(endpoint: string, token: string) {
  let opened!: () => void;
  const streamOpen = new Promise<void>((resolve) => (opened = resolve));
  const fetchTelling: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if ((init?.method ?? "GET") === "GET" && response.status === 200) opened();
    return response;
  };
  const client = new V1Client({ name: "agent-v1", version: "1.0.0" });
  const told: string[] = [];
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void told.push("tools/list_changed"));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void told.push(`updated ${n.params.uri}`));
  await client.connect(new V1Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: fetchTelling }));
  await streamOpen;
  return { client, told };
}

/** A 2026-07-28 agent (SDK v2), told on its own subscriptions/listen stream. */
async function modernAgent(endpoint: string, token: string) {
  const client = new V2Client({ name: "agent-v2", version: "2.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  const told: string[] = [];
  client.setNotificationHandler("notifications/tools/list_changed", () => void told.push("tools/list_changed"));
  client.setNotificationHandler("notifications/resources/updated", (n) => void told.push(`updated ${n.params.uri}`));
  await client.connect(new V2Transport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return { client, told };
}

const NOTE = "mcpws://modern/mem%3A%2F%2Fnote";
// A 2026-07-28 agent's own client keeps the endpoint's list for its ttlMs: asked afresh, the endpoint answers from the gateway's cache.
const names = async (client: V1Client | V2Client) =>
  (await (client instanceof V2Client ? client.listTools(undefined, { cacheMode: "bypass" }) : client.listTools())).tools.map((t) => t.name);

describe("the upstream pool's listen streams", () => {
  test("when the pool closes (shutdown) and the member never answers the listen stream's cancel, then the close still ends, and the stream is gone", async () => {
    const member = await startMember();
    const pool = createUpstreamPool({ fetch: globalThis.fetch, idleMs: 60_000, max: 10, listTtlMs: 60_000, connectTimeoutMs: 500 });
    try {
      const target = { recordId: "mcp_listen", recordVersion: "1", url: member.url, headers: {} };
      expect((await pool.use(target, 5000, (calls) => calls.listTools())).tools.map((t) => t.name)).toEqual(["echo"]);
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true }]), { timeout: 5000 });
      member.hangCancels();
      await pool.close(); // a plain fetch has no deadline: unbounded, this would wait for ever
      expect(member.hung()).toBe(1);
      await vi.waitFor(() => expect(member.listens()).toEqual([]), { timeout: 5000 });
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when a list is served before the kept client's first listen stream is acknowledged and the member changes it meanwhile, then the cached list is dropped once the stream is", async () => {
    const member = await startMember();
    const pool = createUpstreamPool({ fetch: globalThis.fetch, idleMs: 60_000, max: 10, listTtlMs: 60_000, connectTimeoutMs: 2000 });
    try {
      const target = { recordId: "mcp_first_ack", recordVersion: "1", url: member.url, headers: {} };
      const tools = async () => (await pool.use(target, 5000, (calls) => calls.listTools())).tools.map((t) => t.name).sort();
      member.refuseListens(true);
      expect(await tools()).toEqual(["echo"]);
      await vi.waitFor(() => expect(member.listensRefused()).toBeGreaterThan(0), { timeout: 5000 });
      member.grow(); // no listen stream is open: the member tells nobody
      expect(await tools()).toEqual(["echo"]); // from the cache
      member.refuseListens(false);
      await vi.waitFor(() => expect(member.listens()).toHaveLength(1), { timeout: 10_000 });
      await vi.waitFor(async () => expect(await tools()).toEqual(["echo", "grown"]), { timeout: 5000, interval: 100 });
    } finally {
      await pool.close();
      await member.close();
    }
  }, 30_000);
});

describe("a 2026-07-28 member of /api/workspaces/{workspaceId}/mcp", () => {
  test("when it adds a tool, then a 2025-era agent (GET stream) and a 2026-07-28 agent (subscriptions/listen) get tools/list_changed, and the next tools/list shows the tool though the list was cached", async () => {
    const member = await startMember();
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const legacy = await legacyAgent(endpoint, await mint());
      const modern = await modernAgent(endpoint, await mint());
      expect(legacy.client.getServerCapabilities()?.tools).toEqual({ listChanged: true });
      expect(modern.client.getServerCapabilities()?.tools?.listChanged).toBe(true);
      const listening = await modern.client.listen({ toolsListChanged: true });
      // The gateway listens on the member for what it offers: its list changes (no resource is subscribed yet).
      expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true }]);

      expect(await names(legacy.client)).toEqual(["modern__echo"]);
      const listed = () => member.methods.filter((m) => m === "tools/list").length;
      const before = listed();
      expect(await names(legacy.client)).toEqual(["modern__echo"]);
      expect(listed()).toBe(before); // from the cache

      member.grow();
      await vi.waitFor(() => expect([legacy.told, modern.told]).toEqual([["tools/list_changed"], ["tools/list_changed"]]), { timeout: 5000 });
      expect((await names(legacy.client)).sort()).toEqual(["modern__echo", "modern__grown"]);
      expect(listed()).toBe(before + 1);
      await listening.close();
      await legacy.client.close();
      await modern.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when nobody watches it and it adds a tool, then the gateway's cached list is dropped all the same (its kept client listens for what the member offers)", async () => {
    const member = await startMember();
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const modern = await modernAgent(endpoint, await mint()); // no listen stream: nothing of the workspace is watched
      expect(await names(modern.client)).toEqual(["modern__echo"]);
      // Opened with the kept client, not waited for by the list (which, served before the stream's
      // acknowledgement, is dropped from the cache once it arrives).
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true }]), { timeout: 5000 });
      expect(await names(modern.client)).toEqual(["modern__echo"]);
      const listed = () => member.methods.filter((m) => m === "tools/list").length;
      const before = listed();
      expect(await names(modern.client)).toEqual(["modern__echo"]);
      expect(listed()).toBe(before);

      member.grow();
      await vi.waitFor(async () => expect((await names(modern.client)).sort()).toEqual(["modern__echo", "modern__grown"]), { timeout: 5000, interval: 100 });
      expect(modern.told).toEqual([]);
      await modern.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when agents subscribe to its resource (resources/subscribe; a listen filter's resourceSubscriptions), then its listen filter names the resource, its updates reach both agents under the namespaced URI, and the resource leaves the filter when both let go", async () => {
    const member = await startMember();
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const legacy = await legacyAgent(endpoint, await mint());
      const modern = await modernAgent(endpoint, await mint());
      expect(legacy.client.getServerCapabilities()?.resources).toEqual({ listChanged: true, subscribe: true });

      expect(await legacy.client.subscribeResource({ uri: NOTE })).toEqual({});
      // A new filter is a new stream, opened before the old one is closed.
      expect(member.listens()).toContainEqual({ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] });
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] }]), { timeout: 5000 });
      const listening = await modern.client.listen({ resourceSubscriptions: [NOTE] });
      expect(listening.honoredFilter).toEqual({ resourceSubscriptions: [NOTE] });

      member.touch("mem://note");
      member.touch("mem://other"); // not subscribed: the member does not send it
      await vi.waitFor(() => expect([legacy.told, modern.told]).toEqual([[`updated ${NOTE}`], [`updated ${NOTE}`]]), { timeout: 5000 });

      // Still held for the 2026-07-28 agent after the 2025-era one unsubscribes; let go upstream when its stream closes.
      expect(await legacy.client.unsubscribeResource({ uri: NOTE })).toEqual({});
      expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] }]);
      await listening.close();
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true }]), { timeout: 5000 });
      await legacy.client.close();
      await modern.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when it leaves a subscribed resource out of its listen acknowledgement, then the agent's resources/subscribe is refused (-32602) and the URI leaves its filter", async () => {
    const member = await startMember({ ignoresSubscriptions: true });
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const legacy = await legacyAgent(endpoint, await mint());
      await expect(legacy.client.subscribeResource({ uri: NOTE })).rejects.toMatchObject({ code: -32602, message: expect.stringMatching(/did not accept a subscription to mem:\/\/note/) });
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true }]), { timeout: 5000 });
      await legacy.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when its listen stream drops, then the gateway listens again, and later list changes and resource updates still reach the agents", async () => {
    const member = await startMember();
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const legacy = await legacyAgent(endpoint, await mint());
      const modern = await modernAgent(endpoint, await mint());
      const listening = await modern.client.listen({ toolsListChanged: true, resourceSubscriptions: [NOTE] });
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] }]), { timeout: 5000 });
      const opened = member.listensOpened();

      member.drop();
      await vi.waitFor(() => expect([member.listensOpened() > opened, member.listens().length]).toEqual([true, 1]), { timeout: 10_000 });
      expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] }]);
      // Listening again, the gateway tells the agents that anything may have changed meanwhile.
      await vi.waitFor(() => expect(legacy.told).toEqual(["tools/list_changed"]), { timeout: 5000 });
      await vi.waitFor(() => expect(modern.told.sort()).toEqual(["tools/list_changed", `updated ${NOTE}`]), { timeout: 5000 });
      legacy.told.length = modern.told.length = 0;

      member.grow();
      member.touch("mem://note");
      await vi.waitFor(() => expect(legacy.told).toEqual(["tools/list_changed"]), { timeout: 5000 });
      await vi.waitFor(() => expect(modern.told.sort()).toEqual(["tools/list_changed", `updated ${NOTE}`]), { timeout: 5000 });
      expect((await names(modern.client)).sort()).toEqual(["modern__echo", "modern__grown"]);
      await listening.close();
      await legacy.client.close();
      await modern.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when its listen stream is down and it changes its tools and a subscribed resource meanwhile, then once the gateway listens again both agents are told (list_changed, resources/updated) and the next tools/list shows the tool though the list was cached", async () => {
    const member = await startMember();
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const legacy = await legacyAgent(endpoint, await mint());
      const modern = await modernAgent(endpoint, await mint());
      expect(await legacy.client.subscribeResource({ uri: NOTE })).toEqual({});
      const listening = await modern.client.listen({ toolsListChanged: true });
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] }]), { timeout: 5000 });
      expect(await names(legacy.client)).toEqual(["modern__echo"]);

      member.refuseListens(true);
      member.drop();
      await vi.waitFor(() => expect([member.listensRefused() > 0, member.listens().length]).toEqual([true, 0]), { timeout: 10_000 });
      // Heard by nobody: the member has no listen stream open.
      member.grow();
      member.touch("mem://note");
      expect([legacy.told, modern.told]).toEqual([[], []]);
      member.refuseListens(false);

      await vi.waitFor(() => expect(legacy.told.sort()).toEqual(["tools/list_changed", `updated ${NOTE}`]), { timeout: 10_000 });
      await vi.waitFor(() => expect(modern.told).toEqual(["tools/list_changed"]), { timeout: 5000 });
      expect((await names(legacy.client)).sort()).toEqual(["modern__echo", "modern__grown"]);
      expect((await names(modern.client)).sort()).toEqual(["modern__echo", "modern__grown"]);
      await listening.close();
      await legacy.client.close();
      await modern.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);

  test("when the outbound deadline (MCP_API_TOOL_TIMEOUT_MS) is short, then its listen stream outlives it, and its changes reach the agent on that stream", async () => {
    const member = await startMember();
    const short = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "2000", MCP_API_TOOL_TIMEOUT_MS: "2000" } });
    try {
      const ws = uniqueWorkspace("deadline");
      const admin = await short.token([ws], "usr_admin");
      const res = await raw(short.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Modern", url: member.url }) });
      expect(res.status, res.text).toBe(201);
      const { token } = await short.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
      const modern = await modernAgent(`${short.baseUrl}/api/workspaces/${ws}/mcp`, token);
      const listening = await modern.client.listen({ toolsListChanged: true });
      await vi.waitFor(() => expect(member.listens()).toHaveLength(1), { timeout: 5000 });
      const opened = member.listensOpened();
      // Two and a half deadlines long: a stream bounded by the deadline would have ended and been opened again, twice.
      await new Promise((r) => setTimeout(r, 5000));
      expect([member.listensOpened(), member.listens().length]).toEqual([opened, 1]);
      member.grow();
      await vi.waitFor(() => expect(modern.told).toEqual(["tools/list_changed"]), { timeout: 5000 });
      expect(member.listensOpened()).toBe(opened);
      await listening.close();
      await modern.client.close();
    } finally {
      await short.stop();
      await member.close();
    }
  }, 40_000);

  test("when it restarts (its listen stream ends gracefully), then the gateway listens on it again and its later changes still reach the agent", async () => {
    const member = await startMember();
    try {
      const { endpoint, mint } = await workspaceWith(member.url);
      const modern = await modernAgent(endpoint, await mint());
      const listening = await modern.client.listen({ toolsListChanged: true, resourceSubscriptions: [NOTE] });
      await vi.waitFor(() => expect(member.listens()).toEqual([{ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: ["mem://note"] }]), { timeout: 5000 });
      const opened = member.listensOpened();

      await member.restart();
      await vi.waitFor(() => expect([member.listensOpened() > opened, member.listens().length]).toEqual([true, 1]), { timeout: 10_000 });
      // Listening again, the gateway tells the agent that anything may have changed meanwhile.
      await vi.waitFor(() => expect(modern.told.sort()).toEqual(["tools/list_changed", `updated ${NOTE}`]), { timeout: 5000 });
      modern.told.length = 0;
      member.grow();
      member.touch("mem://note");
      await vi.waitFor(() => expect(modern.told.sort()).toEqual(["tools/list_changed", `updated ${NOTE}`]), { timeout: 5000 });
      await listening.close();
      await modern.client.close();
    } finally {
      await member.close();
    }
  }, 30_000);
});
