// Turns anything thrown into an RFC 9457 problem: domain errors, the validator's
// errors, body-parser's errors, and unknown faults (logged, never described).
import type { ErrorRequestHandler, Request } from "express";
import { isUnavailable } from "../data/db.js";
import { DomainError, RateLimited } from "../domain/errors.js";
import { page } from "./pages.js";
import type { Problem, ProblemFieldError } from "../wire.js";

interface ValidatorError {
  status: number;
  message?: string;
  errors?: { path?: string; message?: string; errorCode?: string }[];
  headers?: Record<string, string>;
}

interface BodyParserError {
  type: string;
  status: number;
}

const TITLES: Record<number, [string, string]> = {
  400: ["validation-error", "Your request is not valid."],
  401: ["unauthorized", "Authentication is required."],
  403: ["forbidden", "You may not act in this workspace."],
  404: ["not-found", "Not found."],
  405: ["method-not-allowed", "This method is not allowed here."],
  406: ["not-acceptable", "The requested media type is not available."],
  412: ["precondition-failed", "The record changed since you read it."],
  409: ["conflict", "The request conflicts with the current state."],
  413: ["payload-too-large", "The request body is too large."],
  415: ["unsupported-media-type", "The request body must be JSON."],
  422: ["idempotency-key-reused", "This Idempotency-Key was used for a different request."],
  429: ["rate-limited", "Too many requests."],
  500: ["internal-error", "Something went wrong on our side."],
  502: ["upstream-error", "The MCP server could not be used."],
  504: ["upstream-timeout", "The MCP server did not answer in time."],
  503: ["service-unavailable", "The service is unavailable right now."],
};

function base(status: number, detail: string, req: Request): Problem {
  const [kind, title] = TITLES[status] ?? TITLES[status >= 500 ? 500 : 400];
  return { type: `/problems/${kind}`, title, status, detail, instance: req.path, requestId: req.res?.locals.requestId };
}

/** Maps the validator's field errors to wire paths: `/body/url` → `/url`, others keep their location. */
function fieldErrors(errors: NonNullable<ValidatorError["errors"]>): ProblemFieldError[] {
  const byPath = new Map<string, { message: string; noise: boolean }[]>();
  for (const e of errors) {
    const raw = e.path ?? "";
    const path = raw === "/body" ? "/" : raw.startsWith("/body/") ? raw.slice("/body".length) : raw.replace(/^\./, "/").replace(/\./g, "/");
    let message = e.message ?? "is not valid";
    if (e.errorCode?.startsWith("additionalProperties")) message = "is not a known field";
    if (e.errorCode?.startsWith("required")) message = "is required";
    // A nullable field is `oneOf: [schema, null]`: its "must be null" and "must match
    // exactly one schema" lines restate the real complaint.
    const noise = /^must be null$|^must match exactly one schema in oneOf$/.test(message);
    byPath.set(path, [...(byPath.get(path) ?? []), { message, noise }]);
  }
  const out: ProblemFieldError[] = [];
  for (const [path, messages] of byPath) {
    const real = messages.filter((m) => !m.noise);
    const chosen = real.length > 0 ? real : messages;
    for (const m of new Set(chosen.map((c) => c.message))) out.push({ path, message: m });
  }
  return out;
}

export function toProblem(err: unknown, req: Request): Problem {
  if (err instanceof DomainError) {
    const p = { ...base(err.status, err.message, req), type: `/problems/${err.kind}`, title: err.title };
    if ("errors" in err && Array.isArray(err.errors)) p.errors = err.errors as ProblemFieldError[];
    if ("connectionError" in err) p.connectionError = err.connectionError as Problem["connectionError"];
    return p;
  }
  const parser = err as BodyParserError;
  if (typeof parser?.type === "string" && typeof parser.status === "number") {
    if (parser.type === "entity.parse.failed") return { ...base(400, "The request body is not valid JSON.", req), errors: [{ path: "/", message: "is not valid JSON" }] };
    if (parser.type === "entity.too.large") return base(413, "Request bodies are limited to 1 MiB.", req);
    if (parser.type === "encoding.unsupported" || parser.type === "charset.unsupported") return base(415, "Send the body as UTF-8 application/json.", req);
  }
  const v = err as ValidatorError;
  if (typeof v?.status === "number" && v.status >= 400 && v.status < 500) {
    switch (v.status) {
      case 400: {
        const errors = fieldErrors(v.errors ?? []);
        const n = errors.length;
        return { ...base(400, `${n} field${n === 1 ? " is" : "s are"} not valid.`, req), errors };
      }
      case 401:
        return base(401, v.message && v.message !== "unauthorized" ? v.message : "Send a valid token as 'Authorization: Bearer <token>'.", req);
      case 404:
        return base(404, `There is no resource at ${req.method} ${req.path}.`, req);
      case 405:
        return base(405, `${req.method} is not allowed on ${req.path}.`, req);
      case 413:
        return base(413, "Request bodies are limited to 1 MiB.", req);
      case 415:
        return base(415, "Send the body as application/json.", req);
      default:
        return base(v.status, v.message ?? "The request cannot be served.", req);
    }
  }
  if ((err as { status?: number })?.status === 503 || isUnavailable(err)) return base(503, "The database is unavailable; try again shortly.", req);
  return base(500, "The fault was logged.", req);
}

export const problemHandler: ErrorRequestHandler = (thrown, req, res, _next) => {
  // What the security handler threw reaches us re-wrapped by the validator; judge the original.
  const err = res.locals.securityError ?? thrown;
  const problem = toProblem(err, req);
  if (err instanceof RateLimited) {
    res.set("Retry-After", String(err.resetSeconds));
    res.set("RateLimit-Policy", `"default";q=${err.limit};w=60`);
    res.set("RateLimit", `"default";r=0;t=${err.resetSeconds}`);
  }
  if (problem.status === 503) {
    res.set("Retry-After", "2");
    res.locals.log?.warn({ err }, "store unavailable");
  } else if (problem.status >= 500 && !(err instanceof DomainError)) res.locals.log?.error({ err }, "request failed");
  if (problem.status === 401) {
    const hadToken = typeof req.headers.authorization === "string";
    res.set("WWW-Authenticate", hadToken ? 'Bearer realm="mcp-servers-api", error="invalid_token"' : 'Bearer realm="mcp-servers-api"');
  }
  const allow = (err as ValidatorError)?.headers?.Allow;
  if (problem.status === 405 && allow) res.set("Allow", allow);
  if (res.headersSent) return;
  // The OAuth callback is opened by a person's browser: its failures are pages.
  if (req.path === "/api/oauth/callback") {
    res.status(problem.status).set("Cache-Control", "no-store").type("html").send(page(problem.title, [problem.detail, ...(problem.errors ?? []).map((e) => `${e.path}: ${e.message}`)].join(" ")));
    return;
  }
  res.status(problem.status).type("application/problem+json").send(JSON.stringify(problem));
};
