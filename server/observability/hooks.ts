// What the rest of the product calls to be observed. This module imports nothing, so it costs
// nothing at start-up; the metrics (prom-client) and tracing (OpenTelemetry) behind it are
// loaded by start.ts only when the operator turns them on, and are null otherwise.
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "pino";

/** Labels are bounded: a method or outcome outside these sets is reported as "other". */
export type GatewayEndpoint = "server" | "workspace" | "toolset";

export interface Metrics {
  httpRequest(operation: string, status: number, seconds: number): void;
  gatewayMessage(endpoint: GatewayEndpoint, method: string, outcome: string, seconds: number, detail: { serverId?: string; tool?: string | null }): void;
  upstream(method: string, outcome: string, seconds: number, serverId: string | undefined): void;
  upstreamFailure(failureClass: string, serverId: string | undefined): void;
  oauthRefresh(outcome: string): void;
  rateLimited(by: "token" | "address"): void;
  upstreamSessionOpened(): void;
}

/** A span as the product sees it: attributes in, ended once. */
export interface SpanHandle {
  setAttributes(attributes: Record<string, string | number | boolean>): void;
  fail(errorType: string): void;
  rename(name: string): void;
  end(): void;
  /** The W3C traceparent of this span, for the request it makes. */
  traceparent(): string;
}

export interface Tracing {
  /** Starts the server span of one HTTP request, continuing the caller's traceparent; runs `next` inside it. */
  http(headers: Record<string, string | string[] | undefined>, name: string, run: (span: SpanHandle, traceId: string) => void): void;
  /** A child span of whatever is current, with `fn` running inside it. */
  inSpan<T>(name: string, kind: "client" | "internal", attributes: Record<string, string | number | boolean>, fn: (span: SpanHandle) => Promise<T>): Promise<T>;
  /** A child span of whatever is current, ended by the caller (database statements). */
  start(name: string, kind: "client" | "internal", attributes: Record<string, string | number | boolean>): SpanHandle;
  /** Sets attributes on the current span (the HTTP request's). */
  annotate(attributes: Record<string, string | number | boolean>): void;
}

/** What one request knows about itself, for log lines and spans deep in the call path. */
export interface RequestScope {
  log: Logger | undefined;
  /**
   * An info line of fixed keys that can carry no secret (the gateway's `mcp message`), with the
   * request's ids, through a logger that redacts nothing: pino's wildcard redaction and a child
   * per request were most of that line's cost (as of the access line's, app.ts). Absent: use log.
   */
  note?(fields: Record<string, unknown>, msg: string): void;
  /** Upstream URL → MCP server id, filled as the gateway opens records (for upstream spans and labels). */
  servers: Map<string, string>;
  /** The tool of the tools/call being relayed, set by the gateway (never read from the arguments). */
  tool: string | null;
  /** The server the last upstream exchange of this scope went to (for gateway log lines). */
  serverId: string | null;
  /** Set inside a workspace endpoint call: its members' exchanges are upstream work, not messages of their own. */
  endpoint?: GatewayEndpoint;
}

export const telemetry: { metrics: Metrics | null; tracing: Tracing | null } = { metrics: null, tracing: null };

const scopes = new AsyncLocalStorage<RequestScope>();

export const observing = () => telemetry.metrics !== null || telemetry.tracing !== null;

export function runInScope<T>(scope: RequestScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

export function currentScope(): RequestScope | undefined {
  return scopes.getStore();
}

// On Node 20 an AsyncLocalStorage, once run, makes every promise of the process run async
// hooks; a request that needs no ambient scope (observeHttp) gets its scope through these:
// bound to its response, then to its actor (app.ts's bearer check), where the gateway's
// interceptors look for it.
// A property of the key, not a WeakMap entry: the scope holds closures over the request, and so
// its own key, and a young key in the process-wide WeakMap's table (in the old generation) stayed
// alive with its value through every scavenge until the next full collection (issue 25, the tail).
const SCOPE = Symbol("requestScope");
type Scoped = { [SCOPE]?: RequestScope };

/** Makes `scope` the scope of whatever holds `key` (a response, an actor). */
export function bindScope(key: object, scope: RequestScope): void {
  (key as Scoped)[SCOPE] = scope;
}

/** The ambient scope, else the one bound to `key`. */
export function scopeOf(key: object): RequestScope | undefined {
  return scopes.getStore() ?? (key as Scoped)[SCOPE];
}
