// The REST path's most frequent operations on MCP server records (GET, the list, create and PATCH of
// /api/mcp-servers), taken ahead of the generic stack (JSON parser, cookie reader, the router,
// and express-openapi-validator's route lookup and security middleware) as the gateway's POST
// is (mcp-gateway-direct.ts): issue 25 measured that stack at a large part of each one's CPU.
// app.ts takes GET, create and PATCH ahead of Express's app and router dispatch too (`takes`);
// the list reaches this route as a layer, after the request context has pinned its query.
//
// It answers only a request it can check completely; anything else goes on to the generic stack
// unchanged, so eov answers it exactly as before (test/rest-direct-route.test.ts). The checks are
// eov's own, in the generic stack's order, on eov's preprocessed copy of the spec, built with the
// options app.ts gives eov (compiled at the first request, as eov compiles a route's):
// - the body, when the operation takes one, read and parsed as body-parser's strict JSON parser
//   does, for application/json in UTF-8 of 1 byte to 1 MiB with no content-encoding (a body that
//   fails to parse is refused as body-parser refuses it, before the token is looked at);
// - what eov's metadata middleware sets (req.openapi, req.params) for a path with plain characters
//   only (nothing to decode), and no query string but on the list, whose query Express has parsed
//   (req.query, pinned by app.ts's request context) and eov's RequestValidator then checks;
// - eov's security check: a bearer Authorization header, then the same function eov's security
//   handler calls (the token, the rate limit, the token's scope);
// - eov's RequestValidator for the operation (path parameter, header parameters, body);
// - with response validation on, eov's ResponseValidator hook on the answer.
import type { NextFunction, Request, Response } from "express";
import openApiValidatorModule from "express-openapi-validator/dist/openapi.validator.js";
import preprocessorModule from "express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js";
import requestValidatorModule from "express-openapi-validator/dist/middlewares/openapi.request.validator.js";
import responseValidatorModule from "express-openapi-validator/dist/middlewares/openapi.response.validator.js";
import { JSON_TYPE, parseJsonBody, readBody } from "./json-body.js";

/** An operation the direct route answers: its spec path and method, and the request path it matches. */
export interface DirectOperation {
  route: string;
  method: "get" | "post" | "patch";
  operationId: string;
  /** The path as Express writes it (what eov keys the operation's validators by). */
  expressRoute: string;
  /** The request path; a capture is the `id` path parameter. Plain characters only: eov decodes %-escapes before it validates; these need none. */
  pattern: RegExp;
  body: boolean;
  /** Takes query parameters (any query string; eov's RequestValidator checks it as on the generic stack). */
  query?: boolean;
}

export const DIRECT_OPERATIONS: readonly DirectOperation[] = [
  { route: "/api/mcp-servers/{id}", method: "get", operationId: "getMcpServer", expressRoute: "/api/mcp-servers/:id", pattern: /^\/api\/mcp-servers\/([A-Za-z0-9_-]+)$/, body: false },
  { route: "/api/mcp-servers", method: "post", operationId: "createMcpServer", expressRoute: "/api/mcp-servers", pattern: /^\/api\/mcp-servers$/, body: true },
  { route: "/api/mcp-servers/{id}", method: "patch", operationId: "updateMcpServer", expressRoute: "/api/mcp-servers/:id", pattern: /^\/api\/mcp-servers\/([A-Za-z0-9_-]+)$/, body: true },
  { route: "/api/mcp-servers", method: "get", operationId: "listMcpServers", expressRoute: "/api/mcp-servers", pattern: /^\/api\/mcp-servers(?:\?.*)?$/, body: false, query: true },
];


type Schema = Record<string, unknown>;
type Spec = { openapi: string; paths: Record<string, Record<string, Schema>>; components: Record<string, Record<string, Schema>> };
type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;
type EovInternals = {
  options: { validateResponses: false | Schema };
  ajvOpts: { preprocessor: unknown; request: unknown; response: unknown };
};

