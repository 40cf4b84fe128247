// The workspace endpoint, /api/workspaces/{workspaceId}/mcp: an MCP server of its own (SDK v2,
// 2026-07-28 and the 2025 revisions, stateless), whose handlers are the workspace gateway's use cases.
import type { Request, Response } from "express";
import { randomUUID } from "node:crypto";
import { CLIENT_CAPABILITIES_META_KEY, createMcpHandler, LOG_LEVEL_META_KEY, ProtocolError, Server, SUPPORTED_PROTOCOL_VERSIONS, type AuthInfo, type ServerContext } from "@modelcontextprotocol/server";
import { BadMcpRequest } from "../domain/gateway/service.js";
import { DomainError, Forbidden } from "../domain/errors.js";
import { parseMessages } from "../domain/gateway/policy.js";
import type { Actor } from "../domain/tokens.js";
import { MAX_SUBSCRIBED_URI, MAX_SUBSCRIPTIONS, WorkspaceCallError, type CallOptions, type ListChanged, type ToolView, type WorkspaceGateway } from "../domain/workspace-gateway.js";
import { checkOrigin as checkOriginOf } from "./mcp-gateway.js";
import { CallSteps, isHeldState, nextStep, resumeHeld, type Relay } from "./held-requests.js";
import { LiteController } from "../outbound/lite-controller.js";

const SERVER_INFO = { name: "mcp-servers-api-workspace", version: "1.0.0" };

class NotAcceptable extends DomainError {
  constructor(wanted = "application/json, text/event-stream") {
    super(406, "not-acceptable", "The requested media type is not available.", `Send Accept: ${wanted} (Streamable HTTP).`);
  }
}

class UnknownSession extends DomainError {
  constructor() {
    super(404, "not-found", "Not found.", "The MCP session is not one this endpoint handed out for this workspace and token; start a new session (initialize).");
  }
}

/** A keep-alive comment on an idle GET stream, so that proxies do not close it. */
const KEEP_ALIVE_MS = 25_000;

interface Caller {
  /** The gateway serving it (its use cases). */
  workspace: WorkspaceGateway;
  actor: Actor;
  workspaceId: string;
  /** The agent speaks 2026-07-28: list results carry ttlMs and cacheScope. */
  modern: boolean;
  /** Aborted when the agent goes away before its answer is written. */
  gone: LiteController;
  /** On a toolset's endpoint: its tools only, under its names (issue 22). */
  view?: ToolView;
  /** The 2025-era agent session the request names (opened, not ended), if any. */
  session: string | null;
  /** The log level that session set (null: none yet); absent without a session. */
  sessionLevel?: string | null;
}

/** The workspace and view a toolset's endpoint serves, for this caller (403/404 thrown). */
export type ToolsetServing = (actor: Actor, toolsetId: string) => Promise<{ workspaceId: string; view: ToolView }>;

// Calls in flight in this process, by token and the agent's request id, so that the agent's
// notifications/cancelled (a request of its own on a stateless endpoint) reaches the call.
const inFlight = new Map<string, LiteController>();
const flightKey = (tokenId: string, id: unknown) =>
  typeof id === "number" ? `${tokenId}\0n${id}` : typeof id === "string" ? `${tokenId}\0s${id}` : JSON.stringify([tokenId, id]);

// The GET streams of agent sessions open in this process, by session: where notifications/resources/updated go.
const streams = new Map<string, Set<{ write(message: object): void; end(): void }>>();
const tellSession = (session: string, message: object) => streams.get(session)?.forEach((s) => s.write(message));

/** A change as the SDK's listen router takes it. */
type ListEvent = { kind: "tools_list_changed" | "prompts_list_changed" | "resources_list_changed" };
type ServerEvent = ListEvent | { kind: "resource_updated"; uri: string };
const EVENT_OF: Record<ListChanged, ListEvent["kind"]> = {
  "notifications/tools/list_changed": "tools_list_changed",
  "notifications/prompts/list_changed": "prompts_list_changed",
  "notifications/resources/list_changed": "resources_list_changed",
};

/** Log levels from the most to the least verbose (RFC 5424 order, as MCP names them). */
const LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

