// Interceptors: each wraps one seam of the product (the gateway's records and exchanges, the
// workspace endpoint's calls, the upstream fetch, the OAuth client, the rate limiter) and
// reports metrics, spans and log lines from outside it. None sees arguments or results.
import type { Exchange, GatewayService } from "../domain/gateway/service.js";
import { splitNamespaced } from "../domain/names.js";
import { kindOf, toolOutcome, type JsonRpcId, type JsonRpcMessage } from "../domain/gateway/policy.js";
import { bindScope, currentScope, observing, runInScope, scopeOf, telemetry, type GatewayEndpoint, type RequestScope } from "./hooks.js";

const seconds = (since: number) => (performance.now() - since) / 1000;

function logMessage(endpoint: GatewayEndpoint, serverId: string | null, method: string, tool: string | null, outcome: string, elapsedMs: number, scope = currentScope()) {
  const ms = Math.round(elapsedMs * 10) / 10;
  const fields = { endpoint, serverId, method, ...(tool ? { tool } : {}), outcome, ms };
  if (scope?.note) scope.note(fields, "mcp message");
  else scope?.log?.info(fields, "mcp message");
}

/** `elapsedMs`: from the request reaching the gateway to its answer. */
function reportMessage(endpoint: GatewayEndpoint, serverId: string | null, method: string, tool: string | null, outcome: string, elapsedMs: number, scope?: RequestScope) {
  telemetry.metrics?.gatewayMessage(endpoint, method, outcome, elapsedMs / 1000, { serverId: serverId ?? undefined, tool });
  logMessage(endpoint, serverId, method, tool, outcome, elapsedMs, scope);
}

const toolOf = (m: JsonRpcMessage) => {
  const name = (m.params as Record<string, unknown> | undefined)?.name;
  return m.method === "tools/call" && typeof name === "string" ? name : null;
};

/**
 * The per-server endpoint: every JSON-RPC request of an exchange, answered, refused or failed.
 * Inside a workspace endpoint call the exchange is one member's part of the agent's message,
 * counted by observeWorkspace; here it only names the server and tool for the upstream span.
 */
function observeExchange(ex: Exchange, serverId: string, messages: JsonRpcMessage[], scope: RequestScope | undefined): Exchange {
  const started = performance.now();
  const waiting = new Map<JsonRpcId, { method: string; tool: string | null }>();
  let tools = 0;
  let tool: string | null = null;
  for (const m of messages) {
    if (kindOf(m) !== "request") continue;
    const call = { method: m.method as string, tool: toolOf(m) };
    waiting.set(m.id as JsonRpcId, call);
    if (call.tool !== null) (tools++, (tool = call.tool));
  }
  if (scope && tools === 1) scope.tool = tool;
  if (scope?.endpoint === "workspace") {
    scope.serverId = serverId;
    return ex;
  }
  // Each request's outcome and time are taken when its answer is known, and reported (metrics
  // and the mcp message line) by settled(), which runs once the answer has gone to the agent.
  const answered: { method: string; tool: string | null; outcome: string; ms: number }[] = [];
  const done = (id: JsonRpcId, outcome: string) => {
    const call = waiting.get(id);
    if (!call) return;
    waiting.delete(id);
    answered.push({ method: call.method, tool: call.tool, outcome, ms: performance.now() - started });
  };
  for (const refused of ex.local) done(refused.id as JsonRpcId, "denied");
  if (tracingOn()) {
    const first = [...waiting.values()][0];
    if (first) telemetry.tracing!.annotate({ "mcp.method.name": first.method, ...(first.tool ? { "gen_ai.tool.name": first.tool } : {}), "mcp_api.server.id": serverId });
  }
  // Wrapped in place: the exchange is this call's own, so no copy of it is made.
  const { onUpstreamMessage, fail, settled } = ex;
  ex.onUpstreamMessage = (message) => {
    if (kindOf(message) === "response" && waiting.has(message.id as JsonRpcId)) done(message.id as JsonRpcId, toolOutcome(message));
    return onUpstreamMessage(message);
  };
  ex.fail = (code, text, outcome) => {
    for (const id of [...waiting.keys()]) done(id, outcome);
    return fail(code, text, outcome);
  };
  ex.settled = () => {
    for (const a of answered.splice(0)) reportMessage("server", serverId, a.method, a.tool, a.outcome, a.ms, scope);
    return settled();
  };
  return ex;
}

const tracingOn = () => telemetry.tracing !== null;

/** The gateway service: which upstream URL is which record, failures by class, and exchanges. */
export function observeGateway(gateway: GatewayService): GatewayService {
  return {
    ...gateway,
    async open(actor, id, sessionHeader) {
      const ctx = await gateway.open(actor, id, sessionHeader);
      const scope = scopeOf(actor);
      if (ctx.target) scope?.servers.set(ctx.target.url, ctx.server.id);
      // Wrapped in place: the context is this call's own, so no copy of its many fields is made.
      const { recordFailure, exchange } = ctx;
      ctx.recordFailure = (error) => {
        telemetry.metrics?.upstreamFailure(error.class, ctx.server.id);
        return recordFailure(error);
      };
      ctx.exchange = (messages) => observeExchange(exchange(messages), ctx.server.id, messages, scope);
      return ctx;
    },
  };
}

