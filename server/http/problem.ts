// Turns anything thrown into an RFC 9457 problem: domain errors, the validator's
// errors, body-parser's errors, and unknown faults (logged, never described).
import type { ErrorRequestHandler, Request } from "express";
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
  403: ["forbidden", "You are not allowed to do this."],
  404: ["not-found", "Not found."],
  405: ["method-not-allowed", "This method is not allowed here."],
  406: ["not-acceptable", "The requested media type is not available."],
  412: ["precondition-failed", "The record changed since you read it."],
  409: ["conflict", "The request conflicts with the current state."],
  413: ["payload-too-large", "The request body is too large."],
  415: ["unsupported-media-type", "The request body must be JSON."],
  422: ["idempotency-key-reused", "This Idempotency-Key was used for a different request."],
  428: ["precondition-required", "The request needs If-Match."],
  429: ["rate-limited", "Too many requests."],
  500: ["internal-error", "Something went wrong on our side."],
  502: ["upstream-error", "The MCP server could not be used."],
  504: ["upstream-timeout", "The MCP server did not answer in time."],
  503: ["service-unavailable", "The service is unavailable right now."],
};

const SEND_TOKEN = "Send a valid token as 'Authorization: Bearer <token>'.";

function base(status: number, detail: string, req: Request): Problem {
  const [kind, title] = TITLES[status] ?? TITLES[status >= 500 ? 500 : 400];
  return { type: `/problems/${kind}`, title, status, detail, instance: req.path, requestId: req.res?.locals.requestId };
}

type FieldError = { path: string; message: string; rank: number };

// Messages that only restate a complaint found elsewhere on the same field (or inside it):
// a nullable field is `oneOf: [schema, null]`, a header name failing `propertyNames` also fails its pattern.
const NOISE = /^must be null$|^must match exactly one schema in oneOf$|^must match a schema in anyOf$|^property name must be valid$/;
const UNDERSTOOD = "is not valid";

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  null: "null",
};

const FORMAT_WORDS: Record<string, string> = {
  uri: "must be a valid URL",
  "date-time": "must be a date and time like 2026-11-24T09:31:00Z",
  email: "must be an email address",
};

/** `pattern` → its `x-pattern-message`, for every schema in the spec that has both (a pattern has one message everywhere: tested). */
export function patternMessages(spec: unknown): Map<string, string> {
  const messages = new Map<string, string>();
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      const o = node as Record<string, unknown>;
      if (typeof o.pattern === "string" && typeof o["x-pattern-message"] === "string") messages.set(o.pattern, o["x-pattern-message"]);
      Object.values(o).forEach(walk);
    }
  };
  walk(spec);
  return messages;
}

/**
 * One validator complaint in plain words, ranked: when a field breaks several rules, the lowest
 * rank is the one reported (a URL without a scheme fails `pattern` and `format: uri`; the
 * pattern's message says what to do).
 */
function plain(message: string, keyword: string, patterns: Map<string, string>): { message: string; rank: number } {
  const n = /(\d+)/.exec(message)?.[1];
  switch (keyword) {
    case "required":
      return { message: "is required", rank: 0 };
    case "additionalProperties":
    case "unevaluatedProperties":
      return { message: "is not a known field", rank: 0 };
    case "type": {
      if (message === "must be null") return { message, rank: 9 };
      const types = message.replace(/^must be /, "").split(",");
      return { message: `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(" or ")}`, rank: 1 };
    }
    case "minLength":
      return n === "1" ? { message: "must not be empty", rank: 2 } : { message: `must be at least ${n} characters long`, rank: 5 };
    case "maxLength":
      return { message: `must be at most ${n} characters long`, rank: 5 };
    case "enum":
      return { message: message.replace(/^must be equal to one of the allowed values/, "must be one of"), rank: 3 };
    case "pattern": {
      const pattern = /^must match pattern "(.*)"$/s.exec(message)?.[1];
      return { message: (pattern !== undefined && patterns.get(pattern)) || "is not in the expected form", rank: 4 };
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const words: Record<string, string> = { ">=": "at least", "<=": "at most", ">": "more than", "<": "less than" };
      const m = /^must be ([<>]=?) (.+)$/.exec(message);
      return { message: m ? `must be ${words[m[1]]} ${m[2]}` : message, rank: 5 };
    }
    case "maxProperties":
      return { message: `must have at most ${n} entries`, rank: 5 };
    case "minProperties":
      return { message: `must have at least ${n} entries`, rank: 5 };
    case "maxItems":
      return { message: `must hold at most ${n} items`, rank: 5 };
    case "minItems":
      return { message: `must hold at least ${n} items`, rank: 5 };
    case "format": {
      const format = /^must match format "(.*)"$/.exec(message)?.[1] ?? "";
      return { message: FORMAT_WORDS[format] ?? `must be a valid ${format}`, rank: 6 };
    }
  }
  // The validator's own parameter checks, which carry no keyword.
  if (/^Empty value found for query parameter/.test(message)) return { message: "must not be empty", rank: 2 };
  if (/^Unknown query parameter/.test(message)) return { message: "is not a known parameter", rank: 0 };
  if (NOISE.test(message)) return { message, rank: 9 };
  return { message, rank: 7 };
}

