// The Prometheus series (prom-client), one registry per process. Loaded only when
// MCP_API_METRICS_PORT is set. Labels hold operation ids, methods, outcomes and classes from
// bounded sets; server ids and tool names only with MCP_API_METRICS_DETAIL=server, capped.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GatewayEndpoint, Metrics } from "./hooks.js";

/** Known MCP methods; anything else is "other", so an agent cannot mint label values. */
export const MCP_METHODS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/read",
  "resources/templates/list",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "subscriptions/listen",
  "tasks/get",
  "tasks/list",
  "tasks/result",
  "tasks/cancel",
]);
// Gateway outcomes (domain/gateway-policy.ts), failure classes (ConnectionError.class) and OAuth outcomes.
const OUTCOMES = new Set(["ok", "tool_error", "error", "denied", "timeout", "upstream_error", "cancelled", "dns", "connect", "tls", "http", "auth", "protocol", "blocked", "rejected"]);

export const boundedMethod = (method: string) => (MCP_METHODS.has(method) ? method : method.startsWith("notifications/") ? "notification" : "other");
const bounded = (value: string, known: Set<string>) => (known.has(value) ? value : "other");

export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

/** At most `cap` distinct values; later ones are reported as "other". */
function capped(cap: number) {
  const seen = new Set<string>();
  return (value: string | null | undefined): string => {
    if (!value) return "";
    if (seen.has(value)) return value;
    if (seen.size >= cap) return "other";
    seen.add(value);
    return value;
  };
}

export interface MetricsOptions {
  /** MCP_API_METRICS_DETAIL=server: server ids and tool names as labels. */
  detail: boolean;
  /** How many distinct server ids (and tool names) at most, with detail on. */
  detailCap: number;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface PoolSource {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  on(event: "acquireRequest" | "acquireSuccess" | "acquireFail", handler: (eventId: number) => void): void;
}

export function createMetrics(options: MetricsOptions) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  const serverLabel = capped(options.detailCap);
  const toolLabel = capped(options.detailCap);
  const detail = options.detail;

  const httpRequests = new Counter({ name: "mcp_api_http_requests_total", help: "HTTP requests answered, by operation id and status class.", labelNames: ["operation", "status_class"], registers: [registry] });
  const httpDuration = new Histogram({ name: "mcp_api_http_request_duration_seconds", help: "Time to answer an HTTP request (until the last byte was handed to the socket).", labelNames: ["operation", "status_class"], buckets: SECONDS, registers: [registry] });
  const gatewayLabels = detail ? ["endpoint", "method", "outcome", "server", "tool"] : ["endpoint", "method", "outcome"];
  const gatewayMessages = new Counter({ name: "mcp_api_gateway_messages_total", help: "JSON-RPC requests relayed by the MCP gateway, by endpoint, method and outcome.", labelNames: gatewayLabels, registers: [registry] });
  const gatewayDuration = new Histogram({ name: "mcp_api_gateway_message_duration_seconds", help: "Time from a JSON-RPC request reaching the gateway to its answer.", labelNames: gatewayLabels, buckets: SECONDS, registers: [registry] });
  const upstreamLabels = detail ? ["method", "outcome", "server"] : ["method", "outcome"];
  const upstreamDuration = new Histogram({ name: "mcp_api_upstream_duration_seconds", help: "Time an upstream MCP server took to answer one HTTP exchange (until its response headers).", labelNames: upstreamLabels, buckets: SECONDS, registers: [registry] });
  const upstreamFailures = new Counter({ name: "mcp_api_upstream_failures_total", help: "Upstream MCP server failures, by class (timeout, auth, http, network, protocol, …).", labelNames: detail ? ["class", "server"] : ["class"], registers: [registry] });
  const oauthRefreshes = new Counter({ name: "mcp_api_oauth_refreshes_total", help: "OAuth token refreshes (and client-credentials grants), by outcome.", labelNames: ["outcome"], registers: [registry] });
  const rateLimited = new Counter({ name: "mcp_api_rate_limited_total", help: "Requests refused with 429 by the rate limit, by what was counted (token or client address).", labelNames: ["by"], registers: [registry] });

  const sessionsOpened = new Counter({ name: "mcp_api_upstream_sessions_opened_total", help: "Upstream MCP sessions the workspace endpoint's pool opened.", registers: [registry] });

  const metrics: Metrics = {
    httpRequest(operation, status, seconds) {
      const labels = { operation, status_class: statusClass(status) };
      httpRequests.inc(labels);
      httpDuration.observe(labels, seconds);
    },
    gatewayMessage(endpoint: GatewayEndpoint, method, outcome, seconds, d) {
      const labels: Record<string, string> = { endpoint, method: boundedMethod(method), outcome: bounded(outcome, OUTCOMES) };
      if (detail) {
        labels.server = serverLabel(d.serverId);
        labels.tool = toolLabel(d.tool);
      }
      gatewayMessages.inc(labels);
      gatewayDuration.observe(labels, seconds);
    },
    upstream(method, outcome, seconds, serverId) {
      const labels: Record<string, string> = { method: boundedMethod(method), outcome: bounded(outcome, OUTCOMES) };
      if (detail) labels.server = serverLabel(serverId);
      upstreamDuration.observe(labels, seconds);
    },
    upstreamFailure(failureClass, serverId) {
      const labels: Record<string, string> = { class: bounded(failureClass, OUTCOMES) };
      if (detail) labels.server = serverLabel(serverId);
      upstreamFailures.inc(labels);
    },
    oauthRefresh(outcome) {
      oauthRefreshes.inc({ outcome: bounded(outcome, OUTCOMES) });
    },
    rateLimited(by) {
      rateLimited.inc({ by });
    },
    upstreamSessionOpened() {
      sessionsOpened.inc();
    },
  };

  /** The database pool: connections in use, idle and awaited, and how long a query waited for one. */
  function observePool(pool: PoolSource) {
    new Gauge({ name: "mcp_api_db_pool_connections", help: "Database pool connections, by state (used, free, pending: queries waiting for one).", labelNames: ["state"], registers: [registry], collect() {
      this.set({ state: "used" }, pool.numUsed());
      this.set({ state: "free" }, pool.numFree());
      this.set({ state: "pending" }, pool.numPendingAcquires());
    } });
    const wait = new Histogram({ name: "mcp_api_db_pool_wait_seconds", help: "Time a query waited for a database connection.", buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] });
    const asked = new Map<number, bigint>();
    pool.on("acquireRequest", (id) => void asked.set(id, process.hrtime.bigint()));
    const done = (id: number) => {
      const t = asked.get(id);
      if (t === undefined) return;
      asked.delete(id);
      wait.observe(Number(process.hrtime.bigint() - t) / 1e9);
    };
    pool.on("acquireSuccess", done);
    pool.on("acquireFail", (id) => void asked.delete(id));
  }

  /** A gauge read at scrape time (the upstream session pool, once there is one). */
  function gauge(name: string, help: string, read: () => number) {
    new Gauge({ name, help, registers: [registry], collect() {
      this.set(read());
    } });
  }

  return { metrics, registry, observePool, gauge };
}

export type MetricsHandle = ReturnType<typeof createMetrics>;
