// One Express middleware per request: its trace id on every log line, its metrics, and (with
// tracing on) its server span continuing the caller's traceparent, current for all it does.
import { randomBytes } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "pino";
import { bindScope, runInScope, telemetry, type RequestScope } from "./hooks.js";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

// New trace ids are cut from a pool of random bytes: one getrandom call per 256 requests, not one each (1% of a relayed call).
const POOL_IDS = 256;
let pool = Buffer.alloc(0);
let used = POOL_IDS;

function newTraceId(): string {
  if (used === POOL_IDS) {
    pool = randomBytes(16 * POOL_IDS);
    used = 0;
  }
  const id = pool.toString("hex", 16 * used, 16 * ++used);
  return /^0+$/.test(id) ? newTraceId() : id; // all-zero is invalid (W3C Trace Context)
}

/** The caller's trace id when its traceparent is valid (W3C Trace Context), else a new one. */
export function traceIdOf(header: string | string[] | undefined): string {
  const match = typeof header === "string" ? TRACEPARENT.exec(header.trim()) : null;
  if (match && !/^0+$/.test(match[1]) && !/^0+$/.test(match[2])) return match[1];
  return newTraceId();
}

type OperationOf = (method: string, path: string) => { route: string; operationId: string } | null;
type ValidatedRequest = Request & { openapi?: { openApiRoute?: string; schema?: { operationId?: string } } };

/** `root`: the logger each request's child (requestId and traceId bound together, one child, not two) is made from. */
export function observeHttp(operationOf: OperationOf, root?: Logger) {
  const plain = root?.child({}, { redact: { paths: [], censor: "[redacted]" } });
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const operation = () => {
      const openapi = (req as ValidatedRequest).openapi;
      if (openapi?.schema?.operationId) return { route: openapi.openApiRoute ?? null, operationId: openapi.schema.operationId };
      const match = operationOf(req.method, req.path);
      return { route: match?.route ?? null, operationId: match?.operationId ?? "unknown" };
    };
    const begin = (traceId: string, span?: import("./hooks.js").SpanHandle) => {
      // Made at its first use: a GET or a write logs nothing but its access line (app.ts), which needs no child.
      const parent = root ?? (res.locals.log as Logger | undefined);
      let log: Logger | undefined;
      const requestLog = () => (log ??= root ? root.child({ requestId: res.locals.requestId, traceId }) : parent?.child({ traceId }));
      Object.defineProperty(res.locals, "log", { get: requestLog, set: (given: Logger) => void (log = given), enumerable: true, configurable: true });
      res.locals.traceId = traceId;
      if (telemetry.metrics || span) {
        res.on("finish", () => {
          const { route, operationId } = operation();
          telemetry.metrics?.httpRequest(operationId, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
          if (span) {
            span.rename(`${req.method} ${route ?? "unknown"}`);
            span.setAttributes({ "http.route": route ?? "unknown", "http.response.status_code": res.statusCode, "mcp_api.operation_id": operationId });
            if (res.statusCode >= 500) span.fail(String(res.statusCode));
            span.end();
          }
        });
      }
      const scope: RequestScope = {
        get log() {
          return requestLog();
        },
        ...(plain ? { note: (fields: Record<string, unknown>, msg: string) => plain.info({ requestId: res.locals.requestId, traceId, ...fields }, msg) } : {}),
        servers: new Map(),
        tool: null,
        serverId: null,
      };
      // Ambient only where metrics or tracing read it so; otherwise bound to the response, then
      // its actor (hooks.ts), so that a process with neither runs no async hooks.
      if (span || telemetry.metrics) return runInScope(scope, next);
      bindScope(res, scope);
      next();
    };
    const tracing = telemetry.tracing;
    if (!tracing) return begin(traceIdOf(req.headers.traceparent));
    tracing.http(req.headers, req.method, (span, traceId) => {
      span.setAttributes({ "http.request.method": req.method });
      res.on("close", () => {
        if (!res.writableFinished) {
          span.fail("aborted");
          span.end();
        }
      });
      begin(traceId, span);
    });
  };
}
