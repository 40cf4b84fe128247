// A minimal MCP upstream (Streamable HTTP, JSON answers, stateless) that records, for every
// request, the Authorization header and the `who` argument of a tools/call: what the crossing
// tests compare. `check` may refuse a request (e.g. a bearer token the authorization server
// does not know) with a 401.
import { createServer, type IncomingMessage } from "node:http";
import { closer, listen } from "./mcp-peers.js";

export interface RecordedCall {
  method: string;
  authorization: string | undefined;
  who: string | undefined;
  headers: IncomingMessage["headers"];
}

export interface RecordingUpstream {
  url: string;
  calls: RecordedCall[];
  close(): Promise<void>;
}

export async function startRecordingUpstream(check?: (authorization: string | undefined) => Promise<boolean>): Promise<RecordingUpstream> {
  const calls: RecordedCall[] = [];
  const http = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== "POST") return void res.writeHead(405).end();
    let msg: { id?: unknown; method?: string; params?: { name?: string; arguments?: { who?: string } } };
    try {
      msg = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return void res.writeHead(400).end();
    }
    calls.push({ method: msg.method ?? "", authorization: req.headers.authorization, who: msg.params?.arguments?.who, headers: req.headers });
    if (check && !(await check(req.headers.authorization))) return void res.writeHead(401, { "www-authenticate": "Bearer" }).end();
    if (msg.id === undefined) return void res.writeHead(202).end();
    const result =
      msg.method === "initialize"
        ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "recording", version: "1.0.0" } }
        : msg.method === "tools/list"
          ? { tools: [{ name: "whoami", description: "Says who called.", inputSchema: { type: "object", properties: { who: { type: "string" } } } }] }
          : msg.method === "tools/call"
            ? { content: [{ type: "text", text: `called by ${msg.params?.arguments?.who}` }] }
            : {};
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }));
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, calls, close: closer(http) };
}
