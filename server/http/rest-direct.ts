// GET /api/mcp-servers/{id}, the REST path's most frequent read, taken ahead of the generic
// stack (JSON parser, cookie reader, the router, and express-openapi-validator's route lookup and
// security middleware) as the gateway's POST is (mcp-gateway-direct.ts): issue 25 measured that
// stack at about a third of a GET's CPU.
//
// It answers only a request it can check completely; anything else goes on to the generic stack
// unchanged, so eov answers it exactly as before (test/rest-direct-route.test.ts). The checks are
// eov's own, in eov's order, on eov's preprocessed copy of the spec, built with the options app.ts
// gives eov (compiled at the route's first request, as eov compiles a route's):
// - what eov's metadata middleware sets (req.openapi, req.params) for a path with plain characters
//   only (nothing to decode), no query string and no body;
// - eov's security check: a bearer Authorization header, then the same function eov's security
//   handler calls (the token, the rate limit, the token's scope);
// - eov's RequestValidator for the operation (the path parameter; an unknown query parameter);
// - with response validation on, eov's ResponseValidator hook on the answer.
import type { NextFunction, Request, Response } from "express";
import openApiValidatorModule from "express-openapi-validator/dist/openapi.validator.js";
import preprocessorModule from "express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js";
import requestValidatorModule from "express-openapi-validator/dist/middlewares/openapi.request.validator.js";
import responseValidatorModule from "express-openapi-validator/dist/middlewares/openapi.response.validator.js";

export const DIRECT_GET = {
  route: "/api/mcp-servers/{id}",
  operationId: "getMcpServer",
  param: "id",
  expressRoute: "/api/mcp-servers/:id",
  // Plain characters only: eov decodes %-escapes before it validates; these need none.
  pattern: /^\/api\/mcp-servers\/([A-Za-z0-9_-]+)$/,
} as const;

type Schema = Record<string, unknown>;
type Spec = { openapi: string; paths: Record<string, Record<string, Schema>>; components: Record<string, Record<string, Schema>> };
type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;
type EovInternals = {
  options: { validateResponses: false | Schema };
  ajvOpts: { preprocessor: unknown; request: unknown; response: unknown };
};

export interface DirectGetDeps {
  spec: Spec;
  /** The options app.ts gives OpenApiValidator.middleware (a copy: eov normalises them in place). */
  validatorOptions: object;
  migrated(): boolean;
  /** The bearer check eov's security handler runs: token, rate limit, scope; throws as that handler throws. */
  authenticate(req: Request, res: Response, operationId: string): Promise<void>;
  /** The operation's route handler, as registerRoutes mounts it (routes.ts: operationRoute). */
  handler(req: Request, res: Response): Promise<void>;
}

/** eov's validators for the operation, made as eov makes them (openapi.validator.ts installMiddleware). */
function compile(spec: Spec, validatorOptions: object) {
  const eov = new openApiValidatorModule.OpenApiValidator({ ...validatorOptions } as never) as unknown as EovInternals;
  const apiDoc = structuredClone(spec);
  const preprocessed = new preprocessorModule.SchemaPreprocessor(apiDoc as never, eov.ajvOpts.preprocessor as never, eov.options.validateResponses as never).preProcess() as unknown as { apiDocRes: Spec | null };
  const schema = apiDoc.paths[DIRECT_GET.route].get as Schema & { parameters?: { $ref?: string; in?: string; name?: string }[]; requestBody?: unknown; security?: unknown };
  const params = (schema.parameters ?? []).map((p) => (p.$ref ? (spec.components.parameters[p.$ref.replace(/^.+\//, "")] as { in?: string; name?: string }) : p));
  if (params.length !== 1 || params[0].in !== "path" || params[0].name !== DIRECT_GET.param || schema.requestBody != null || schema.security != null) {
    throw new Error(`${DIRECT_GET.route}: the direct GET knows one path parameter, ${DIRECT_GET.param}, no body and the spec's default security`);
  }
  const request = new requestValidatorModule.RequestValidator(apiDoc as never, eov.ajvOpts.request as never);
  const responses = preprocessed.apiDocRes
    ? (new responseValidatorModule.ResponseValidator(preprocessed.apiDocRes as never, eov.ajvOpts.response as never, eov.options.validateResponses as never).validate() as unknown as Middleware)
    : null;
  return {
    schema,
    responseSchema: preprocessed.apiDocRes?.paths[DIRECT_GET.route].get,
    validateRequest: (req: Request, res: Response, next: (err?: unknown) => void) => request.validate(req as never, res as never, next),
    hookResponse: responses,
  };
}

export function directGetRoute(deps: DirectGetDeps) {
  let checks: ReturnType<typeof compile> | null = null;
  return function directGet(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== "GET") return next();
    const match = DIRECT_GET.pattern.exec(req.url);
    if (match === null) return next();
    const h = req.headers;
    const authorization = h.authorization;
    if (
      !deps.migrated() ||
      h["transfer-encoding"] !== undefined ||
      (h["content-length"] !== undefined && h["content-length"] !== "0") ||
      // eov's own test of a bearer Authorization header, before it calls the security handler.
      !authorization ||
      !authorization.toLowerCase().includes("bearer")
    ) {
      return next();
    }
    checks ??= compile(deps.spec, deps.validatorOptions);
    const { schema, responseSchema, validateRequest, hookResponse } = checks;
    const id = match[1];
    // What eov's metadata middleware sets (serial -1: the ResponseValidator's, made without a context).
    const pathParams = { [DIRECT_GET.param]: id };
    (req as Request & { openapi?: unknown }).openapi = { expressRoute: DIRECT_GET.expressRoute, openApiRoute: DIRECT_GET.route, pathParams, schema, serial: -1, ...(responseSchema ? { _responseSchema: responseSchema } : {}) };
    req.params = pathParams;
    deps
      .authenticate(req, res, DIRECT_GET.operationId)
      .then(
        () =>
          new Promise<void>((resolve, reject) => {
            validateRequest(req, res, (err) => {
              if (err) return reject(err);
              if (!hookResponse) return resolve();
              let installed = false;
              // eov's hook calls this once when installed, and again with the error when an answer fails its check.
              hookResponse(req, res, (hookErr) => {
                if (installed) return next(hookErr);
                installed = true;
                return hookErr ? reject(hookErr) : resolve();
              });
            });
          }),
      )
      .then(() => deps.handler(req, res))
      .catch(next);
  };
}
