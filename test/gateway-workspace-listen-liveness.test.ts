// A 2026-07-28 member's listen stream on a connection that dies with no packet (the member's
// host gone, a NAT dropping the connection): the gateway's liveness check finds it, listens
// again once it can, tells the agents that anything may have changed, and later changes reach
// them. A healthy stream is left alone. A real SDK v2 member behind a loopback TCP proxy that
// can stop delivering without closing anything, and a real SDK v2 agent.
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, connect, type Socket } from "node:net";
import { Readable } from "node:stream";
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { McpServer, createMcpHandler } from "@modelcontextprotocol/server";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import * as z4 from "zod/v4";
import { closer, listen } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const CHECK_MS = 300;

/** A 2026-07-28 member (SDK v2's createMcpHandler) whose listen streams send a keep-alive every `keepAliveMs` (0: none); `grow()` adds a tool. */
async function startMember(keepAliveMs: number) {
  let grown = false;
  const handler = createMcpHandler(
    () => {
      const server = new McpServer({ name: "v2-liveness", version: "2.0.0" }, { capabilities: { tools: { listChanged: true } }, cacheHints: { "tools/list": { ttlMs: 600_000, cacheScope: "private" } } });
      server.registerTool("echo", { description: "Says it back.", inputSchema: z4.object({ text: z4.string() }) }, async ({ text }) => ({ content: [{ type: "text" as const, text }] }));
      if (grown) server.registerTool("grown", { description: "Added later." }, async () => ({ content: [{ type: "text" as const, text: "grown" }] }));
      return server;
    },
    { keepAliveMs },
  );
  const methods: string[] = [];
  let listensOpened = 0;
  const http = createHttpServer(async (req, res) => {
    const method = req.headers["mcp-method"];
    if (typeof method === "string") methods.push(method);
    if (method === "subscriptions/listen") listensOpened++;
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const request = new Request(`http://127.0.0.1${req.url}`, { method: req.method, headers, body: req.method === "POST" ? (Readable.toWeb(req) as ReadableStream) : undefined, duplex: "half" } as RequestInit);
    const response = await handler.fetch(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    try {
      if (response.body) for await (const chunk of Readable.fromWeb(response.body as never)) res.write(chunk);
    } catch {
      /* the stream was dropped */
    }
    res.end();
  });
  const port = await listen(http);
  return {
    port,
    methods,
    listensOpened: () => listensOpened,
    grow: () => {
      grown = true;
      handler.notify.toolsChanged();
    },
    close: async () => {
      await handler.close();
      await closer(http)();
    },
  };
}

interface Link {
  agent: Socket;
  member: Socket | null;
  /** Carries a subscriptions/listen request. */
  listen: boolean;
  /** Delivers nothing any more, either way, and is never closed by the proxy. */
  dead: boolean;
}

/**
 * A TCP proxy to the member on loopback. `down()`: the member's host is gone (every connection
 * stops delivering, new ones are accepted and never answered) until `up()`; `dropListens()`:
 * the connections carrying listen streams stop delivering (a NAT dropped them), the rest work.
 */
async function startProxy(memberPort: number) {
  const links = new Set<Link>();
  let down = false;
  let listenAttemptsWhileDown = 0;
  const server = createTcpServer((agent) => {
    const link: Link = { agent, member: null, listen: false, dead: down };
    links.add(link);
    agent.on("error", () => {});
    agent.on("close", () => {
      links.delete(link);
      if (!link.dead) link.member?.destroy();
    });
    agent.on("data", (data: Buffer) => {
      if (data.includes("subscriptions/listen")) {
        link.listen = true;
        if (link.dead && down) listenAttemptsWhileDown++;
      }
      if (!link.dead) link.member!.write(data);
    });
    if (link.dead) return;
    link.member = connect(memberPort, "127.0.0.1");
    link.member.on("error", () => {});
    link.member.on("data", (data: Buffer) => void (link.dead || agent.write(data)));
    link.member.on("close", () => void (link.dead || agent.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`,
    down: () => {
      down = true;
      for (const l of links) l.dead = true;
    },
    up: () => void (down = false),
    listenAttemptsWhileDown: () => listenAttemptsWhileDown,
    /** Returns how many connections it dropped. */
    dropListens: () => {
      let dropped = 0;
      for (const l of links) if (l.listen && !l.dead) (l.dead = true), dropped++;
      return dropped;
    },
    close: async () => {
      for (const l of links) (l.agent.destroy(), l.member?.destroy());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "4000", MCP_API_LIST_TTL_MS: "600000", MCP_API_LISTEN_CHECK_MS: String(CHECK_MS) } });
});
afterAll(async () => {
  await srv?.stop();
});

/** A workspace whose one member is reached through `url`, and a 2026-07-28 agent listening for its tools' changes. */
async function agentOf(url: string) {
  const ws = uniqueWorkspace("liveness");
  const admin = await srv.token([ws], "usr_admin");
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "Modern", url }) });
  expect(res.status, res.text).toBe(201);
  const { token } = await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" });
  const client = new V2Client({ name: "agent-v2", version: "2.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  const told: string[] = [];
  client.setNotificationHandler("notifications/tools/list_changed", () => void told.push("tools/list_changed"));
  await client.connect(new V2Transport(new URL(`${srv.baseUrl}/api/workspaces/${ws}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  const listening = await client.listen({ toolsListChanged: true });
  // The gateway's list is cached for ten minutes: only a list_changed drops it.
  const names = async () => (await client.listTools(undefined, { cacheMode: "bypass" })).tools.map((t) => t.name).sort();
  expect(await names()).toEqual(["modern__echo"]);
  return {
    told,
    names,
    close: async () => {
      await listening.close();
      await client.close();
    },
  };
}

describe("the upstream pool's listen streams on a connection that dies silently", () => {
  test("when the member's host goes silent (nothing delivered, nothing closed) and comes back, then the gateway listens again, tells the agent anything may have changed, and a change made afterwards reaches it", async () => {
    const member = await startMember(0); // no keep-alives: only the check's request can tell
    const proxy = await startProxy(member.port);
    try {
      const agent = await agentOf(proxy.url);
      await vi.waitFor(() => expect(member.listensOpened()).toBe(1), { timeout: 5000 });

      proxy.down();
      // The dead stream is found and a new one asked for (into the silence, while the host is gone).
      await vi.waitFor(() => expect(proxy.listenAttemptsWhileDown()).toBeGreaterThan(0), { timeout: 30_000 });
      proxy.up();
      // Attempts on connections that went dead with the host wait out their acknowledgement's bound first.
      await vi.waitFor(() => expect(member.listensOpened()).toBe(2), { timeout: 45_000 });
      await vi.waitFor(() => expect(agent.told).toEqual(["tools/list_changed"]), { timeout: 10_000 });
      agent.told.length = 0;

      member.grow();
      await vi.waitFor(() => expect(agent.told).toEqual(["tools/list_changed"]), { timeout: 10_000 });
      expect(await agent.names()).toEqual(["modern__echo", "modern__grown"]);
      await agent.close();
    } finally {
      await proxy.close();
      await member.close();
    }
  }, 120_000);

  test("when only the connection of its listen stream stops delivering (the member still answers on others) and the stream carried keep-alives, then the gateway listens again, tells the agent, and a change made afterwards reaches it", async () => {
    const member = await startMember(100);
    const proxy = await startProxy(member.port);
    try {
      const agent = await agentOf(proxy.url);
      await vi.waitFor(() => expect(member.listensOpened()).toBe(1), { timeout: 5000 });
      // Keep-alives have arrived before the drop.
      await new Promise((r) => setTimeout(r, 500));

      expect(proxy.dropListens()).toBe(1);
      await vi.waitFor(() => expect(member.listensOpened()).toBe(2), { timeout: 30_000 });
      await vi.waitFor(() => expect(agent.told).toEqual(["tools/list_changed"]), { timeout: 10_000 });
      agent.told.length = 0;

      member.grow();
      await vi.waitFor(() => expect(agent.told).toEqual(["tools/list_changed"]), { timeout: 10_000 });
      expect(await agent.names()).toEqual(["modern__echo", "modern__grown"]);
      await agent.close();
    } finally {
      await proxy.close();
      await member.close();
    }
  }, 60_000);

  test("when its listen stream is healthy, with keep-alives or without, then it is kept over many checks: no new stream, nothing told; only the member without keep-alives is asked (server/discover)", async () => {
    const quiet = await startMember(0);
    const beating = await startMember(100);
    const proxies = [await startProxy(quiet.port), await startProxy(beating.port)];
    try {
      const agents = [await agentOf(proxies[0].url), await agentOf(proxies[1].url)];
      await vi.waitFor(() => expect([quiet.listensOpened(), beating.listensOpened()]).toEqual([1, 1]), { timeout: 5000 });
      const since = [quiet.methods.length, beating.methods.length];
      await new Promise((r) => setTimeout(r, 10 * CHECK_MS));
      expect([quiet.listensOpened(), beating.listensOpened()]).toEqual([1, 1]);
      expect(agents.map((a) => a.told)).toEqual([[], []]);
      // 2026-07-28 has no ping: the check asks server/discover.
      expect(quiet.methods.slice(since[0]).filter((m) => m === "server/discover").length).toBeGreaterThan(0);
      expect(beating.methods.slice(since[1])).toEqual([]);
      // Its changes still reach the agents on the same streams.
      quiet.grow();
      beating.grow();
      await vi.waitFor(() => expect(agents.map((a) => a.told)).toEqual([["tools/list_changed"], ["tools/list_changed"]]), { timeout: 10_000 });
      expect([quiet.listensOpened(), beating.listensOpened()]).toEqual([1, 1]);
      for (const a of agents) await a.close();
    } finally {
      for (const p of proxies) await p.close();
      await quiet.close();
      await beating.close();
    }
  }, 60_000);
});
