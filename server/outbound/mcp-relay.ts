// One HTTP exchange with an upstream MCP server over Streamable HTTP, through the guarded
// fetch's lite form (one undici dispatch on the guarded agent, no stream objects): what the
// gateway forwards, and the upstream's answer as JSON-RPC messages (one JSON body read whole,
// or an SSE stream read event by event), each bounded in size.
import type { LiteFetch, LiteInit, LiteResponse } from "./guarded-fetch.js";
import { insufficientScopeChallenge } from "./insufficient-scope.js";
import { EventTooLarge, parseSse, type ParseWork, type SseEvent } from "./sse.js";

export { formatSse, type SseEvent } from "./sse.js";

/** Largest single upstream message (a JSON body, or one SSE event) the gateway passes on. */
export const MAX_UPSTREAM_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface RelayRequest {
  method: "POST" | "GET" | "DELETE";
  url: string;
  /** Everything to send: the record's headers and credential, and the protocol headers passed through. */
  headers: Record<string, string>;
  body?: string;
  signal: NonNullable<LiteInit["signal"]>;
  /** The exchange's deadline, when the caller has one (LiteInit.deadline). */
  deadline?: LiteInit["deadline"];
}

export type RelayAnswer =
  | { kind: "accepted"; sessionId: string | null }
  | { kind: "json"; body: unknown; sessionId: string | null }
  | { kind: "stream"; events: AsyncIterable<SseEvent>; sessionId: string | null }
  /** `insufficientScope`: the scopes a 403 insufficient_scope demands (step-up), "" when it names none. */
  | { kind: "status"; status: number; insufficientScope?: string | null }
  /** A 400 or 404 whose body is a JSON-RPC error: the server's own protocol answer (bad headers, unsupported version, unknown method). */
  | { kind: "rejected"; status: 400 | 404; body: Record<string, unknown> }
  | { kind: "not-mcp"; contentType: string };

export class MessageTooLarge extends Error {
  override readonly name = "MessageTooLarge";
  constructor() {
    super(`the MCP server sent a message larger than ${MAX_UPSTREAM_MESSAGE_BYTES} bytes`);
  }
}

export class NotJson extends Error {
  override readonly name = "NotJson";
  constructor() {
    super("the MCP server answered with a body that is not JSON");
  }
}

export async function relay(fetch: LiteFetch, request: RelayRequest): Promise<RelayAnswer> {
  const response = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    signal: request.signal,
    deadline: request.deadline,
    redirect: "error",
  });
  const sessionId = response.headers.get("mcp-session-id");
  if (response.status === 202 || (request.method === "DELETE" && response.ok)) {
    await response.body?.cancel().catch(() => {});
    return { kind: "accepted", sessionId };
  }
  if ((response.status === 400 || response.status === 404) && /^application\/json\b/i.test(response.headers.get("content-type") ?? "")) {
    let body: unknown = null;
    try {
      body = JSON.parse(await readCapped(response.body));
    } catch {
      /* not JSON: a plain failure below */
    }
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (body && (body as { jsonrpc?: unknown }).jsonrpc === "2.0" && typeof error?.code === "number" && typeof error.message === "string") {
      return { kind: "rejected", status: response.status, body: body as Record<string, unknown> };
    }
    return { kind: "status", status: response.status };
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const insufficientScope = insufficientScopeChallenge(response.status, response.headers.get("www-authenticate"));
    return insufficientScope === null ? { kind: "status", status: response.status } : { kind: "status", status: response.status, insufficientScope };
  }
  const contentType = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (contentType === "application/json") {
    const text = await readCapped(response.body);
    try {
      return { kind: "json", body: JSON.parse(text), sessionId };
    } catch {
      throw new NotJson();
    }
  }
  if (contentType === "text/event-stream" && response.body) return { kind: "stream", events: upstreamEvents(response.body), sessionId };
  await response.body?.cancel().catch(() => {});
  return { kind: "not-mcp", contentType: contentType || "none" };
}

async function readCapped(body: LiteResponse["body"]): Promise<string> {
  if (!body) return "";
  const bytes = await body.bytes(MAX_UPSTREAM_MESSAGE_BYTES);
  if (bytes === null) throw new MessageTooLarge();
  return bytes.toString("utf8");
}

/** The upstream's SSE events, each bounded in size (parsed in linear time: ./sse.ts). */
export async function* upstreamEvents(body: AsyncIterable<Uint8Array>, work?: ParseWork): AsyncGenerator<SseEvent> {
  try {
    yield* parseSse(body, { maxEventBytes: MAX_UPSTREAM_MESSAGE_BYTES, work });
  } catch (err) {
    throw err instanceof EventTooLarge ? new MessageTooLarge() : err;
  }
}