// The log level a 2025-era agent without a session (a toolset's endpoint) set with
// logging/setLevel, by token, in this process; a session's is kept in the store. Every upstream
// session is asked for every level; the gateway applies each agent's own.
const levels = new Map<string, number>();
const LEVELS_KEPT = 10_000;

function setLevel(tokenId: string, level: string) {
  levels.delete(tokenId);
  if (levels.size >= LEVELS_KEPT) levels.delete(levels.keys().next().value as string);
  levels.set(tokenId, LEVELS.indexOf(level));
}

/**
 * The least severe level the agent wants: a 2026-07-28 agent's request names its own (none: no
 * log messages); a 2025-era agent's is what it set, or every level until it sets one.
 */
function wantedLevel(caller: Caller, answering: Answering, meta: Record<string, unknown> | undefined): number | null {
  if (caller.modern) {
    const named = answering.envelope?.[LOG_LEVEL_META_KEY] ?? meta?.[LOG_LEVEL_META_KEY];
    const at = typeof named === "string" ? LEVELS.indexOf(named) : -1;
    return at < 0 ? null : at;
  }
  if (caller.sessionLevel !== undefined) return caller.sessionLevel === null ? 0 : Math.max(0, LEVELS.indexOf(caller.sessionLevel));
  return levels.get(caller.actor.tokenId) ?? 0;
}

function callerOf(authInfo: AuthInfo | undefined): Caller {
  return authInfo?.extra?.caller as Caller;
}

/** The workspace gateway's failures become JSON-RPC errors with the product's own words. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof WorkspaceCallError) throw new ProtocolError(err.code, err.message, err.data);
    throw err;
  }
}

type Ctx = ServerContext;

/** What a 2026-07-28 agent's retry of a multi-round-trip request carries (the SDK lifts it off the params). */
function resumeOf(ctx: Ctx): CallOptions["resume"] {
  const { inputResponses, requestState } = ctx.mcpReq as { inputResponses?: Record<string, unknown>; requestState?: () => unknown };
  const state = requestState?.();
  if (inputResponses === undefined && typeof state !== "string") return undefined;
  return { ...(inputResponses !== undefined ? { inputResponses } : {}), ...(typeof state === "string" ? { requestState: state } : {}) };
}

/**
 * The agent's request being answered: its id, where the notifications and requests sent while
 * answering it go (its response stream), its own cancellation, and its 2026-07-28 envelope.
 */
interface Answering {
  id: string | number;
  signal?: AbortSignal;
  /**
   * The request's own controller when the call is all the request carries (a direct call): it is
   * the call's, aborted by the agent's going away and its notifications/cancelled alike.
   */
  controller?: LiteController;
  envelope?: Record<string, unknown>;
  /** What a 2026-07-28 agent's retry of a multi-round-trip request carries. */
  resume?: CallOptions["resume"];
  notify(message: { method: string; params?: object }): Promise<void>;
  ask(message: { jsonrpc: "2.0"; id: string; method: string; params: object }): Promise<void>;
}

/** An SDK handler's request, as an Answering. */
function answeringOf(server: Server, ctx: Ctx): Answering {
  return {
    id: ctx.mcpReq.id,
    signal: ctx.mcpReq.signal,
    envelope: (ctx.mcpReq as { envelope?: Record<string, unknown> }).envelope,
    resume: resumeOf(ctx),
    notify: (message) => ctx.mcpReq.notify(message as never),
    ask: (message) => server.transport!.send(message as never, { relatedRequestId: ctx.mcpReq.id }),
  };
}

/**
 * Asks the agent, on the response stream of its request, what an upstream asked while answering
 * it. Its answer, POSTed to whichever process, goes upstream by `answerId` (sealed by the
 * gateway). Only a 2025-era agent can be asked: a 2026-07-28 request has no stream for requests
 * of the server.
 */
async function askAgent(answering: Answering, caller: Caller, method: string, params: Record<string, unknown>, answerId: string): Promise<void> {
  if (caller.modern) throw new ProtocolError(-32601, `${method} cannot be relayed to an agent speaking 2026-07-28 through the workspace endpoint`);
  await answering.ask({ jsonrpc: "2.0", id: answerId, method, params });
}

// Requests asked of 2025-era agents on behalf of a 2026-07-28 member's input_required result,
// awaiting the answer the agent POSTs, by the id given to the request: the SDK client that asked
// retries the call in this process, so the answer can only be used here.
const awaited = new Map<string, { tokenId: string; settle: (message: { result?: unknown; error?: { code: number; message: string; data?: unknown } }) => void }>();

