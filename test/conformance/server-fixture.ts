// An upstream MCP server for the official conformance suite's server scenarios (2025-era,
// sessionful Streamable HTTP, SDK v1): the tools, resources and prompts the scenario checks
// ask for, with the answers they expect. Built from the scenarios' descriptions.
import { createServer, type IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { completable } from "@modelcontextprotocol/sdk/server/completable.js";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SetLevelRequestSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

// A 1×1 red PNG and a tiny silent WAV.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fixtureServer() {
  const server = new McpServer(
    { name: "conformance-fixture", version: "1.0.0" },
    { capabilities: { logging: {}, completions: {}, resources: { subscribe: true, listChanged: true }, tools: { listChanged: true }, prompts: { listChanged: true } } },
  );
  const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] });
  server.registerTool("test_simple_text", { description: "Returns simple text." }, async () => text("This is a simple text response for testing."));
  server.registerTool("test_image_content", { description: "Returns an image." }, async () => ({ content: [{ type: "image", data: PNG, mimeType: "image/png" }] }));
  server.registerTool("test_audio_content", { description: "Returns audio." }, async () => ({ content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] }));
  server.registerTool("test_embedded_resource", { description: "Returns an embedded resource." }, async () => ({
    content: [{ type: "resource", resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." } }],
  }));
  server.registerTool("test_multiple_content_types", { description: "Returns text, image and a resource." }, async () => ({
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: PNG, mimeType: "image/png" },
      { type: "resource", resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"test":"data","value":123}' } },
    ],
  }));
  server.registerTool("test_tool_with_logging", { description: "Logs while it runs." }, async (extra) => {
    for (const [i, message] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
      if (i > 0) await sleep(50);
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: message } });
    }
    return text("Tool with logging executed successfully");
  });
  server.registerTool("test_error_handling", { description: "Always fails." }, async () => ({
    isError: true,
    content: [{ type: "text", text: "This tool intentionally returns an error for testing" }],
  }));
  server.registerTool("test_tool_with_progress", { description: "Reports progress." }, async (extra) => {
    const token = extra._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (progress > 0) await sleep(50);
      if (token !== undefined) await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress, total: 100 } });
    }
    return text(String(token ?? "no progress token"));
  });
  server.registerTool("test_sampling", { description: "Asks the client's model.", inputSchema: { prompt: z.string() } }, async ({ prompt }, extra) => {
    const answer = await server.server.createMessage(
      { messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens: 100 },
      { relatedRequestId: extra.requestId },
    );
    return text(`LLM response: ${answer.content.type === "text" ? answer.content.text : ""}`);
  });
  server.registerTool("test_elicitation", { description: "Asks the user.", inputSchema: { message: z.string() } }, async ({ message }, extra) => {
    const answer = await server.server.elicitInput(
      {
        message,
        requestedSchema: {
          type: "object",
          properties: { username: { type: "string", description: "User's response" }, email: { type: "string", description: "User's email address" } },
          required: ["username", "email"],
        },
      },
      { relatedRequestId: extra.requestId },
    );
    return text(`User response: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`);
  });

  server.registerResource("static-text", "test://static-text", { description: "A static text resource.", mimeType: "text/plain" }, async () => ({
    contents: [{ uri: "test://static-text", mimeType: "text/plain", text: "This is the content of the static text resource." }],
  }));
  server.registerResource("static-binary", "test://static-binary", { description: "A static binary resource.", mimeType: "image/png" }, async () => ({
    contents: [{ uri: "test://static-binary", mimeType: "image/png", blob: PNG }],
  }));
  server.registerResource("watched-resource", "test://watched-resource", { description: "A resource to subscribe to.", mimeType: "text/plain" }, async () => ({
    contents: [{ uri: "test://watched-resource", mimeType: "text/plain", text: "Watched resource content." }],
  }));
  server.registerResource(
    "template",
    new ResourceTemplate("test://template/{id}/data", { list: undefined }),
    { description: "A resource template.", mimeType: "application/json" },
    async (uri, { id }) => ({
      contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }],
    }),
  );

  server.registerPrompt("test_simple_prompt", { description: "A simple prompt." }, () => ({
    messages: [{ role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }],
  }));
  server.registerPrompt(
    "test_prompt_with_arguments",
    {
      description: "A prompt with arguments.",
      argsSchema: {
        arg1: completable(z.string().describe("First test argument"), (value) => ["paris", "park", "party"].filter((v) => v.startsWith(value))),
        arg2: z.string().describe("Second test argument"),
      },
    },
    ({ arg1, arg2 }) => ({ messages: [{ role: "user", content: { type: "text", text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }),
  );
  server.registerPrompt(
    "test_prompt_with_embedded_resource",
    { description: "A prompt embedding a resource.", argsSchema: { resourceUri: z.string().describe("URI of the resource to embed") } },
    ({ resourceUri }) => ({
      messages: [
        { role: "user", content: { type: "resource", resource: { uri: resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } } },
        { role: "user", content: { type: "text", text: "Please process the embedded resource above." } },
      ],
    }),
  );
  server.registerPrompt("test_prompt_with_image", { description: "A prompt with an image." }, () => ({
    messages: [
      { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } },
    ],
  }));

  server.server.setRequestHandler(SetLevelRequestSchema, async () => ({}));
  server.server.setRequestHandler(SubscribeRequestSchema, async () => ({}));
  server.server.setRequestHandler(UnsubscribeRequestSchema, async () => ({}));
  return server;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
}

/** Starts the fixture on loopback at /mcp; requests need `Authorization: Bearer <bearer>` when one is given. */
export async function startConformanceFixture(options: { bearer?: string } = {}) {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const http = createServer(async (req, res) => {
    try {
      if (options.bearer && req.headers.authorization !== `Bearer ${options.bearer}`) {
        res.writeHead(401, { "www-authenticate": "Bearer" }).end();
        return;
      }
      // DNS rebinding protection, by host name (a proxy in front may listen on another port).
      const local = (value: string | undefined) => value === undefined || /^(https?:\/\/)?(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(value);
      if (!local(req.headers.host) || !local(req.headers.origin)) {
        res.writeHead(403, { "content-type": "text/plain" }).end("Host or Origin not allowed");
        return;
      }
      const body = req.method === "POST" ? await readBody(req) : undefined;
      const sid = req.headers["mcp-session-id"];
      let transport = typeof sid === "string" ? sessions.get(sid) : undefined;
      if (!transport) {
        if (typeof sid === "string") {
          res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }));
          return;
        }
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => void sessions.set(id, created),
          onsessionclosed: (id) => void sessions.delete(id),
        });
        await fixtureServer().connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
    } catch {
      if (!res.headersSent) res.writeHead(400).end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
