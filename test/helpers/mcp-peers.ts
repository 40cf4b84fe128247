// Real MCP servers built with the official SDK, on loopback, for the connection tests.
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

export interface Peer {
  url: string;
  /** Headers of every request the peer received. */
  requests: IncomingMessage["headers"][];
  close(): Promise<void>;
}

function toolServer(name: string) {
  const server = new McpServer({ name, version: "1.2.3" });
  server.registerTool(
    "echo",
    { title: "Echo", description: "Says it back.", annotations: { readOnlyHint: true } },
    async () => ({ content: [{ type: "text", text: "hi" }] }),
  );
  server.registerTool("add", { description: "Adds numbers." }, async () => ({ content: [] }));
  return server.server;
}

/** A low-level server whose tools/list answers in pages of one, to prove cursors are followed. */
function pagedServer() {
  const server = new Server({ name: "paged", version: "0.0.1" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async (request) => {
    const page = Number(request.params?.cursor ?? 0);
    return {
      tools: [{ name: `tool_${page}`, inputSchema: { type: "object" as const } }],
      nextCursor: page < 2 ? String(page + 1) : undefined,
    };
  });
  return server;
}

export async function listen(server: HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

export function closer(server: HttpServer) {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
}

export interface StreamableOptions {
  /** Refuse requests without `Authorization: Bearer <this>`. */
  bearer?: string;
  /** Refuse requests without this header and value. */
  header?: [string, string];
  paged?: boolean;
}

/** A Streamable HTTP MCP server (stateless) at /mcp. */
export async function startStreamablePeer(options: StreamableOptions = {}): Promise<Peer> {
  const requests: Peer["requests"] = [];
  const http = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.headers);
    if (options.bearer && req.headers.authorization !== `Bearer ${options.bearer}`) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" }).end(`unauthorized: got ${req.headers.authorization}`);
      return;
    }
    if (options.header && req.headers[options.header[0].toLowerCase()] !== options.header[1]) {
      res.writeHead(403, { "content-type": "text/plain" }).end("missing header");
      return;
    }
    if (!req.url?.startsWith("/mcp")) {
      res.writeHead(404).end();
      return;
    }
    const server = options.paged ? pagedServer() : toolServer("streamable-peer");
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.method === "POST" ? await readBody(req) : undefined);
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, requests, close: closer(http) };
}

/** A legacy HTTP+SSE MCP server: GET /sse opens the stream, POST /messages carries requests. */
export async function startSsePeer(): Promise<Peer> {
  const requests: Peer["requests"] = [];
  const transports = new Map<string, SSEServerTransport>();
  const http = createServer(async (req, res) => {
    requests.push(req.headers);
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.method === "GET" && url.pathname === "/sse") {
      const transport = new SSEServerTransport("/messages", res);
      transports.set(transport.sessionId, transport);
      res.on("close", () => transports.delete(transport.sessionId));
      await toolServer("sse-peer").connect(transport);
    } else if (req.method === "POST" && url.pathname === "/messages") {
      const transport = transports.get(url.searchParams.get("sessionId") ?? "");
      if (!transport) res.writeHead(404).end();
      else await transport.handlePostMessage(req, res);
    } else {
      // What an old server says to a Streamable HTTP initialize.
      res.writeHead(405, { allow: "GET" }).end();
    }
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/sse`, requests, close: closer(http) };
}

/** A plain web page: answers HTML to everything. */
export async function startWebPage(): Promise<Peer> {
  const requests: Peer["requests"] = [];
  const http = createServer((req, res) => {
    requests.push(req.headers);
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>Hello</title><p>Not MCP.</p>");
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/`, requests, close: closer(http) };
}

/** Accepts TCP connections and never answers. */
export async function startSilentPeer(): Promise<Peer> {
  const sockets = new Set<Socket>();
  const requests: Peer["requests"] = [];
  const server = createNetServer((socket) => {
    sockets.add(socket);
    requests.push({});
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port with nothing listening. */
export async function closedPortUrl(): Promise<string> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/mcp`;
}