/** Asks a 2025-era agent, on the response stream of its request, and waits for its answer. */
async function askAgentAndWait(answering: Answering, caller: Caller, method: string, params: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
  if (caller.modern) throw new ProtocolError(-32601, `${method} is passed to an agent speaking 2026-07-28 as the input_required result itself`);
  const id = `mcpws-${randomUUID()}`;
  const answered = new Promise<Record<string, unknown>>((resolve, reject) => {
    const stop = () => {
      awaited.delete(id);
      reject(new ProtocolError(-32800, `${method} was cancelled`));
    };
    if (signal.aborted) return stop();
    signal.addEventListener("abort", stop, { once: true });
    awaited.set(id, {
      tokenId: caller.actor.tokenId,
      settle: (message) => {
        awaited.delete(id);
        signal.removeEventListener("abort", stop);
        if (message.error) reject(new ProtocolError(message.error.code, message.error.message, message.error.data));
        else resolve((message.result ?? {}) as Record<string, unknown>);
      },
    });
  });
  try {
    await answering.ask({ jsonrpc: "2.0", id, method, params });
  } catch (err) {
    awaited.get(id)?.settle({ error: { code: -32603, message: `the agent's stream is gone: ${(err as Error).message}` } });
  }
  return answered;
}

/** The distinct resource URIs a listen request's filter names, or why they are refused. */
function listenedResources(params: unknown): string[] | string {
  const named = (params as { notifications?: { resourceSubscriptions?: unknown } } | undefined)?.notifications?.resourceSubscriptions;
  if (!Array.isArray(named)) return [];
  const uris = [...new Set(named.filter((u): u is string => typeof u === "string"))];
  if (uris.length > MAX_SUBSCRIPTIONS) return `Invalid params: a listen stream names at most ${MAX_SUBSCRIPTIONS} resourceSubscriptions.`;
  if (uris.some((u) => u.length > MAX_SUBSCRIBED_URI)) return `Invalid params: a URI in resourceSubscriptions is at most ${MAX_SUBSCRIBED_URI} characters.`;
  return uris;
}

