// Turns observability on as the environment says, loading prom-client and OpenTelemetry only
// when asked: /metrics on its own listener (MCP_API_METRICS_PORT), traces when an OTLP
// endpoint is set. With neither, nothing is loaded and the hooks stay null.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { hostname } from "node:os";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Database } from "../data/db.js";
import { createHealthRepo } from "../data/health-repo.js";
import { startHealthChecks } from "../domain/health.js";
import type { Actor } from "../domain/tokens.js";
import { telemetry } from "./hooks.js";
import type { MetricsHandle } from "./metrics.js";

export interface ObservabilityConfig {
  /** MCP_API_METRICS_PORT: null is off; the API's own port serves /metrics there too (the operator said so). */
  metricsPort: number | null;
  metricsToken: string | null;
  metricsDetail: boolean;
  tracing: boolean;
  /** MCP_API_HEALTH_INTERVAL_MS: background checks of every enabled server; null is off. */
  healthIntervalMs: number | null;
}

/** More distinct server ids (or tool names) than this are reported as "other". */
export const DETAIL_CAP = 200;

export function readObservabilityConfig(env: NodeJS.ProcessEnv = process.env): ObservabilityConfig {
  const port = env.MCP_API_METRICS_PORT;
  let metricsPort: number | null = null;
  if (port !== undefined && port !== "") {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`MCP_API_METRICS_PORT must be a port number; got '${port}'`);
    metricsPort = n;
  }
  const detail = env.MCP_API_METRICS_DETAIL ?? "";
  if (detail !== "" && detail !== "server") throw new Error(`MCP_API_METRICS_DETAIL must be 'server' or unset; got '${detail}'`);
  const interval = env.MCP_API_HEALTH_INTERVAL_MS;
  let healthIntervalMs: number | null = null;
  if (interval !== undefined && interval !== "") {
    const n = Number(interval);
    if (!Number.isInteger(n) || n < 1000) throw new Error(`MCP_API_HEALTH_INTERVAL_MS must be a whole number of milliseconds, 1000 or more; got '${interval}'`);
    healthIntervalMs = n;
  }
  return {
    healthIntervalMs,
    metricsPort,
    metricsToken: env.MCP_API_METRICS_TOKEN || null,
    metricsDetail: detail === "server",
    tracing: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== "true",
  };
}

/** Background health checks in this process (only the lease holder checks); stop() at shutdown. */
export function startBackgroundChecks(db: Database, connections: { test(actor: Actor, id: string): Promise<unknown> }, intervalMs: number, logger: Logger) {
  const holder = `${hostname().slice(0, 60)}:${process.pid}:${randomBytes(4).toString("hex")}`;
  logger.info({ intervalMs }, "background health checks on");
  return startHealthChecks({
    repo: createHealthRepo(db.knex),
    check: (actor, id) => connections.test(actor, id),
    intervalMs,
    holder,
    onError: (err, serverId) => logger.warn({ err, serverId }, "background health check failed"),
  });
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Answers GET /metrics (and only that), asking for the bearer token when one is set. */
function metricsHandler(handle: MetricsHandle, token: string | null) {
  const expected = token === null ? null : digest(`Bearer ${token}`);
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (expected && !timingSafeEqual(digest(req.headers.authorization ?? ""), expected)) {
      res.writeHead(401, { "www-authenticate": 'Bearer realm="metrics"', "content-type": "text/plain" }).end("unauthorized\n");
      return;
    }
    handle.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": handle.registry.contentType, "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : text),
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n"),
    );
  };
}

export interface Observability {
  /** Traces statements, measures the store's connection pool and the upstream session pool. */
  attach(services: { db: Database; upstreams: { size(): number } }): Promise<void>;
  /** For the API listener: answers /metrics when the operator put it on the API port; false otherwise. */
  onApiPort(apiPort: number): ((req: IncomingMessage, res: ServerResponse) => boolean) | null;
  /** Starts the metrics listener (when it has a port of its own); resolves with its port. */
  listen(host: string, apiPort: number): Promise<number | null>;
  close(): Promise<void>;
}

export async function startObservability(config: ObservabilityConfig, logger: Logger): Promise<Observability> {
  let handle: MetricsHandle | null = null;
  let shutdownTracing: (() => Promise<void>) | null = null;
  if (config.metricsPort !== null) {
    const { createMetrics } = await import("./metrics.js");
    handle = createMetrics({ detail: config.metricsDetail, detailCap: DETAIL_CAP });
    telemetry.metrics = handle.metrics;
  }
  if (config.tracing) {
    const { startTracing } = await import("./tracing.js");
    const started = startTracing();
    telemetry.tracing = started.tracing;
    shutdownTracing = started.shutdown;
    logger.info("tracing on: exporting spans over OTLP/HTTP");
  }
  let server: Server | null = null;
  // The same non-zero port as PORT: the operator asked for /metrics on the API listener.
  const sharesApiPort = (apiPort: number) => config.metricsPort !== 0 && config.metricsPort === apiPort;
  return {
    async attach({ db, upstreams }) {
      handle?.gauge("mcp_api_upstream_pool_sessions", "Upstream MCP sessions the workspace endpoint's pool keeps open.", () => upstreams.size());
      if (config.tracing) (await import("./db.js")).traceStatements(db.knex, db.dialect === "postgres" ? "postgresql" : "sqlite");
      const pool = (db.knex.client as { pool?: Parameters<MetricsHandle["observePool"]>[0] }).pool;
      if (handle && pool) handle.observePool(pool);
    },
    onApiPort(apiPort) {
      if (!handle || !sharesApiPort(apiPort)) return null;
      const answer = metricsHandler(handle, config.metricsToken);
      return (req, res) => {
        if ((req.url ?? "").split("?")[0] !== "/metrics") return false;
        answer(req, res);
        return true;
      };
    },
    async listen(host, apiPort) {
      if (!handle || config.metricsPort === null || sharesApiPort(apiPort)) return null;
      const s = createServer(metricsHandler(handle, config.metricsToken));
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(config.metricsPort!, host, () => resolve());
      });
      const port = (s.address() as { port: number }).port;
      logger.info({ port }, "metrics listening");
      return port;
    },
    async close() {
      if (server) await new Promise((r) => server!.close(r));
      await shutdownTracing?.().catch(() => {});
    },
  };
}
