// An upstream MCP server for the conformance suite's 2026-07-28 server scenarios (SDK v2's
// createMcpHandler: modern and stateless): the tools, resources and prompts the scenarios
// ask for, built from their descriptions. Requests need the bearer token when one is given.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { completable, createMcpHandler, McpServer, ResourceTemplate } from "@modelcontextprotocol/server";
import * as z from "zod/v4";

const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

function fixtureServer() {
  const server = new McpServer({ name: "conformance-fixture-v2", version: "1.0.0" });
  const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] });
  server.registerTool("test_simple_text", { description: "Returns simple text." }, async () => text("This is a simple text response for testing."));
  server.registerTool("test_image_content", { description: "Returns an image." }, async () => ({ content: [{ type: "image" as const, data: PNG, mimeType: "image/png" }] }));
  server.registerTool("test_audio_content", { description: "Returns audio." }, async () => ({ content: [{ type: "audio" as const, data: WAV, mimeType: "audio/wav" }] }));
  server.registerTool("test_embedded_resource", { description: "Returns an embedded resource." }, async () => ({
    content: [{ type: "resource" as const, resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." } }],
  }));
  server.registerTool("test_multiple_content_types", { description: "Returns text, image and a resource." }, async () => ({
    content: [
      { type: "text" as const, text: "Multiple content types test:" },
      { type: "image" as const, data: PNG, mimeType: "image/png" },
      { type: "resource" as const, resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"test":"data","value":123}' } },
    ],
  }));
  server.registerTool("test_error_handling", { description: "Always fails." }, async () => ({
    isError: true,
    content: [{ type: "text" as const, text: "This tool intentionally returns an error for testing" }],
  }));
  server.registerResource("static-text", "test://static-text", { description: "A static text resource.", mimeType: "text/plain" }, async () => ({
    contents: [{ uri: "test://static-text", mimeType: "text/plain", text: "This is the content of the static text resource." }],
  }));
  server.registerResource("static-binary", "test://static-binary", { description: "A static binary resource.", mimeType: "image/png" }, async () => ({
    contents: [{ uri: "test://static-binary", mimeType: "image/png", blob: PNG }],
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
    messages: [{ role: "user" as const, content: { type: "text" as const, text: "This is a simple prompt for testing." } }],
  }));
  server.registerPrompt(
    "test_prompt_with_arguments",
    {
      description: "A prompt with arguments.",
      argsSchema: z.object({
        arg1: completable(z.string().describe("First test argument"), (value: string) => ["paris", "park", "party"].filter((v) => v.startsWith(value))),
        arg2: z.string().describe("Second test argument"),
      }),
    },
    ({ arg1, arg2 }) => ({ messages: [{ role: "user" as const, content: { type: "text" as const, text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }),
  );
  server.registerPrompt(
    "test_prompt_with_embedded_resource",
    { description: "A prompt embedding a resource.", argsSchema: z.object({ resourceUri: z.string().describe("URI of the resource to embed") }) },
    ({ resourceUri }) => ({
      messages: [
        { role: "user" as const, content: { type: "resource" as const, resource: { uri: resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } } },
        { role: "user" as const, content: { type: "text" as const, text: "Please process the embedded resource above." } },
      ],
    }),
  );
  server.registerPrompt("test_prompt_with_image", { description: "A prompt with an image." }, () => ({
    messages: [
      { role: "user" as const, content: { type: "image" as const, data: PNG, mimeType: "image/png" } },
      { role: "user" as const, content: { type: "text" as const, text: "Please analyze the image above." } },
    ],
  }));
  return server;
}

/** Starts the fixture on loopback at /mcp. */
export async function startConformanceFixtureV2(options: { bearer?: string } = {}) {
  const handler = createMcpHandler(() => fixtureServer());
  const local = (value: string | undefined) => value === undefined || /^(https?:\/\/)?(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(value);
  const http = createServer(async (req, res) => {
    try {
      if (options.bearer && req.headers.authorization !== `Bearer ${options.bearer}`) {
        res.writeHead(401, { "www-authenticate": "Bearer" }).end();
        return;
      }
      if (!local(req.headers.host) || !local(req.headers.origin)) {
        res.writeHead(403, { "content-type": "text/plain" }).end("Host or Origin not allowed");
        return;
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
      const request = new Request(`http://127.0.0.1${req.url}`, {
        method: req.method,
        headers,
        body: req.method === "POST" ? (Readable.toWeb(req) as ReadableStream) : undefined,
        duplex: "half",
      } as RequestInit);
      const response = await handler.fetch(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(400).end();
      else res.end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