export interface DirectRestDeps {
  spec: Spec;
  /** The options app.ts gives OpenApiValidator.middleware (copied: eov normalises them in place). */
  validatorOptions: object;
  bodyLimitBytes: number;
  migrated(): boolean;
  /** The bearer check eov's security handler runs: token, rate limit, scope; throws as that handler throws. */
  authenticate(req: Request, res: Response, operationId: string): Promise<void>;
  /** Each operation's route handler, as registerRoutes mounts it (routes.ts: operationRoute). */
  handler(operation: DirectOperation): (req: Request, res: Response) => Promise<void>;
}

/** eov's validators, made as eov makes them (openapi.validator.ts installMiddleware), and each operation's schemas. */
function compile(spec: Spec, validatorOptions: object) {
  const eov = new openApiValidatorModule.OpenApiValidator({ ...validatorOptions } as never) as unknown as EovInternals;
  const apiDoc = structuredClone(spec);
  const preprocessed = new preprocessorModule.SchemaPreprocessor(apiDoc as never, eov.ajvOpts.preprocessor as never, eov.options.validateResponses as never).preProcess() as unknown as { apiDocRes: Spec | null };
  const request = new requestValidatorModule.RequestValidator(apiDoc as never, eov.ajvOpts.request as never);
  const hookResponse = preprocessed.apiDocRes
    ? (new responseValidatorModule.ResponseValidator(preprocessed.apiDocRes as never, eov.ajvOpts.response as never, eov.options.validateResponses as never).validate() as unknown as Middleware)
    : null;
  const schemas = DIRECT_OPERATIONS.map((operation) => {
    type Parameter = { $ref?: string; in?: string; name?: string };
    const schema = apiDoc.paths[operation.route][operation.method] as Schema & { operationId?: string; parameters?: Parameter[]; requestBody?: { content?: Schema } | null; security?: unknown };
    const params = (schema.parameters ?? []).map((p) => (p.$ref ? (spec.components.parameters[p.$ref.replace(/^.+\//, "")] as Parameter) : p));
    const pathParams = params.filter((p) => p.in === "path").map((p) => p.name);
    const expected = operation.expressRoute.includes(":id") ? ["id"] : [];
    const body = schema.requestBody ? Object.keys(schema.requestBody.content ?? {}).join() : "";
    if (
      schema.operationId !== operation.operationId ||
      pathParams.join() !== expected.join() ||
      params.some((p) => p.in !== "path" && p.in !== "header" && !(operation.query && p.in === "query")) ||
      body !== (operation.body ? "application/json" : "") ||
      schema.security != null
    ) {
      throw new Error(`${operation.method.toUpperCase()} ${operation.route}: the direct route knows an id path parameter, header parameters, the list's query parameters, an application/json body and the spec's default security`);
    }
    return { schema, responseSchema: preprocessed.apiDocRes?.paths[operation.route][operation.method] };
  });
  return {
    schemas,
    validateRequest: (req: Request, res: Response, next: (err?: unknown) => void) => request.validate(req as never, res as never, next),
    hookResponse,
  };
}

/**
 * A GET's or a write's JSON answer, as Express's res.json and res.send write it here (the app sets
 * no JSON replacer, spaces or escape, nor an ETag function): the same status, headers in the same
 * order and bytes, but the text is sent as it is, so Node writes the head and the body in one
 * write, where res.send, for a body of 1,000 characters or more, copies it into a Buffer and Node
 * then writes the two with writev. Installed for one call: any other answer (a problem, which
 * has set its Content-Type) goes through Express's own, and so does a GET that sends
 * If-None-Match or If-Modified-Since (res.send answers 304 when the record's ETag matches).
 */
function writeJson(this: Response, body: unknown): Response {
  delete (this as Partial<Response>).json;
  const h = this.req.headers;
  if (
    typeof body !== "object" ||
    body === null ||
    this.headersSent ||
    this.hasHeader("content-type") ||
    this.hasHeader("transfer-encoding") ||
    this.statusCode < 200 ||
    this.statusCode === 204 ||
    this.statusCode === 205 ||
    this.statusCode === 304 ||
    (this.req.method !== "POST" && this.req.method !== "PATCH" && (h["if-none-match"] !== undefined || h["if-modified-since"] !== undefined))
  ) {
    return this.json(body);
  }
  const text = JSON.stringify(body);
  this.setHeader("Content-Type", "application/json; charset=utf-8");
  this.setHeader("Content-Length", String(Buffer.byteLength(text, "utf8")));
  this.end(text, "utf8");
  return this;
}

export function directRestRoute(deps: DirectRestDeps) {
  let checks: ReturnType<typeof compile> | null = null;
  const handlers = DIRECT_OPERATIONS.map((operation) => deps.handler(operation));

  /** The operation a request's method and URL name, and the URL's match, if it is one of DIRECT_OPERATIONS. */
  const find = (method: string, url: string): { index: number; match: RegExpExecArray } | null => {
    if (method !== "GET" && method !== "POST" && method !== "PATCH") return null;
    for (let i = 0; i < DIRECT_OPERATIONS.length; i++) {
      const operation = DIRECT_OPERATIONS[i];
      if (operation.method.toUpperCase() !== method) continue;
      const match = operation.pattern.exec(url);
      if (match !== null) return { index: i, match };
    }
    return null;
  };

  function directRest(req: Request, res: Response, next: NextFunction): void {
    const found = find(req.method, req.url);
    if (found === null) return next();
    const { index, match } = found;
    const operation = DIRECT_OPERATIONS[index];
    const id = match[1];
    const h = req.headers;
    const authorization = h.authorization;
    const length = Number(h["content-length"]);
    if (
      !deps.migrated() ||
      h["transfer-encoding"] !== undefined ||
      (operation.body ? h["content-encoding"] !== undefined || !(length > 0 && length <= deps.bodyLimitBytes) || !JSON_TYPE.test(h["content-type"] ?? "") : h["content-length"] !== undefined && h["content-length"] !== "0") ||
      // eov's own test of a bearer Authorization header, before it calls the security handler.
      !authorization ||
      !authorization.toLowerCase().includes("bearer")
    ) {
      return next();
    }
    const ready = (checks ??= compile(deps.spec, deps.validatorOptions));
    const { schema, responseSchema } = ready.schemas[index];
    const answer = () => {
      // What eov's metadata middleware sets (serial -1: the ResponseValidator's, made without a context).
      const pathParams: Record<string, string> = id !== undefined ? { id } : {};
      (req as Request & { openapi?: unknown }).openapi = { expressRoute: operation.expressRoute, openApiRoute: operation.route, pathParams, schema, serial: -1, ...(responseSchema ? { _responseSchema: responseSchema } : {}) };
      req.params = pathParams;
      deps
        .authenticate(req, res, operation.operationId)
        .then(
          () =>
            new Promise<void>((resolve, reject) => {
              ready.validateRequest(req, res, (err) => {
                if (err) return reject(err);
                // A GET's or a write's answer is written by writeJson (the list's by res.json); eov's hook, installed over it, checks it first.
                if (operation.query !== true) (res as Response & { json: unknown }).json = writeJson;
                if (!ready.hookResponse) return resolve();
                let installed = false;
                // eov's hook calls this once when installed, and again with the error when an answer fails its check.
                ready.hookResponse(req, res, (hookErr) => {
                  if (installed) return next(hookErr);
                  installed = true;
                  return hookErr ? reject(hookErr) : resolve();
                });
              });
            }),
        )
        .then(() => handlers[index](req, res))
        .catch(next);
    };
    if (!operation.body) return answer();
    readBody(req, length).then((bytes) => {
      const parsed = parseJsonBody(bytes);
      if (!parsed.ok) return next(parsed.error);
      req.body = parsed.value;
      answer();
    }, next);
  }
  /**
   * Whether app.ts takes a request of this method to this URL ahead of Express for this route: not
   * the list's, whose query the request context pins first; that one reaches the route as a layer.
   */
  const takes = (method: string, url: string) => {
    const found = find(method, url);
    return found !== null && DIRECT_OPERATIONS[found.index].query !== true;
  };
  return Object.assign(directRest, { takes });
}
