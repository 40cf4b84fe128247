// Talks to a registered MCP server with the official SDK: connect over Streamable HTTP with
// SDK v2 (negotiating 2026-07-28, else the 2025 initialize handshake), or, for older servers,
// the legacy HTTP+SSE transport with SDK v1; then tools/list, and close what was opened.
import { Client as ModernClient, SdkHttpError, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport, SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import type { ConnectionError, McpTool } from "../wire.js";
import { describeOutboundError, findTooLarge, type GuardedFetch } from "./guarded-fetch.js";
import { insufficientScopeOf } from "./insufficient-scope.js";

export interface ProbeTarget {
  url: string;
  /** Every header to send: the record's custom headers plus Authorization, if any. */
  headers: Record<string, string>;
  /** Values that must never appear in an error message (keys, tokens, header values). */
  secrets: string[];
}

export interface ProbeOptions {
  fetch: GuardedFetch;
  timeoutMs: number;
  /** Stop following tools/list cursors after this many tools. */
  maxTools?: number;
  /** Ends the probe early, closing its connections (the caller went away). */
  signal?: AbortSignal;
}

export type ProbeResult =
  | {
      ok: true;
      protocolVersion: string | null;
      serverInfo: { name: string; version: string } | null;
      capabilities: Record<string, unknown> | null;
      tools: McpTool[];
      /** The tools as the server listed them (every field), for pinning their definitions (issue 22). */
      definitions?: Record<string, unknown>[];
    }
  /** `insufficientScope`: the server refused with 403 insufficient_scope, demanding these scopes ("" when it named none). */
  | { ok: false; error: ConnectionError; insufficientScope?: string };

const CLIENT_INFO = { name: "mcp-servers-api", version: "0.1.0" };
const MAX_TOOL_PAGES = 100;

class ProbeTimeout extends Error {
  override readonly name = "TimeoutError";
}

export async function probeMcpServer(target: ProbeTarget, options: ProbeOptions): Promise<ProbeResult> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new ProbeTimeout(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
  const callerGone = () => deadline.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", callerGone, { once: true });
  // Every HTTP exchange of the SDK, streams included, ends when the deadline passes.
  // An answer over the size cap ends the whole probe at once (the SDK would otherwise wait
  // for a reply that never comes, and the check would read as a timeout).
  const fetchUntilDeadline: GuardedFetch = async (input, init) => {
    const res = await options.fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal });
    if (!res.body) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(out) {
        try {
          const { done, value } = await reader.read();
          if (done) out.close();
          else out.enqueue(value);
        } catch (err) {
          const tooLarge = findTooLarge(err);
          if (tooLarge) deadline.abort(tooLarge);
          out.error(err);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const url = new URL(target.url);
  let client: { close(): Promise<void> } | null = null;
  let streamable: StreamableHTTPClientTransport | null = null;

  const run = async (): Promise<ProbeResult> => {
    const init = { headers: target.headers };
    const connectOptions = { signal: deadline.signal, timeout: options.timeoutMs };
    let connected: ModernClient | LegacyClient;
    let negotiated: string | null = null;
    try {
      streamable = new StreamableHTTPClientTransport(url, { requestInit: init, fetch: fetchUntilDeadline });
      const modern = new ModernClient(CLIENT_INFO, { capabilities: {}, versionNegotiation: { mode: "auto" } });
      client = modern;
      await modern.connect(streamable, connectOptions);
      negotiated = modern.getNegotiatedProtocolVersion() ?? null;
      connected = modern;
    } catch (err) {
      if (!shouldFallBackToSse(err)) throw err;
      await closeQuietly(client);
      const legacy = new LegacyClient(CLIENT_INFO, { capabilities: {} });
      client = legacy;
      const sse = new SSEClientTransport(url, { requestInit: init, fetch: fetchUntilDeadline });
      const setVersion = sse.setProtocolVersion?.bind(sse);
      sse.setProtocolVersion = (version: string) => {
        negotiated = version;
        setVersion?.(version);
      };
      await legacy.connect(sse, connectOptions);
      connected = legacy;
    }

    const tools: McpTool[] = [];
    const definitions: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES && tools.length < (options.maxTools ?? 1000); page++) {
      const result = await connected.listTools(cursor ? { cursor } : undefined, { signal: deadline.signal, timeout: options.timeoutMs });
      for (const t of result.tools) {
        definitions.push(t as Record<string, unknown>);
        tools.push({
          name: t.name,
          title: typeof t.title === "string" ? t.title : null,
          description: t.description ?? null,
          inputSchema: t.inputSchema as Record<string, unknown>,
          annotations: (t.annotations as Record<string, unknown> | undefined) ?? null,
        });
      }
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    const info = connected.getServerVersion();
    return {
      ok: true,
      protocolVersion: negotiated,
      serverInfo: info ? { name: info.name, version: info.version } : null,
      capabilities: (connected.getServerCapabilities() as Record<string, unknown> | undefined) ?? null,
      tools: tools.slice(0, options.maxTools ?? 1000),
      definitions: definitions.slice(0, options.maxTools ?? 1000),
    };
  };

  const timedOut = new Promise<never>((_, reject) => {
    deadline.signal.addEventListener("abort", () => reject(deadline.signal.reason), { once: true });
  });
  try {
    return await Promise.race([run(), timedOut]);
  } catch (err) {
    const insufficientScope = insufficientScopeOf(err);
    if (insufficientScope !== null) {
      const error: ConnectionError = { class: "auth", message: `the MCP server refused for insufficient scope (HTTP 403)${insufficientScope ? `: it requires ${insufficientScope}` : ""}`, httpStatus: 403 };
      return { ok: false, error, insufficientScope };
    }
    return { ok: false, error: classify(err, target, options.timeoutMs) };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", callerGone);
    // A check closes what it opens: the session the server started ends (DELETE) while the deadline still holds.
    if ((streamable as StreamableHTTPClientTransport | null)?.sessionId && !deadline.signal.aborted) {
      await (streamable as StreamableHTTPClientTransport | null)?.terminateSession().catch(() => {});
    }
    deadline.abort(new ProbeTimeout("probe finished"));
    await closeQuietly(client);
  }
}

// The MCP spec's backwards-compatibility rule: a 4xx to the initialize POST (other than an
// auth refusal) means an older server that speaks HTTP+SSE.
function shouldFallBackToSse(err: unknown): boolean {
  if (!SdkHttpError.isInstance(err)) return false;
  const status = err.status ?? 0;
  return status >= 400 && status < 500 && status !== 401 && status !== 403;
}

async function closeQuietly(client: { close(): Promise<void> } | null) {
  try {
    await client?.close();
  } catch {
    /* the connection is being abandoned anyway */
  }
}

function httpStatusOf(err: unknown): number | null {
  if (SdkHttpError.isInstance(err) && err.status >= 100 && err.status <= 599) return err.status;
  if (err instanceof SseError && typeof err.code === "number" && err.code >= 100 && err.code <= 599) return err.code;
  return null;
}

/** Builds a user-facing error; SDK messages may quote the server's body, so they are not passed on raw. */
export function classify(err: unknown, target: ProbeTarget, timeoutMs: number): ConnectionError {
  const tooLarge = findTooLarge(err);
  if (tooLarge) return { class: "protocol", message: `the MCP server's answer was too large: ${tooLarge.message}`, httpStatus: null };
  const status = httpStatusOf(err);
  if (status === 401 || status === 403) {
    return { class: "auth", message: `the MCP server refused the credentials (HTTP ${status})`, httpStatus: status };
  }
  if (status !== null) return { class: "http", message: `the MCP server answered HTTP ${status}`, httpStatus: status };

  const described = describeOutboundError(err);
  if (described.class === "timeout") return { class: "timeout", message: `no answer within ${timeoutMs} ms`, httpStatus: null };
  if (described.class === "protocol") {
    const text = err instanceof Error ? err.message : String(err);
    const reason = /content type/i.test(text)
      ? "the server did not answer like an MCP server (unexpected content type)"
      : "the server did not complete the MCP handshake";
    return { class: "protocol", message: reason, httpStatus: null };
  }
  return { class: described.class, message: scrub(described.message, target), httpStatus: null };
}

function scrub(message: string, target: ProbeTarget): string {
  let out = message;
  for (const secret of target.secrets) if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  return out.slice(0, 500);
}