/** Runs one call with the agent's cancellation (however it arrives), its progress, log messages and server-to-client requests passed on. */
async function relayed<T>(answering: Answering, caller: Caller, meta: Record<string, unknown> | undefined, call: (options: CallOptions) => Promise<T>): Promise<T> {
  const token = meta?.progressToken as string | number | undefined;
  const level = wantedLevel(caller, answering, meta);
  // One controller for the call: the agent's notifications/cancelled aborts it here, its request's end or its going away through the listeners.
  // A LiteController: its AbortSignal is made only if something needs one (a direct call needs none).
  const own = answering.controller;
  const cancel = own ?? new LiteController();
  const ended = () => cancel.abort(answering.signal?.reason);
  const gone = () => cancel.abort(caller.gone.reason);
  if (!own) {
    if (answering.signal?.aborted) ended();
    else answering.signal?.addEventListener("abort", ended, { once: true });
    if (caller.gone.aborted) gone();
    else caller.gone.addEventListener("abort", gone);
  }
  const key = flightKey(caller.actor.tokenId, answering.id);
  inFlight.set(key, cancel);
  // A 2026-07-28 agent's call is held at its member's first request of the agent; its bookkeeping (CallSteps, the hold) is made then, so a call without one makes none.
  const started = caller.modern ? Date.now() : 0;
  let steps: CallSteps | undefined;
  let held: ((steps: CallSteps) => void) | undefined;
  // This request's progress (under its own token) and log messages (at its own level).
  const relay: Relay = {
    progress: token === undefined ? undefined : (p) => void answering.notify({ method: "notifications/progress", params: { ...p, progressToken: token } }).catch(() => {}),
    log:
      level === null
        ? undefined
        : (params) => {
            if (LEVELS.indexOf(params.level as string) >= level) void answering.notify({ method: "notifications/message", params }).catch(() => {});
          },
  };
  try {
    // A 2026-07-28 agent's retry of a call held for a 2025-era member's request (./held-requests.ts): the member's progress and log messages come to it, its cancellation cancels that call.
    const state = answering.resume?.requestState;
    if (caller.modern && isHeldState(state)) return (await resumeHeld(caller, state, answering.resume?.inputResponses, cancel.signal, relay)) as T;
    // Once held, the call's messages go to whichever request waits on it (steps.relay), none while nobody does.
    const onlog = (params: Record<string, unknown>) => (steps ? steps.relay?.log?.(params) : relay.log?.(params));
    const running = answer(() =>
      call({
        signal: cancel,
        // The member is given a progressToken only when the call's first request has one: a retry gets progress only then.
        onprogress: token === undefined ? undefined : (p) => (steps ? steps.relay?.progress?.(p) : relay.progress!(p)),
        // A 2026-07-28 agent names its level per request: a retry may want what its first request did not.
        onlog: level === null && !caller.modern ? undefined : onlog,
        onrequest: caller.modern
          ? async (method, params, answerId) => {
              if (!steps) {
                steps = new CallSteps(caller, cancel, started + caller.workspace.toolTimeoutMs, answering.envelope?.[CLIENT_CAPABILITIES_META_KEY] as Record<string, unknown> | undefined, relay);
                held?.(steps);
              }
              steps.push({ ask: { method, params, answerId } });
            }
          : (method, params, answerId) => askAgent(answering, caller, method, params, answerId),
        onlocalrequest: (method, params, signal) =>
          askAgentAndWait(answering, caller, method, params, AbortSignal.any([signal, cancel.signal])),
        // A 2026-07-28 agent gets a member's input_required result and retries with its answers and the state.
        allowInputRequired: caller.modern,
        resume: answering.resume,
      }),
    );
    if (!caller.modern) return await running;
    const first = await new Promise<T | CallSteps>((resolve, reject) => {
      held = resolve;
      if (steps) resolve(steps);
      running.then(
        (result) => (steps ? steps.push({ result }) : resolve(result)),
        (error: unknown) => (steps ? steps.push({ error }) : reject(error)),
      );
    });
    return first instanceof CallSteps ? ((await nextStep(first)) as T) : first;
  } finally {
    if (inFlight.get(key) === cancel) inFlight.delete(key);
    if (!own) {
      answering.signal?.removeEventListener("abort", ended);
      caller.gone.removeEventListener("abort", gone);
    }
  }
}

