// The REST path's most frequent operations on MCP server records (GET, the list, create and PATCH of
// /api/mcp-servers), taken ahead of the generic stack (JSON parser, cookie reader, the router,
// and express-openapi-validator's route lookup and security middleware) as the gateway's POST
// is (mcp-gateway-direct.ts): issue 25 measured that stack at a large part of each one's CPU.
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

export function directRestRoute(deps: DirectRestDeps) {
  let checks: ReturnType<typeof compile> | null = null;
  const handlers = DIRECT_OPERATIONS.map((operation) => deps.handler(operation));

  return function directRest(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== "GET" && req.method !== "POST" && req.method !== "PATCH") return next();
    let index = -1;
    let match: RegExpExecArray | null = null;
    for (let i = 0; i < DIRECT_OPERATIONS.length && match === null; i++) {
      const operation = DIRECT_OPERATIONS[i];
      if (operation.method.toUpperCase() !== req.method) continue;
      match = operation.pattern.exec(req.url);
      index = i;
    }
    if (match === null) return next();
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
  };
}