/** Keeps one error per field: the lowest-ranked; noise only where nothing on or under the field said more. */
function oncePerField(errors: FieldError[]): ProblemFieldError[] {
  const best = new Map<string, FieldError>();
  for (const e of errors) {
    const seen = best.get(e.path);
    if (!seen || e.rank < seen.rank) best.set(e.path, e);
  }
  const out: ProblemFieldError[] = [];
  for (const [path, e] of best) {
    if (e.rank < 9) out.push({ path, message: e.message });
    else if (![...best.values()].some((o) => o.rank < 9 && (o.path === path || o.path.startsWith(path === "/" ? "/" : `${path}/`)))) out.push({ path, message: UNDERSTOOD });
  }
  return out;
}

/** The validator's field errors in plain words, at wire paths: `/body/url` → `/url`, others keep their location. */
function fieldErrors(errors: NonNullable<ValidatorError["errors"]>, patterns: Map<string, string>): ProblemFieldError[] {
  return oncePerField(
    errors.map((e) => {
      const raw = e.path ?? "";
      const path = raw === "/body" ? "/" : raw.startsWith("/body/") ? raw.slice("/body".length) : raw.replace(/^\./, "/").replace(/\./g, "/");
      const keyword = e.errorCode?.replace(/\.openapi\.validation$/, "") ?? "";
      return { path, ...plain(e.message ?? UNDERSTOOD, keyword, patterns) };
    }),
  );
}

function invalid(errors: ProblemFieldError[], req: Request): Problem {
  const n = errors.length; // one entry per field
  return { ...base(400, `${n} field${n === 1 ? " is" : "s are"} not valid.`, req), errors };
}

export function toProblem(err: unknown, req: Request, patterns: Map<string, string> = new Map()): Problem {
  if (err instanceof DomainError) {
    if (err.status === 401) return base(401, SEND_TOKEN, req);
    if ("errors" in err && Array.isArray(err.errors) && err.status === 400) {
      const problem = invalid(oncePerField((err.errors as ProblemFieldError[]).map((e) => ({ ...e, rank: 7 }))), req);
      return { ...problem, type: `/problems/${err.kind}`, title: err.title };
    }
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
      case 400:
        return invalid(fieldErrors(v.errors ?? [], patterns), req);
      case 401:
        // Missing header, wrong scheme, unknown or revoked token: one answer, so it tells an attacker nothing.
        return base(401, SEND_TOKEN, req);
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
  if ((err as { status?: number })?.status === 503) return base(503, "The database is unavailable; try again shortly.", req);
  return base(500, "The fault was logged.", req);
}

/** The error handler; `spec` supplies the `x-pattern-message` of each pattern. */
export function createProblemHandler(spec: unknown): ErrorRequestHandler {
  const patterns = patternMessages(spec);
  return (thrown, req, res, _next) => {
    // What the security handler threw reaches us re-wrapped by the validator; judge the original.
    const err = res.locals.securityError ?? thrown;
    const problem = toProblem(err, req, patterns);
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
    if (req.path === "/api/oauth/callback" || req.path.startsWith("/connect/")) {
      res.status(problem.status).set("Cache-Control", "no-store").type("html").send(page(problem.title, [problem.detail, ...(problem.errors ?? []).map((e) => `${e.path}: ${e.message}`)].join(" ")));
      return;
    }
    res.status(problem.status).type("application/problem+json").send(JSON.stringify(problem));
  };
}