/** A 2025-era tools/call the endpoint answers itself, without an SDK Server per request (the hot path). */
interface DirectCall {
  id: string | number;
  name: string;
  args: Record<string, unknown> | undefined;
  meta: Record<string, unknown> | undefined;
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const REQUEST_KEYS = new Set(["jsonrpc", "id", "method", "params"]);
const CALL_KEYS = new Set(["name", "arguments", "_meta"]);
const LEGACY_VERSIONS: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;

/**
 * The call, when the request is one the SDK would serve exactly as `answerDirectly` does: one
 * 2025-era tools/call (a supported MCP-Protocol-Version header, no 2026-07-28 envelope or
 * headers) whose params pass the SDK's schema as they are. Anything else (null) goes to the SDK,
 * which answers it, its refusals included, as before.
 */
function directToolCall(req: Request, body: unknown): DirectCall | null {
  const version = req.get("mcp-protocol-version");
  if (version === undefined || !LEGACY_VERSIONS.includes(version) || req.get("mcp-method") !== undefined || req.get("mcp-name") !== undefined) return null;
  if (!isPlain(body) || body.method !== "tools/call" || body.jsonrpc !== "2.0" || !Object.keys(body).every((k) => REQUEST_KEYS.has(k))) return null;
  const { id, params } = body;
  if (typeof id !== "string" && !Number.isSafeInteger(id)) return null;
  if (!isPlain(params) || typeof params.name !== "string" || !Object.keys(params).every((k) => CALL_KEYS.has(k))) return null;
  if (params.arguments !== undefined && !isPlain(params.arguments)) return null;
  const meta = params._meta;
  if (meta !== undefined && !isPlain(meta)) return null;
  const token = meta?.progressToken;
  if (token !== undefined && typeof token !== "string" && !Number.isSafeInteger(token)) return null;
  // No envelope key and a 2025-era header: the SDK classifies it legacy (no claim), as here.
  if (meta !== undefined && Object.keys(meta).some((k) => k.startsWith("io.modelcontextprotocol/"))) return null;
  return { id: id as string | number, name: params.name, args: params.arguments as Record<string, unknown> | undefined, meta };
}

/** A thrown failure as the SDK's Protocol writes it in a JSON-RPC error (2025-era codec: -32002 goes out as -32602). */
function errorOf(err: unknown) {
  const e = err as { code?: unknown; message?: unknown; data?: unknown } | null;
  const code = Number.isSafeInteger(e?.code) ? (e!.code as number) : -32603;
  return { code: code === -32002 ? -32602 : code, message: (e?.message as string | undefined) ?? "Internal error", ...(e?.data !== undefined ? { data: e.data } : {}) };
}

/**
 * Answers a direct call as the SDK's stateless 2025-era transport does: an SSE response carrying
 * what the member sent while answering (progress, log messages, its requests of the agent), then
 * the result or error. Headers go out with the first event.
 */
async function answerDirectly(res: Response, caller: Caller, gone: LiteController, call: DirectCall, run: (options: CallOptions) => Promise<unknown>): Promise<void> {
  const write = (message: object, last = false) => {
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) {
      res.status(200);
      res.setHeader("content-type", "text/event-stream");
      res.setHeader("cache-control", "no-cache, no-transform");
      res.setHeader("x-accel-buffering", "no");
    }
    const event = `event: message\ndata: ${JSON.stringify(message)}\n\n`;
    // The answer ends the response in the same write (an answer alone goes out with its headers, as one body).
    if (last) res.end(event);
    else res.write(event);
  };
  const answering: Answering = {
    id: call.id,
    controller: gone,
    notify: async (message) => write({ ...message, jsonrpc: "2.0" }),
    ask: async (message) => write(message),
  };
  let reply: object;
  try {
    reply = { result: await relayed(answering, caller, call.meta, run), jsonrpc: "2.0", id: call.id };
  } catch (err) {
    reply = { jsonrpc: "2.0", id: call.id, error: errorOf(err) };
  }
  write(reply, true);
  if (!res.writableEnded) res.end();
}

function serverFor(workspace: WorkspaceGateway, caller: Caller, listTtlMs: number): Server {
  // A 2025-era agent's session GET stream carries the members' list_changed; a 2026-07-28 agent's subscriptions/listen stream does. A view has neither.
  const changes = caller.view ? {} : { listChanged: true };
  // 2025-era agents subscribe with resources/subscribe, 2026-07-28 ones in their listen filter's resourceSubscriptions.
  const subscribe = caller.view ? {} : { subscribe: true };
  const { actor, workspaceId, view } = caller;
  // Results depend on the caller's token (its workspaces, and later its person): never shared between callers.
  const hints = caller.modern ? { ttlMs: listTtlMs, cacheScope: "private" } : {};
  // A toolset's endpoint (issue 22) is this server with its view: only tools, restricted and renamed.
  const server = new Server(SERVER_INFO, {
    capabilities: view ? { tools: {}, logging: {} } : { tools: { ...changes }, prompts: { ...changes }, resources: { ...changes, ...subscribe }, completions: {}, logging: {} },
    instructions: view
      ? `A toolset of workspace ${workspaceId}: exactly the tools tools/list gives.`
      : `The MCP servers of workspace ${workspaceId}; tool, prompt and resource template names are <server namespace>__<name>, resource URIs mcpws://<server namespace>/<the server's URI, percent-encoded>.`,
  });
  server.setRequestHandler("tools/list", async () => ({ ...(await answer(() => workspace.listTools(actor, workspaceId, view))), ...hints }) as never);
  server.setRequestHandler("tools/call", async (request, ctx) =>
    (await relayed(answeringOf(server, ctx), caller, request.params._meta, (o) => workspace.callTool(actor, workspaceId, request.params.name, request.params.arguments, o, view))) as never,
  );
  // Emulated per agent: every upstream session sends every level, and the gateway passes on what this agent asked for.
  server.setRequestHandler("logging/setLevel", async (request) => {
    if (caller.session !== null) await workspace.setSessionLogLevel(caller.session, request.params.level);
    else setLevel(actor.tokenId, request.params.level);
    return {};
  });
  if (view) return server;
  server.setRequestHandler("prompts/list", async () => ({ ...(await answer(() => workspace.listPrompts(actor, workspaceId))), ...hints }) as never);
  server.setRequestHandler("prompts/get", async (request, ctx) =>
    (await relayed(answeringOf(server, ctx), caller, request.params._meta, (o) => workspace.getPrompt(actor, workspaceId, request.params.name, request.params.arguments, o))) as never,
  );
  server.setRequestHandler("resources/list", async () => ({ ...(await answer(() => workspace.listResources(actor, workspaceId))), ...hints }) as never);
  server.setRequestHandler(
    "resources/templates/list",
    async () => ({ ...(await answer(() => workspace.listResourceTemplates(actor, workspaceId))), ...hints }) as never,
  );
  server.setRequestHandler("resources/read", async (request, ctx) =>
    (await relayed(answeringOf(server, ctx), caller, request.params._meta, (o) => workspace.readResource(actor, workspaceId, request.params.uri, o))) as never,
  );
  if (!caller.modern) {
    // A subscription belongs to the agent session: its updates go on that session's GET stream.
    const session = () => {
      if (caller.session === null) throw new ProtocolError(-32600, "resources/subscribe and resources/unsubscribe need a session: send initialize first and then its Mcp-Session-Id");
      return caller.session;
    };
    server.setRequestHandler("resources/subscribe", async (request) => (await answer(() => workspace.subscribe(actor, workspaceId, session(), request.params.uri))) as never);
    server.setRequestHandler("resources/unsubscribe", async (request) => (await answer(() => workspace.unsubscribe(actor, workspaceId, session(), request.params.uri))) as never);
  }
  server.setRequestHandler("completion/complete", async (request, ctx) =>
    (await relayed(answeringOf(server, ctx), caller, request.params._meta, (o) => workspace.complete(actor, workspaceId, request.params as never, o))) as never,
  );
  return server;
}

