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

// The request's logger is lazy, and its accessors are shared, never made per request: V8 allocates
// an accessor pair in the old generation, so a getter closure of the request's (defineProperty with
// a new function, or a `get` in an object literal) was held from there past every scavenge until
// the next full collection, and with it all the request had allocated: a third of it survived
// each scavenge (issue 25, the tail: GET scavenges copied about 4 MB and paused for 5 ms).
const MAKE_LOG = Symbol("makeLog");
const LOG = Symbol("log");
type LazyLocals = Record<string, unknown> & { [MAKE_LOG]: () => Logger | undefined; [LOG]: Logger | undefined };

const LOG_ACCESSORS: PropertyDescriptor = {
  get(this: LazyLocals) {
    return (this[LOG] ??= this[MAKE_LOG]());
  },
  set(this: LazyLocals, given: Logger) {
    this[LOG] = given;
  },
  enumerable: true,
  configurable: true,
};

/** A request's scope; `log` is its response's lazy logger. */
class Scope implements RequestScope {
  servers = new Map<string, string>();
  tool: string | null = null;
  serverId: string | null = null;
  declare note?: RequestScope["note"];
  readonly #locals: LazyLocals;
  constructor(locals: LazyLocals) {
    this.#locals = locals;
  }
  get log(): Logger | undefined {
    return this.#locals.log as Logger | undefined;
  }
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
      const locals = res.locals as LazyLocals;
      locals[MAKE_LOG] = () => (root ? root.child({ requestId: locals.requestId, traceId }) : parent?.child({ traceId }));
      locals[LOG] = undefined;
      Object.defineProperty(locals, "log", LOG_ACCESSORS);
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
      const scope = new Scope(locals);
      if (plain) scope.note = (fields: Record<string, unknown>, msg: string) => plain.info({ requestId: res.locals.requestId, traceId, ...fields }, msg);
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
