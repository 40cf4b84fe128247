// The per-server MCP endpoint, /api/mcp-servers/{id}/mcp: Streamable HTTP in from the agent,
// the same exchange out to the registered server (with its credentials, never the agent's),
// and its answer — one JSON body or an SSE stream — back, message by message.
import type { Request, Response } from "express";
import type { Logger } from "pino";
import { BadMcpRequest, ServerDisabled, type Exchange, type GatewayContext, type GatewayService, type UpstreamTarget } from "../domain/gateway/service.js";
import { DomainError, Forbidden, UpstreamFailure } from "../domain/errors.js";
import { disabledText } from "../domain/gateway/interceptors.js";
import {
  errorMessage,
  GATEWAY_DENIED,
  GATEWAY_UPSTREAM_FAILED,
  GATEWAY_UPSTREAM_TIMEOUT,
  isMessage,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_METHOD_NOT_FOUND,
  parseMessages,
  protocolHeaders,
  type JsonRpcMessage,
} from "../domain/gateway/policy.js";
import type { Actor } from "../domain/tokens.js";
import type { ConnectRequired } from "../domain/user-connections.js";
import type { ConnectionError } from "../wire.js";
import { describeOutboundError, LiteCancel, type LiteFetch } from "../outbound/guarded-fetch.js";
import { formatSse, MessageTooLarge, NotJson, relay, type RelayAnswer, type SseEvent } from "../outbound/mcp-relay.js";

export interface McpGatewayDeps {
  gateway: GatewayService;
  fetch: LiteFetch;
  toolTimeoutMs: number;
  /** The product's public origin (MCP_API_PUBLIC_URL): the one web origin besides loopback that may call the MCP endpoints. */
  publicOrigin: () => string;
}

type RawHandler = (req: Request, res: Response) => Promise<void>;

// Protocol headers the agent sends that the server needs too (2026-07-28 adds Mcp-Param-*).
// Mcp-Method and Mcp-Name are derived from the forwarded body instead (policy.ts).
// Authorization, cookies and everything else stay here.
const PASSED_THROUGH = /^(accept|mcp-protocol-version|mcp-param-[a-z0-9-]+|last-event-id)$/;

class SessionEnded extends DomainError {
  constructor() {
    super(404, "not-found", "Not found.", "The MCP session has ended or is unknown to the MCP server; start a new session.");
  }
}

class NoSuchStream extends DomainError {
  constructor(what: string) {
    super(405, "method-not-allowed", "This method is not allowed here.", `The MCP server does not offer ${what}.`);
  }
}

class Deadline extends Error {
  override readonly name = "TimeoutError";
}

/** MCP: a session id is visible ASCII (0x21–0x7E); the bound keeps the sealed id within what an agent may send back. */
const UPSTREAM_SESSION_ID = /^[\x21-\x7e]{1,1024}$/;

const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

/**
 * The Streamable HTTP rule against DNS rebinding: a request from a browser page (it has an
 * Origin) is refused with 403 unless that page is the product's own origin or on loopback.
 * The Host header proves nothing here: a rebinding page sends its own name as Host and Origin.
 */
export function checkOrigin(req: Request, publicOrigin: string): void {
  const origin = req.get("origin");
  if (origin !== undefined && origin !== publicOrigin && !LOOPBACK_ORIGIN.test(origin)) {
    throw new Forbidden(`Requests from the web origin ${origin.slice(0, 200)} may not use the MCP endpoints.`);
  }
}