/** Workspace endpoint use case → the JSON-RPC method it answers. */
const WORKSPACE_METHODS: Record<string, string> = {
  listTools: "tools/list",
  callTool: "tools/call",
  listPrompts: "prompts/list",
  getPrompt: "prompts/get",
  listResources: "resources/list",
  listResourceTemplates: "resources/templates/list",
  readResource: "resources/read",
  complete: "completion/complete",
};

// The workspace gateway's JSON-RPC error codes (domain/workspace-gateway.ts) as outcomes.
const WORKSPACE_OUTCOMES: Record<number, string> = { [-32003]: "denied", [-32004]: "upstream_error", [-32005]: "timeout", [-32800]: "cancelled" };

/**
 * A workspace use case's scope. The request's logger is read through, not copied: its child is
 * made only if a line is written through it. A class, not an object literal with a getter: V8
 * makes such a literal's accessor pair anew for every call where a scavenge counts it as live,
 * so each call's scope outlived its call (as 955a408 found of the request's own scope).
 */
class UseCaseScope implements RequestScope {
  serverId: string | null = null;
  declare note?: RequestScope["note"];
  readonly servers: Map<string, string>;
  readonly #outer: RequestScope;
  constructor(
    outer: RequestScope,
    public tool: string | null,
    public endpoint: GatewayEndpoint,
  ) {
    this.#outer = outer;
    this.servers = outer.servers;
    if (outer.note) this.note = outer.note;
  }
  get log() {
    return this.#outer.log;
  }
}

/** The workspace endpoint: each use case it answers, with its outcome (and tool, for calls). */
export function observeWorkspace<W extends object>(workspace: W, endpoint: GatewayEndpoint = "workspace"): W {
  const wrapped: Record<string, unknown> = { ...(workspace as Record<string, unknown>) };
  for (const [name, method] of Object.entries(WORKSPACE_METHODS)) {
    const inner = (workspace as Record<string, unknown>)[name];
    if (typeof inner !== "function") continue;
    wrapped[name] = async (...args: unknown[]) => {
      const started = performance.now();
      // Every use case takes the actor first; the request's scope is ambient, or bound to it (hooks.ts).
      const actor = args[0] as object;
      const outer = scopeOf(actor);
      // Calls name their tool <namespace>__<tool>: the upstream's own name is reported, beside its server id.
      const tool = method === "tools/call" && typeof args[2] === "string" ? (splitNamespaced(args[2])?.name ?? null) : null;
      const scope: RequestScope | undefined = outer ? new UseCaseScope(outer, tool, endpoint) : undefined;
      if (tracingOn()) telemetry.tracing!.annotate({ "mcp.method.name": method, ...(tool ? { "gen_ai.tool.name": tool } : {}) });
      const run = () => (inner as (...a: unknown[]) => Promise<unknown>).apply(workspace, args);
      // The use case's own scope: ambient when metrics or tracing run requests in AsyncLocalStorage;
      // otherwise bound to a copy of the actor that it is given (the gateway's open and exchange
      // find it there), so that no AsyncLocalStorage runs (on Node 20, once one has, every promise runs async hooks).
      const ambient = scope !== undefined && observing();
      if (scope && !ambient) {
        const own = { ...actor };
        bindScope(own, scope);
        args[0] = own;
      }
      try {
        const result = ambient ? await runInScope(scope, run) : await run();
        const isError = (result as { isError?: unknown } | null)?.isError === true;
        reportMessage(endpoint, scope?.serverId ?? null, method, tool, isError ? "tool_error" : "ok", performance.now() - started, outer);
        return result;
      } catch (err) {
        const code = (err as { code?: unknown })?.code;
        reportMessage(endpoint, scope?.serverId ?? null, method, tool, (typeof code === "number" && WORKSPACE_OUTCOMES[code]) || "error", performance.now() - started, outer);
        throw err;
      }
    };
  }
  return wrapped as W;
}

const METHOD_IN_BODY = /"method"\s*:\s*"([a-zA-Z/_]{1,64})"/;

