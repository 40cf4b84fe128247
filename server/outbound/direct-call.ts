// tools/call on a kept 2025-era upstream session without the SDK client's request machinery
// (Web fetch, zod on every message): one POST through the guarded lite fetch, the per-server
// relay's connection path, with the session's id and protocol version and the record's
// credential; the JSON or SSE answer read as the relay reads it. The call's answer and progress
// are handled here; every other message on its stream (log messages, the upstream's requests of
// the client, list_changed) goes to the session's SDK client, as if its transport had read it.
// Errors are the ones the SDK client throws for the same answers, so that the pool (a 404 on a
// session reopens it) and the record's lastError read them as before.
import { InsufficientScopeError, ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client";
import { LiteCancel, type CancelSignal, type LiteFetch } from "./guarded-fetch.js";
import { relay, type RelayAnswer, type SseEvent } from "./mcp-relay.js";

type Json = Record<string, unknown>;

/** The kept session a direct call goes on. */
export interface DirectSession {
  url: string;
  /** The record's headers and credential. */
  headers: Record<string, string>;
  sessionId: string | null;
  protocolVersion: string;
  /** A message on the call's stream that is not its answer or its progress: handed to the session's SDK client. */
  dispatch(message: Json): void;
  /** The result as the SDK client's codec takes it (the exact check, for what `plainCallResult` cannot vouch for). */
  decode(raw: unknown): Json;
  /** The tool's output schema check, from the tools/list the SDK client keeps (as its callTool checks it). */
  outputValidator(name: string): Promise<OutputValidator | undefined>;
}

export type OutputValidator = { ok: true; validator: (value: unknown) => { valid: boolean; errorMessage?: string } } | { ok: false; compileError: unknown };

export interface DirectCallOptions {
  /** The pool's deadline: its reason is what the call fails with. */
  deadline: CancelSignal;
  /** The agent's own cancellation. */
  signal?: CancelSignal;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** Takes the stream's other messages instead of `session.dispatch` (the pool hands them on in the context of the call they belong to). */
  dispatch?: (message: Json) => void;
}

/** How often, and after how long, a stream the upstream closed before answering is resumed (GET with Last-Event-ID), as the SDK client does. */
const RESUMES = 2;
const RESUME_DELAY_MS = 1000;

const isPlain = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * True when the SDK's 2025-era result schema would return `r` itself (deep-equal): text content
 * blocks with nothing else in them, and no `_meta` or `resultType` to parse. Anything else is
 * decoded by the SDK's codec.
 */
export function plainCallResult(r: unknown): r is Json {
  if (!isPlain(r) || !Array.isArray(r.content) || r._meta !== undefined || "resultType" in r) return false;
  if (r.structuredContent !== undefined && !isPlain(r.structuredContent)) return false;
  if (r.isError !== undefined && typeof r.isError !== "boolean") return false;
  for (const block of r.content) {
    if (!isPlain(block) || block.type !== "text" || typeof block.text !== "string") return false;
    for (const key in block) if (key !== "type" && key !== "text") return false;
  }
  return true;
}

let sequence = 0;

export async function directToolCall(fetch: LiteFetch, session: DirectSession, params: Json, options: DirectCallOptions): Promise<Json> {
  const name = String(params.name);
  // As the SDK client's callTool: a listed tool's output schema is compiled first, and one that does not compile refuses the call.
  const compiled = await session.outputValidator(name);
  if (compiled && !compiled.ok) {
    const err = compiled.compileError;
    throw new ProtocolError(-32602, `Tool '${name}' has an invalid outputSchema: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`);
  }
  // A string id never meets the SDK client's own (integers) on the shared session.
  const id = `mcpgw-${++sequence}`;
  const request = { jsonrpc: "2.0", id, method: "tools/call", params: options.onprogress ? { ...params, _meta: { ...(params._meta as Json | undefined), progressToken: id } } : params };
  const headers: Record<string, string> = { ...session.headers, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": session.protocolVersion };
  if (session.sessionId !== null) headers["mcp-session-id"] = session.sessionId;

  // One cancellation for the exchange (not an AbortController: a few µs each): the deadline or the agent's cancellation ends it.
  const stop = new LiteCancel();
  const onDeadline = () => stop.abort(options.deadline.reason);
  const onCancel = () => stop.abort(options.signal!.reason);
  if (options.deadline.aborted) onDeadline();
  else options.deadline.addEventListener("abort", onDeadline, { once: true });
  if (options.signal?.aborted) onCancel();
  else options.signal?.addEventListener("abort", onCancel, { once: true });
  let answered = false;
  // What the SDK client throws when a request is given up: the deadline's own reason (a timeout), or RequestTimeout for a cancellation.
  const givenUp = () => (options.deadline.aborted ? options.deadline.reason : new SdkError(SdkErrorCode.RequestTimeout, String(stop.reason)));

  let result: Json | undefined;
  let error: { code: number; message: string; data?: unknown } | undefined;
  /** Handles one message; true once it was the call's answer. */
  const take = (message: unknown): boolean => {
    if (!isPlain(message)) return false;
    if (message.id === id && message.method === undefined) {
      if (isPlain(message.error)) error = message.error as never;
      else result = (message.result ?? {}) as Json;
      return true;
    }
    if (message.method === "notifications/progress" && isPlain(message.params) && message.params.progressToken === id) {
      const { progressToken: _token, ...progress } = message.params;
      options.onprogress?.(progress as never);
      return false;
    }
    (options.dispatch ?? session.dispatch)(message);
    return false;
  };

  try {
    let answer: RelayAnswer;
    try {
      answer = await relay(fetch, { method: "POST", url: session.url, headers, body: JSON.stringify(request), signal: stop });
    } catch (err) {
      if (stop.aborted) throw givenUp();
      throw err;
    }
    if (answer.kind === "status" || answer.kind === "rejected") {
      if (answer.kind === "status" && answer.insufficientScope != null) throw new InsufficientScopeError({ requiredScope: answer.insufficientScope || undefined });
      const text = answer.kind === "rejected" ? JSON.stringify(answer.body) : `HTTP ${answer.status}`;
      throw new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `Error POSTing to endpoint: ${text}`, { status: answer.status, statusText: "", text });
    }
    if (answer.kind === "accepted") throw new Error("the MCP server accepted a request without answering it");
    if (answer.kind === "not-mcp") throw new Error(`the MCP server did not answer like an MCP server (content type ${answer.contentType})`);
    if (answer.kind === "json") {
      for (const message of Array.isArray(answer.body) ? answer.body : [answer.body]) if (take(message)) answered = true;
      if (!answered) throw new Error("the MCP server's answer left the request unanswered");
    } else {
      let events = answer.events;
      for (let resumes = 0; ; resumes++) {
        const ended = await readUntilAnswered(events, take, stop).catch((err: unknown) => {
          throw stop.aborted ? givenUp() : err;
        });
        if (ended.answered) {
          answered = true;
          break;
        }
        // Closed before answering: resumed where it stopped when the upstream gave the events ids (2025-11-25 polling).
        if (ended.lastEventId === undefined || session.sessionId === null || resumes >= RESUMES) throw new Error("the MCP server closed the stream before answering");
        await delay(ended.retryMs ?? RESUME_DELAY_MS, stop).catch(() => {
          throw givenUp();
        });
        let resumed: RelayAnswer;
        try {
          resumed = await relay(fetch, { method: "GET", url: session.url, headers: { ...headers, accept: "text/event-stream", "last-event-id": ended.lastEventId }, signal: stop });
        } catch (err) {
          throw stop.aborted ? givenUp() : err;
        }
        if (resumed.kind !== "stream") throw new Error("the MCP server closed the stream before answering");
        events = resumed.events;
      }
    }
  } finally {
    options.deadline.removeEventListener("abort", onDeadline);
    options.signal?.removeEventListener("abort", onCancel);
    // Given up before the answer: the upstream is told, as the SDK client tells it.
    if (!answered && stop.aborted) void cancelUpstream(fetch, session, headers, id, stop.reason);
  }

  if (error) throw ProtocolError.fromError(error.code, error.message, error.data);
  const value = plainCallResult(result) ? result : session.decode(result);
  const checked = compiled?.ok ? compiled.validator : undefined;
  if (checked && !value.isError) {
    if (value.structuredContent === undefined) throw new ProtocolError(-32600, `Tool ${name} has an output schema but did not return structured content`);
    let outcome: { valid: boolean; errorMessage?: string };
    try {
      outcome = checked(value.structuredContent);
    } catch (err) {
      throw new ProtocolError(-32602, `Failed to validate structured content: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!outcome.valid) throw new ProtocolError(-32602, `Structured content does not match the tool's output schema: ${outcome.errorMessage}`);
  }
  return value;
}

/**
 * Reads a stream's events until the call's answer; what follows it is read on in the
 * background (the upstream usually ends the stream right after, so its connection is kept).
 */
async function readUntilAnswered(events: AsyncIterable<SseEvent>, take: (message: unknown) => boolean, signal: CancelSignal): Promise<{ answered: boolean; lastEventId?: string; retryMs?: number }> {
  const iterator = events[Symbol.asyncIterator]();
  let lastEventId: string | undefined;
  let retryMs: number | undefined;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { answered: false, lastEventId, retryMs };
    const event = next.value;
    if (event.id) lastEventId = event.id;
    if (event.retry !== undefined && /^\d+$/.test(event.retry)) retryMs = Number(event.retry);
    if (event.data === undefined || event.data === "") continue;
    let message: unknown;
    try {
      message = JSON.parse(event.data);
    } catch {
      continue; // not JSON-RPC: the SDK client drops it too
    }
    if (take(message)) {
      void (async () => {
        for (let rest = await iterator.next(); !rest.done && !signal.aborted; rest = await iterator.next()) {
          try {
            if (rest.value.data) take(JSON.parse(rest.value.data));
          } catch {
            /* not JSON-RPC */
          }
        }
      })().catch(() => {});
      return { answered: true };
    }
  }
}

function delay(ms: number, signal: CancelSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
  });
}

/** notifications/cancelled for a call given up, on the same session; its fate is not waited on. */
async function cancelUpstream(fetch: LiteFetch, session: DirectSession, headers: Record<string, string>, requestId: string, reason: unknown): Promise<void> {
  try {
    const body = JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId, reason: String(reason) } });
    const answer = await relay(fetch, { method: "POST", url: session.url, headers, body, signal: AbortSignal.timeout(5000) });
    if (answer.kind === "stream") for await (const _ of answer.events) break;
  } catch {
    /* the upstream is gone, or refuses: nothing more to tell it */
  }
}