function headerOf(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function upstreamHeaders(req: Request, ctx: GatewayContext, target: UpstreamTarget, derived: Record<string, string> = {}, contentType?: string): Record<string, string> {
  const headers: Record<string, string> = {};
  const sent = req.headers;
  for (const name in sent) {
    const value = sent[name];
    if (typeof value === "string" && PASSED_THROUGH.test(name)) headers[name] = value;
  }
  Object.assign(headers, derived, target.headers);
  if (ctx.upstreamSessionId !== null) headers["mcp-session-id"] = ctx.upstreamSessionId;
  if (contentType !== undefined) headers["content-type"] = contentType;
  return headers;
}

/** A failure as the record's lastError and the agent's error text; never quotes a secret. */
function describeFailure(err: unknown, target: UpstreamTarget, timeoutMs: number): ConnectionError {
  if (err instanceof Deadline || (err as Error)?.name === "TimeoutError" || describeOutboundError(err).class === "timeout") {
    return { class: "timeout", message: `no answer within ${timeoutMs} ms`, httpStatus: null };
  }
  if (err instanceof MessageTooLarge || err instanceof NotJson) return { class: "protocol", message: err.message, httpStatus: null };
  const described = describeOutboundError(err);
  let message = described.message;
  for (const secret of target.secrets) if (secret.length >= 4) message = message.split(secret).join("[redacted]");
  return { class: described.class, message: message.slice(0, 500), httpStatus: null };
}

function statusFailure(status: number): ConnectionError {
  if (status === 401 || status === 403) return { class: "auth", message: `the MCP server refused the stored credentials (HTTP ${status})`, httpStatus: status };
  return { class: "http", message: `the MCP server answered HTTP ${status}`, httpStatus: status };
}

function agentText(ctx: GatewayContext, error: ConnectionError): string {
  return `MCP server '${ctx.server.name}' could not be used: ${error.message}.`;
}

async function writeEvent(res: Response, event: SseEvent): Promise<void> {
  if (!res.write(formatSse(event))) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
}

/** MCP 2025-11-25 URLElicitationRequiredError (-32042); 2026-07-28 keeps the same error for "visit this URL first". */
export const URL_ELICITATION_REQUIRED = -32042;

export function urlElicitationRequired(connect: ConnectRequired) {
  return {
    code: URL_ELICITATION_REQUIRED,
    message: connect.message,
    data: { elicitations: [{ mode: "url" as const, url: connect.url, message: connect.message, elicitationId: connect.elicitationId }] },
  };
}

/** Every request still waiting answered with the URL elicitation (-32042) of `connect`. */
function elicit(ex: Exchange, connect: ConnectRequired): JsonRpcMessage[] {
  const elicitation = urlElicitationRequired(connect);
  return ex.fail(elicitation.code, elicitation.message, "upstream_error").map((m) => ({ ...m, error: { ...(m.error as object), data: elicitation.data } }));
}

const connectFailure = (connect: ConnectRequired): ConnectionError => ({ class: "auth", message: `${connect.message} ${connect.url}`, httpStatus: null });

/** Why an exchange was ended by the agent itself (gone, or notifications/cancelled), not by the server or the deadline. */
class AgentCancelled extends Error {}

/** A request in flight, as the agent's notifications/cancelled names it: its server, upstream session, token and id. */
const flightKey = (actor: Actor, ctx: GatewayContext, id: unknown) => `${ctx.server.id}\n${ctx.upstreamSessionId ?? ""}\n${actor.tokenId}\n${JSON.stringify(id)}`;

export function mcpGatewayHandlers({ gateway, fetch, toolTimeoutMs, publicOrigin }: McpGatewayDeps) {
  // In this process: a notifications/cancelled that reaches another replica leaves the call to its deadline.
  const inFlight = new Map<string, LiteCancel>();
  const actorOf = (req: Request): Actor => {
    checkOrigin(req, publicOrigin());
    return (req as Request & { auth: Actor }).auth;
  };

  /**
   * Reads an upstream stream through to the agent, every message through policy; `ex` tracks
   * answers (absent on the session's own stream). Before each message the record is read again:
   * a stream ends at its next message once the server is disabled, deleted or moved. Answers
   * "ended" then, "done" when the upstream ended the stream.
   */
  async function pipeStream(res: Response, events: AsyncIterable<SseEvent>, ctx: GatewayContext, ex: Exchange | null): Promise<"done" | "ended"> {
    for await (const event of events) {
      if (res.destroyed) return "done";
      if (event.data === undefined) {
        await writeEvent(res, event); // a keep-alive carries nothing, so it costs no record read
        continue;
      }
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        continue; // not JSON-RPC: nothing an agent could use
      }
      if (!isMessage(message)) continue;
      if (!(await ctx.stillRelayable())) return "ended";
      const out = ex ? ex.onUpstreamMessage(message) : ctx.toAgent(message);
      if (out !== null) await writeEvent(res, { ...event, data: JSON.stringify(out) });
    }
    return "done";
  }

  const sendMcpServerMessage: RawHandler = async (req, res) => {
    const actor = actorOf(req);
    const parsed = parseMessages(req.body);
    if (!parsed.ok && parsed.invalidRequest) {
      res.status(400).json(errorMessage(null, JSONRPC_INVALID_REQUEST, `Invalid Request: ${parsed.problems[0]}.`));
      return;
    }
    if (!parsed.ok) throw new BadMcpRequest(`The body is not a JSON-RPC 2.0 message: ${parsed.problems.slice(0, 5).join("; ")}.`);
    // 2026-07-28: headers that disagree with the body are refused (-32020, HTTP 400) before anything else.
    const derived = protocolHeaders({ method: headerOf(req, "mcp-method"), name: headerOf(req, "mcp-name") }, parsed.messages, parsed.batch);
    if (!derived.ok) {
      res.status(400).json(derived.error);
      return;
    }
    const ctx = await gateway.open(actor, req.params.id as string, headerOf(req, "mcp-session-id"));
    const ex = ctx.exchange(parsed.messages);
    // The request's logger is made at its first use (observeHttp): only a failure logs here.
    const log = (): Logger => res.locals.log;
    const modern = headerOf(req, "mcp-protocol-version") === "2026-07-28";
    const reply = (messages: JsonRpcMessage[], sessionId: string | null = null) => {
      if (sessionId) res.set("Mcp-Session-Id", ctx.sealSession(sessionId));
      // 2026-07-28 answers an unknown method with HTTP 404 as well as -32601.
      const unknownMethod = !parsed.batch && modern && (messages[0]?.error as { code?: number } | undefined)?.code === JSONRPC_METHOD_NOT_FOUND;
      res.status(unknownMethod ? 404 : 200).json(parsed.batch ? messages : messages[0]);
    };
    try {
      if (ex.forward.length === 0) {
        if (ex.local.length > 0) return reply(ex.local);
        // Only notifications or responses, and policy dropped them all.
        if (!ctx.target) throw new ServerDisabled(ctx.server);
        res.status(202).end();
        return;
      }
      const target = ctx.requireEnabled();
      // The agent's notifications/cancelled ends its request's exchange here too (the upstream is told as well).
      for (const m of ex.forward) {
        if (m.method === "notifications/cancelled") inFlight.get(flightKey(actor, ctx, (m.params as { requestId?: unknown } | undefined)?.requestId))?.abort(new AgentCancelled("the agent cancelled the request"));
      }
      if (ctx.connect) {
        // This person has no usable connection of their own: every request is told where to connect; nothing goes upstream.
        if (!ex.awaitsAnswer) throw new UpstreamFailure(connectFailure(ctx.connect));
        return reply([...ex.local, ...elicit(ex, ctx.connect)]);
      }
      if (ctx.unavailable) {
        if (!ex.awaitsAnswer) throw new UpstreamFailure(ctx.unavailable);
        return reply([...ex.local, ...ex.fail(GATEWAY_UPSTREAM_FAILED, agentText(ctx, ctx.unavailable), "upstream_error")]);
      }

      const controller = new LiteCancel();
      // Long-lived subscription streams end when the agent leaves, not at a deadline. The
      // deadline is the exchange's own (one timer, in the lite fetch), from the dispatch of the
      // request to the end of the answer's body or stream.
      const bounded = ex.forward.some((m) => typeof m.method === "string" && "id" in m && m.method !== "subscriptions/listen");
      const deadline = bounded ? { ms: toolTimeoutMs, reason: () => new Deadline(`no answer within ${toolTimeoutMs} ms`) } : undefined;
      const flights = ex.forward.filter((m) => "id" in m && typeof m.method === "string").map((m) => flightKey(actor, ctx, m.id));
      for (const key of flights) inFlight.set(key, controller);
      res.on("close", () => {
        if (!res.writableFinished) controller.abort(new AgentCancelled("the agent closed the connection"));
        for (const key of flights) if (inFlight.get(key) === controller) inFlight.delete(key);
      });
      const fail = async (err: unknown) => {
        const error = err instanceof Object && "class" in err ? (err as ConnectionError) : describeFailure(err, target, toolTimeoutMs);
        // The agent's own going away or notifications/cancelled says nothing of the server: not its failure.
        const agentGone = res.destroyed || controller.reason instanceof AgentCancelled;
        if (agentGone) log().debug({ serverId: ctx.server.id }, "the agent cancelled an upstream request");
        else await ctx.recordFailure(error).catch((e) => log().warn({ err: e }, "could not record the upstream failure"));
        const answers = ex.fail(
          error.class === "timeout" ? GATEWAY_UPSTREAM_TIMEOUT : GATEWAY_UPSTREAM_FAILED,
          agentText(ctx, error),
          agentGone ? "cancelled" : error.class === "timeout" ? "timeout" : "upstream_error",
        );
        return { error, answers };
      };

      let answer: RelayAnswer;
      try {
        answer = await relay(fetch, {
          method: "POST",
          url: target.url,
          headers: upstreamHeaders(req, ctx, target, derived.headers, "application/json"),
          body: JSON.stringify(ex.forward.length === 1 && !parsed.batch ? ex.forward[0] : ex.forward),
          signal: controller,
          deadline,
        });
      } catch (err) {
        const { error, answers } = await fail(err);
        if (!ex.awaitsAnswer) throw new UpstreamFailure(error);
        return reply([...ex.local, ...answers]);
      }

      const upstreamSession = "sessionId" in answer ? answer.sessionId : null;
      if (upstreamSession !== null && !UPSTREAM_SESSION_ID.test(upstreamSession)) {
        // One the agent could not send back (its Mcp-Session-Id is at most 4096 characters) or that is not a valid header value.
        controller.abort(new Error("invalid session id"));
        const { error, answers } = await fail({ class: "protocol", message: "the MCP server sent a session id that is not 1 to 1024 visible ASCII characters", httpStatus: null });
        if (!ex.awaitsAnswer) throw new UpstreamFailure(error);
        return reply([...ex.local, ...answers]);
      }

      if (answer.kind === "rejected" && !(answer.status === 404 && ctx.upstreamSessionId !== null)) {
        // The server refused the message at the protocol level (headers, version, unknown method): its answer, as it gave it.
        const error = answer.body.error as { code: number; message: string; data?: unknown };
        ex.fail(error.code, error.message, "error");
        res.status(answer.status).json({ jsonrpc: "2.0", id: answer.body.id ?? null, error: { code: error.code, message: String(error.message).slice(0, 1000), ...(error.data !== undefined ? { data: error.data } : {}) } });
        return;
      }
      if (answer.kind === "rejected" || answer.kind === "status") {
        if (answer.status === 404 && ctx.upstreamSessionId !== null) throw new SessionEnded();
        if (answer.kind === "status" && answer.insufficientScope != null) {
          // Step-up: the connection used is marked, and the agent's person told where to authorize again.
          const stepped = await ctx.insufficientScope(answer.insufficientScope);
          if (stepped.connect) {
            if (!ex.awaitsAnswer) throw new UpstreamFailure(connectFailure(stepped.connect));
            return reply([...ex.local, ...elicit(ex, stepped.connect)]);
          }
          if (!ex.awaitsAnswer) throw new UpstreamFailure(stepped.error);
          return reply([...ex.local, ...ex.fail(GATEWAY_UPSTREAM_FAILED, agentText(ctx, stepped.error), "upstream_error")]);
        }
        if (answer.status === 401) {
          // Authorization-server migration: the record's tokens were dropped and an administrator is told where to authorize again.
          const moved = await ctx.unauthorized();
          if (moved?.connect) {
            if (!ex.awaitsAnswer) throw new UpstreamFailure(connectFailure(moved.connect));
            return reply([...ex.local, ...elicit(ex, moved.connect)]);
          }
        }
        const { error, answers } = await fail(statusFailure(answer.status));
        if (!ex.awaitsAnswer) throw new UpstreamFailure(error);
        return reply([...ex.local, ...answers]);
      }
      if (answer.kind === "not-mcp") {
        const { error, answers } = await fail({ class: "protocol", message: `the MCP server did not answer like an MCP server (content type ${answer.contentType})`, httpStatus: null });
        if (!ex.awaitsAnswer) throw new UpstreamFailure(error);
        return reply([...ex.local, ...answers]);
      }
      if (answer.kind === "accepted") {
        if (ex.awaitsAnswer) {
          const { answers } = await fail({ class: "protocol", message: "the MCP server accepted a request without answering it", httpStatus: null });
          return reply([...ex.local, ...answers]);
        }
        if (answer.sessionId) res.set("Mcp-Session-Id", ctx.sealSession(answer.sessionId));
        res.status(202).end();
        return;
      }
      if (answer.kind === "json") {
        const upstream = (Array.isArray(answer.body) ? answer.body : [answer.body]).filter(isMessage);
        const out = [...ex.local, ...upstream.flatMap((m) => ex.onUpstreamMessage(m) ?? [])];
        if (ex.pending() > 0) out.push(...(await fail({ class: "protocol", message: "the MCP server's answer left requests unanswered", httpStatus: null })).answers);
        await ctx.recordSuccess().catch((e) => log().warn({ err: e }, "could not record the upstream status"));
        return reply(out, answer.sessionId);
      }

      // An SSE stream: notifications and server-to-client requests, then the answers.
      res.status(200);
      res.set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
      if (answer.sessionId) res.set("Mcp-Session-Id", ctx.sealSession(answer.sessionId));
      res.flushHeaders();
      for (const m of ex.local) await writeEvent(res, { event: "message", data: JSON.stringify(m) });
      let failure: unknown = null;
      let ended = false;
      try {
        ended = (await pipeStream(res, answer.events, ctx, ex)) === "ended";
      } catch (err) {
        failure = err;
      } finally {
      }
      if (ended) {
        // Disabled (or moved) while the stream was open: what is still unanswered is refused, and the record's status is not the upstream's fault.
        controller.abort(new Error("the MCP server was disabled"));
        const answers = ex.fail(GATEWAY_DENIED, disabledText(ctx.server), "denied");
        if (!res.destroyed) for (const m of answers) await writeEvent(res, { event: "message", data: JSON.stringify(m) });
      } else if (ex.pending() > 0) {
        const cause = failure ?? { class: "protocol", message: "the MCP server closed the stream before answering", httpStatus: null };
        const { answers } = await fail(cause);
        if (!res.destroyed) for (const m of answers) await writeEvent(res, { event: "message", data: JSON.stringify(m) });
      } else if (failure === null) {
        await ctx.recordSuccess().catch((e) => log().warn({ err: e }, "could not record the upstream status"));
      }
      res.end();
    } finally {
      await ex.settled().catch((e) => log().error({ err: e }, "could not record a tool call"));
    }
  };

  const openMcpServerStream: RawHandler = async (req, res) => {
    const ctx = await gateway.open(actorOf(req), req.params.id as string, headerOf(req, "mcp-session-id"));
    if (ctx.connect) throw new UpstreamFailure(connectFailure(ctx.connect));
    const target = ctx.requireEnabled();
    if (ctx.unavailable) throw new UpstreamFailure(ctx.unavailable);
    const controller = new AbortController();
    res.on("close", () => controller.abort(new Error("the agent closed the stream")));
    let answer: RelayAnswer;
    try {
      answer = await relay(fetch, { method: "GET", url: target.url, headers: upstreamHeaders(req, ctx, target), signal: controller.signal });
      if (answer.kind === "rejected") answer = { kind: "status", status: answer.status };
    } catch (err) {
      if (controller.signal.aborted) return void res.end(); // the agent left before the server opened the stream: not the server's failure
      const error = describeFailure(err, target, toolTimeoutMs);
      await ctx.recordFailure(error);
      throw new UpstreamFailure(error);
    }
    if (answer.kind === "status") {
      if (answer.status === 405) throw new NoSuchStream("a standalone event stream");
      if (answer.status === 404) throw new SessionEnded();
      const error = statusFailure(answer.status);
      await ctx.recordFailure(error);
      throw new UpstreamFailure(error);
    }
    if (answer.kind !== "stream") throw new UpstreamFailure({ class: "protocol", message: "the MCP server did not answer with an event stream", httpStatus: null });
    res.status(200);
    res.set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    res.flushHeaders();
    try {
      await pipeStream(res, answer.events, ctx, null);
    } catch {
      /* the upstream stream broke; the agent reconnects with Last-Event-ID */
    }
    controller.abort(new Error("the stream ended"));
    res.end();
  };

  const closeMcpServerSession: RawHandler = async (req, res) => {
    const ctx = await gateway.open(actorOf(req), req.params.id as string, headerOf(req, "mcp-session-id"));
    if (ctx.connect) throw new UpstreamFailure(connectFailure(ctx.connect));
    const target = ctx.requireEnabled();
    if (ctx.unavailable) throw new UpstreamFailure(ctx.unavailable);
    let answer: RelayAnswer;
    try {
      answer = await relay(fetch, { method: "DELETE", url: target.url, headers: upstreamHeaders(req, ctx, target), signal: AbortSignal.timeout(toolTimeoutMs) });
      if (answer.kind === "rejected") answer = { kind: "status", status: answer.status };
    } catch (err) {
      throw new UpstreamFailure(describeFailure(err, target, toolTimeoutMs));
    }
    if (answer.kind === "accepted") {
      res.status(204).end();
      return;
    }
    if (answer.kind === "status" && answer.status === 405) throw new NoSuchStream("ending sessions");
    if (answer.kind === "status" && answer.status === 404) throw new SessionEnded();
    throw new UpstreamFailure(answer.kind === "status" ? statusFailure(answer.status) : { class: "protocol", message: "unexpected answer to DELETE", httpStatus: null });
  };

  return { sendMcpServerMessage, openMcpServerStream, closeMcpServerSession };
}
