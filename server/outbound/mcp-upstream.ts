// A short-lived MCP client session with one upstream server (SDK v2, negotiating 2026-07-28
// or falling back to the 2025 handshake), through the guarded fetch, ended when done: a
// session the server opened is terminated, and everything stops at the deadline.
import { Client, ProtocolError, SdkHttpError, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { ConnectionError } from "../wire.js";
import { describeOutboundError, type GuardedFetch } from "./guarded-fetch.js";

export interface UpstreamEndpoint {
  url: string;
  headers: Record<string, string>;
}

/** What the workspace endpoint asks of an upstream server, as plain JSON. */
export interface UpstreamCalls {
  listTools(cursor?: string): Promise<{ tools: Record<string, unknown>[]; nextCursor?: string }>;
  callTool(name: string, args: Record<string, unknown> | undefined): Promise<Record<string, unknown>>;
  listPrompts(cursor?: string): Promise<{ prompts: Record<string, unknown>[]; nextCursor?: string }>;
  getPrompt(name: string, args: Record<string, string> | undefined): Promise<Record<string, unknown>>;
}

class UpstreamDeadline extends Error {
  override readonly name = "TimeoutError";
}

export async function withUpstream<T>(fetch: GuardedFetch, endpoint: UpstreamEndpoint, timeoutMs: number, use: (calls: UpstreamCalls) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new UpstreamDeadline(`no answer within ${timeoutMs} ms`)), timeoutMs);
  const boundedFetch: GuardedFetch = (input, init) =>
    fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal });
  const transport = new StreamableHTTPClientTransport(new URL(endpoint.url), { requestInit: { headers: endpoint.headers }, fetch: boundedFetch });
  const client = new Client({ name: "mcp-servers-api-gateway", version: "1.0.0" }, { capabilities: {}, versionNegotiation: { mode: "auto" } });
  const options = { signal: deadline.signal, timeout: timeoutMs };
  const calls: UpstreamCalls = {
    listTools: async (cursor) => (await client.listTools(cursor ? { cursor } : undefined, options)) as never,
    callTool: async (name, args) => (await client.callTool({ name, arguments: args }, options)) as never,
    // A server without prompts has none to list (the SDK would warn and answer empty).
    listPrompts: async (cursor) =>
      client.getServerCapabilities()?.prompts ? ((await client.listPrompts(cursor ? { cursor } : undefined, options)) as never) : { prompts: [] },
    getPrompt: async (name, args) => (await client.getPrompt({ name, arguments: args }, options)) as never,
  };
  const timedOut = new Promise<never>((_, reject) => deadline.signal.addEventListener("abort", () => reject(deadline.signal.reason), { once: true }));
  try {
    return await Promise.race([client.connect(transport, options).then(() => use(calls)), timedOut]);
  } finally {
    clearTimeout(timer);
    if (transport.sessionId && !deadline.signal.aborted) await transport.terminateSession().catch(() => {});
    deadline.abort(new UpstreamDeadline("done"));
    await client.close().catch(() => {});
  }
}

/**
 * How a failed upstream exchange shows on the record and to the agent; null when the server
 * answered with a JSON-RPC error of its own (that is passed on, not a failure of the server).
 */
export function describeUpstreamFailure(err: unknown, timeoutMs: number, secrets: string[]): ConnectionError | null {
  if (ProtocolError.isInstance(err)) return null;
  const status = SdkHttpError.isInstance(err) ? err.status : NaN;
  if (status === 401 || status === 403) return { class: "auth", message: `the MCP server refused the stored credentials (HTTP ${status})`, httpStatus: status };
  const described = describeOutboundError(err);
  if (described.class === "timeout" || (err as Error)?.name === "TimeoutError") return { class: "timeout", message: `no answer within ${timeoutMs} ms`, httpStatus: null };
  if (Number.isInteger(status) && status >= 400) return { class: "http", message: `the MCP server answered HTTP ${status}`, httpStatus: status };
  let message = described.message;
  for (const secret of secrets) if (secret.length >= 4) message = message.split(secret).join("[redacted]");
  return { class: described.class, message: message.slice(0, 500), httpStatus: null };
}