export function workspaceMcpHandlers(workspace: WorkspaceGateway, publicOrigin: () => string, toolsets?: ToolsetServing) {
  // The public origin (a URL parse) is worked out only for a request that names an Origin: agents other than browsers send none.
  const checkOrigin = (req: Request) => {
    if (req.headers.origin !== undefined) checkOriginOf(req, publicOrigin());
  };
  const factory = (ctx: { authInfo?: AuthInfo }) => serverFor(workspace, callerOf(ctx.authInfo), workspace.listTtlMs);
  const handler = createMcpHandler(factory);

  // subscriptions/listen (2026-07-28) is served by the SDK from an event bus of its handler: one
  // handler per workspace and token while it has listeners, its bus fed by the members' list_changed.
  // The resources its listen streams name (resourceSubscriptions) are held upstream for it, each URI once.
  interface Listening {
    handler: ReturnType<typeof createMcpHandler>;
    listeners: Set<(event: ServerEvent) => void>;
    ready: Promise<() => void>;
    /** Agent URIs the open listen streams name, with how many name each. */
    uris: Map<string, number>;
    resources: Promise<{ refresh(): Promise<void>; release(): void }>;
    stop(): void;
  }
  const listening = new Map<string, Listening>();
  function listenerOf(actor: Actor, workspaceId: string) {
    const key = JSON.stringify([workspaceId, actor.tokenId]);
    const found = listening.get(key);
    if (found) return found;
    const listeners = new Set<(event: ServerEvent) => void>();
    const publish = (event: ServerEvent) => [...listeners].forEach((tell) => tell(event));
    const bus = {
      publish,
      subscribe(listener: (event: ServerEvent) => void) {
        listeners.add(listener);
        return () => {
          if (listeners.delete(listener) && listeners.size === 0) entry.stop();
        };
      },
    };
    // Watching before the stream opens: once the agent has its acknowledgement, no change is missed.
    const ready = workspace.watch(actor, workspaceId, (method) => publish({ kind: EVENT_OF[method] }));
    const uris = new Map<string, number>();
    const resources = workspace.holdResources(actor, workspaceId, `${key}:${randomUUID()}`, () => [...uris.keys()], (uri) => publish({ kind: "resource_updated", uri }));
    const entry: Listening = {
      handler: createMcpHandler(factory, { bus: bus as never }),
      listeners,
      ready,
      uris,
      resources,
      stop() {
        if (listening.get(key) === entry) listening.delete(key);
        void ready.then((stop) => stop()).catch(() => {});
        void resources.then((held) => held.release()).catch(() => {});
      },
    };
    listening.set(key, entry);
    return entry;
  }

  const sendWorkspaceMessage = async (req: Request, res: Response) => {
    checkOrigin(req);
    const actor = (req as Request & { auth: Actor }).auth;
    const workspaceId = req.params.workspaceId as string;
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    await serve(req, res, actor, workspaceId);
  };

  const sendToolsetMessage = async (req: Request, res: Response) => {
    const actor = (req as Request & { auth: Actor }).auth;
    checkOrigin(req);
    if (!toolsets) throw new Error("the workspace endpoint was built without toolsets");
    const { workspaceId, view } = await toolsets(actor, req.params.toolsetId as string);
    await serve(req, res, actor, workspaceId, view);
  };

  async function serve(req: Request, res: Response, actor: Actor, workspaceId: string, view?: ToolView) {
    const accept = req.get("accept") ?? "";
    if (!accept.includes("application/json") || !accept.includes("text/event-stream")) throw new NotAcceptable();
    const sealed = req.get("mcp-session-id");
    const session = sealed === undefined ? null : await workspace.session(actor, workspaceId, sealed);
    if (sealed !== undefined && session === null) throw new UnknownSession();
    const level = session === null ? undefined : workspace.sessionLogLevel(session);
    const sessionLevel = level instanceof Promise ? await level : level;
    const parsed = parseMessages(req.body);
    if (!parsed.ok) throw new BadMcpRequest(`The body is not a JSON-RPC 2.0 message: ${parsed.problems.slice(0, 5).join("; ")}.`);
    // The agent's answers to requests relayed to it go to the upstream session that asked, from whichever process gets them.
    const answers = parsed.messages.filter((m) => m.method === undefined && m.id !== undefined);
    if (answers.length === parsed.messages.length) {
      // An answer that cannot be delivered is dropped: the upstream call that asked then fails at its deadline and says so.
      await Promise.all(
        answers.map((m) => {
          const waiting = awaited.get(String(m.id));
          if (waiting?.tokenId === actor.tokenId) return waiting.settle(m as never);
          return typeof m.id === "string" ? workspace.answer(actor, workspaceId, m.id, m as never).catch(() => false) : false;
        }),
      );
      res.status(202).end();
      return;
    }
    for (const m of parsed.messages) {
      if (m.method === "notifications/cancelled") inFlight.get(flightKey(actor.tokenId, (m.params as { requestId?: unknown } | undefined)?.requestId))?.abort();
    }
    const gone = new LiteController();
    res.on("close", () => {
      if (!res.writableFinished) gone.abort();
    });
    const direct = directToolCall(req, req.body);
    if (direct) {
      const caller: Caller = { workspace, actor, workspaceId, modern: false, gone, view, session, sessionLevel };
      await answerDirectly(res, caller, gone, direct, (o) => workspace.callTool(actor, workspaceId, direct.name, direct.args, o, view));
      return;
    }

    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && name !== "authorization" && name !== "cookie" && name !== "mcp-session-id") headers.set(name, value);
    }
    headers.set("content-type", "application/json");
    const body = JSON.stringify(req.body);
    headers.delete("content-length");
    const modern = req.get("mcp-protocol-version") === "2026-07-28";
    const listen = modern && !view && parsed.messages.length === 1 && parsed.messages[0].method === "subscriptions/listen";
    // A listen stream ends when the agent goes away: the SDK reads that from the request's signal.
    const request = new Request(`http://gateway.invalid${req.originalUrl}`, { method: "POST", headers, body, ...(listen ? { signal: gone.signal } : {}) });
    const authInfo: AuthInfo = { token: "", clientId: actor.tokenId, scopes: [], extra: { caller: { workspace, actor, workspaceId, modern, gone, view, session, sessionLevel } satisfies Caller } };
    let response: globalThis.Response;
    if (listen) {
      const asked = listenedResources(parsed.messages[0].params);
      if (typeof asked === "string") {
        res.status(200).json({ jsonrpc: "2.0", id: parsed.messages[0].id ?? null, error: { code: -32602, message: asked } });
        return;
      }
      const entry = listenerOf(actor, workspaceId);
      await entry.ready.catch(() => {});
      if (asked.length) {
        // Held before the acknowledgement, so that no update after it is missed; let go when the stream ends.
        for (const uri of asked) entry.uris.set(uri, (entry.uris.get(uri) ?? 0) + 1);
        res.once("close", () => {
          for (const uri of asked) {
            const left = (entry.uris.get(uri) ?? 1) - 1;
            if (left > 0) entry.uris.set(uri, left);
            else entry.uris.delete(uri);
          }
          void entry.resources.then((held) => held.refresh()).catch(() => {});
        });
        await entry.resources.then((held) => held.refresh()).catch(() => {});
      }
      try {
        response = await entry.handler.fetch(request, { authInfo, parsedBody: req.body });
      } finally {
        if (entry.listeners.size === 0) entry.stop(); // refused (bad filter, limit, headers): nobody listens
      }
    } else {
      response = await handler.fetch(request, { authInfo, parsedBody: req.body });
    }

    res.status(response.status);
    response.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "transfer-encoding" && name !== "connection") res.setHeader(name, value);
    });
    // A 2025-era handshake opens a session: sealed, so any process continues it, and bound to the workspace and token.
    if (!view && response.ok && parsed.messages.some((m) => m.method === "initialize")) {
      const sealed = workspace.sealSession(actor, workspaceId);
      if (sealed) res.setHeader("mcp-session-id", sealed);
    }
    if (!response.body) {
      res.end();
      return;
    }
    res.flushHeaders();
    const reader = response.body.getReader();
    res.on("close", () => void reader.cancel().catch(() => {}));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    }
    res.end();
  }

  /** A 2025-era session's GET stream: the members' list_changed notifications, from whichever process serves it. */
  const openWorkspaceStream = async (req: Request, res: Response) => {
    checkOrigin(req);
    const actor = (req as Request & { auth: Actor }).auth;
    const workspaceId = req.params.workspaceId as string;
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    if (!(req.get("accept") ?? "").includes("text/event-stream")) throw new NotAcceptable("text/event-stream");
    const session = await workspace.session(actor, workspaceId, req.get("mcp-session-id") ?? "");
    if (session === null) throw new UnknownSession();
    res.status(200);
    res.set({ "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    const closed = new Promise<void>((resolve) => res.once("close", resolve));
    // Watching before the stream opens: once the agent sees it open, no change is missed.
    const stop = await workspace.watch(actor, workspaceId, (method) => {
      if (!res.writableEnded) res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method })}\n\n`);
    });
    const stream = {
      write: (message: object) => void (res.writableEnded || res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`)),
      end: () => void res.end(),
    };
    let mine = streams.get(session);
    if (!mine) streams.set(session, (mine = new Set()));
    mine.add(stream);
    // The session's resource subscriptions, whichever process took them, are held here while its stream is.
    const release = await workspace.holdSubscriptions(actor, workspaceId, session, (uri) =>
      tellSession(session, { jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri } }),
    );
    res.flushHeaders();
    const alive = setInterval(() => res.write(": keep-alive\n\n"), KEEP_ALIVE_MS);
    alive.unref();
    // The stream ends with its session (MCP_API_WORKSPACE_SESSION_MAX_MS): the agent's next request gets 404 and starts a new one.
    const expiry = setTimeout(() => res.end(), Math.min(2 ** 31 - 1, Math.max(0, workspace.sessionLeftMs(session)))); // setTimeout's longest delay
    expiry.unref();
    await closed;
    clearInterval(alive);
    clearTimeout(expiry);
    mine.delete(stream);
    if (!mine.size && streams.get(session) === mine) streams.delete(session);
    release();
    stop();
  };

  /** DELETE: the agent session ends everywhere (its GET streams here close); the members' upstream sessions, shared, stay. */
  const closeWorkspaceSession = async (req: Request, res: Response) => {
    checkOrigin(req);
    const actor = (req as Request & { auth: Actor }).auth;
    const workspaceId = req.params.workspaceId as string;
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    const session = await workspace.endSession(actor, workspaceId, req.get("mcp-session-id") ?? "");
    if (session === null) throw new UnknownSession();
    streams.get(session)?.forEach((s) => s.end());
    res.status(204).end();
  };

  return { sendWorkspaceMessage, openWorkspaceStream, closeWorkspaceSession, sendToolsetMessage };
}