function headerValue(headers: HeadersInit | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  if (Array.isArray(headers)) return headers.find(([k]) => k.toLowerCase() === name)?.[1];
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** Which MCP method an upstream exchange carries: its Mcp-Method header, or the body's first "method". */
function mcpMethodOf(init: RequestInit | undefined): string {
  const verb = (init?.method ?? "GET").toUpperCase();
  if (verb === "GET") return "stream";
  if (verb === "DELETE") return "session/end";
  const header = headerValue(init?.headers, "mcp-method");
  if (header) return header;
  const body = typeof init?.body === "string" ? init.body : "";
  if (body.trimStart().startsWith("[")) return "batch";
  return METHOD_IN_BODY.exec(body.slice(0, 512))?.[1] ?? "other";
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * The upstream fetch: how long each HTTP exchange with an MCP server took, its span (server
 * id, method, tool name, outcome), and the gateway's traceparent sent with it.
 */
export function observeUpstream<F extends Fetch>(fetch: F, describe: (err: unknown) => { class: string }): F {
  const observed = async (input: string | URL | Request, init?: RequestInit) => {
    const metrics = telemetry.metrics;
    const tracing = telemetry.tracing;
    const scope = currentScope();
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const serverId = scope?.servers.get(url) ?? (scope ? [...scope.servers].find(([u]) => url.startsWith(u))?.[1] : undefined);
    if (scope && serverId) scope.serverId = serverId;
    if (!metrics && !tracing) return fetch(input, init);
    const method = mcpMethodOf(init);
    const tool = method === "tools/call" ? (scope?.tool ?? null) : null;
    const started = performance.now();
    let outcome = "ok";
    const exchange = async (headers?: Headers) => {
      try {
        const response = await fetch(input, headers ? { ...init, headers } : init);
        if (!response.ok && response.status !== 202) outcome = response.status === 401 || response.status === 403 ? "auth" : "http";
        return response;
      } catch (err) {
        // Ended from this side before an answer, not by a deadline (each deadline's reason is a TimeoutError): the agent cancelled or left.
        outcome = init?.signal?.aborted && (init.signal.reason as Error | undefined)?.name !== "TimeoutError" ? "cancelled" : describe(err).class;
        throw err;
      } finally {
        metrics?.upstream(method, outcome, seconds(started), serverId);
      }
    };
    if (!tracing) return exchange();
    let target: URL | null = null;
    try {
      target = new URL(url);
    } catch {
      /* the fetch itself reports it */
    }
    const attributes: Record<string, string | number | boolean> = { "mcp.method.name": method, "http.request.method": (init?.method ?? "GET").toUpperCase() };
    if (serverId) attributes["mcp_api.server.id"] = serverId;
    if (tool) Object.assign(attributes, { "gen_ai.tool.name": tool, "gen_ai.operation.name": "execute_tool" });
    if (target) Object.assign(attributes, { "server.address": target.hostname, "server.port": Number(target.port || (target.protocol === "https:" ? 443 : 80)) });
    return tracing.inSpan(tool ? `${method} ${tool}` : method, "client", attributes, async (span) => {
      const headers = new Headers(init?.headers);
      headers.set("traceparent", span.traceparent());
      try {
        const response = await exchange(headers);
        span.setAttributes({ "http.response.status_code": response.status, "mcp_api.outcome": outcome });
        if (outcome !== "ok") span.fail(outcome);
        return response;
      } catch (err) {
        span.setAttributes({ "mcp_api.outcome": outcome });
        span.fail(outcome);
        throw err;
      }
    });
  };
  return Object.assign(observed, fetch) as unknown as F;
}

/** Token refreshes and client-credentials grants by outcome; spans for them and for discovery. */
export function observeOAuthClient<C extends { refresh: (...a: never[]) => Promise<unknown>; clientCredentials: (...a: never[]) => Promise<unknown>; discover: (...a: never[]) => Promise<unknown> }>(
  client: C,
  rejected: (err: unknown) => boolean,
): C {
  const wrap = (name: "refresh" | "clientCredentials" | "discover", span: string, counted: boolean) => {
    const inner = client[name] as unknown as (...a: unknown[]) => Promise<unknown>;
    return async (...args: unknown[]) => {
      const run = async () => {
        try {
          const result = await inner.apply(client, args);
          if (counted) telemetry.metrics?.oauthRefresh("ok");
          return result;
        } catch (err) {
          if (counted) telemetry.metrics?.oauthRefresh(rejected(err) ? "rejected" : "error");
          throw err;
        }
      };
      const tracing = telemetry.tracing;
      if (!tracing) return run();
      return tracing.inSpan(span, "internal", {}, async (s) => {
        try {
          return await run();
        } catch (err) {
          s.fail(rejected(err) ? "rejected" : "error");
          throw err;
        }
      });
    };
  };
  return {
    ...client,
    refresh: wrap("refresh", "oauth refresh", true),
    clientCredentials: wrap("clientCredentials", "oauth client_credentials", true),
    discover: wrap("discover", "oauth discovery", false),
  } as C;
}

/** Refusals by the rate limit: counted by what was counted (a token, or a client address). */
export function observeRateLimiter<R extends { consume(bucket: string): Promise<unknown> }>(limiter: R, isLimited: (err: unknown) => boolean): R {
  const consume = limiter.consume.bind(limiter);
  return {
    ...limiter,
    async consume(bucket: string) {
      try {
        return await consume(bucket);
      } catch (err) {
        if (isLimited(err)) telemetry.metrics?.rateLimited(bucket.startsWith("token:") ? "token" : "address");
        throw err;
      }
    },
  };
}
