// POST /api/mcp-servers/{id}/mcp, the gateway's hot path, taken ahead of the generic stack
// (JSON parser, cookie reader, express-openapi-validator's metadata, security and validation
// middlewares, the router): issue 25 measured that stack at most of a relayed call's CPU.
//
// app.ts takes such a POST ahead of Express's app and router dispatch (asExpressRequest below,
// then the request id, log and observability middlewares) and this route answers only a request
// it can check completely: anything else, or anything that fails a check before the token is
// counted, goes on to the generic stack unchanged, so eov answers it exactly as before
// (test/gateway-direct-route.test.ts). What it checks is what eov checks for this operation:
// - the path parameter and the body, with Ajv validators that eov's own Ajv factory compiles
//   from the operation in openapi.yaml (a body that fails is handed on, already parsed, and eov
//   rejects it after the token check, as it always has);
// - no query parameter (eov allows none), application/json in UTF-8 at most 1 MiB (body-parser's
//   strict JSON, its byte-order-mark handling), a bearer Authorization header;
// - the token, the rate limit and the token's scope, by the same function eov's security handler calls;
// - with response validation on, each JSON answer, by eov's own ResponseValidator for this operation.
import type { Express, NextFunction, Request, Response } from "express";
import ajvModule from "express-openapi-validator/dist/framework/ajv/index.js";
import openApiValidatorModule from "express-openapi-validator/dist/openapi.validator.js";
import responseValidatorModule from "express-openapi-validator/dist/middlewares/openapi.response.validator.js";
import { JSON_TYPE, parseJsonBody, readBody } from "./json-body.js";

export const DIRECT_ROUTE = "/api/mcp-servers/{id}/mcp";

/** An operation the direct route can answer: a POST whose only parameter is one path segment. */
export interface DirectOperation {
  /** Its path in openapi.yaml. */
  route: string;
  operationId: string;
  /** The path parameter's name. */
  param: string;
  /** The path as Express writes it (what eov keys the operation's response validators by). */
  expressRoute: string;
  /** The request path, capturing the parameter. */
  pattern: RegExp;
}

export const PER_SERVER_OPERATION: DirectOperation = { route: DIRECT_ROUTE, operationId: "sendMcpServerMessage", param: "id", expressRoute: "/api/mcp-servers/:id/mcp", pattern: /^\/api\/mcp-servers\/([^/?#]+)\/mcp$/ };
/** The workspace endpoint's POST (issue 21: its CPU per call is held against the per-server endpoint's). */
export const WORKSPACE_OPERATION: DirectOperation = {
  route: "/api/workspaces/{workspaceId}/mcp",
  operationId: "sendWorkspaceMessage",
  param: "workspaceId",
  expressRoute: "/api/workspaces/:workspaceId/mcp",
  pattern: /^\/api\/workspaces\/([^/?#]+)\/mcp$/,
};

type Validate = ((data: unknown) => boolean) & { errors?: unknown };
type Schema = Record<string, unknown>;
type Spec = { openapi: string; paths: Record<string, Record<string, Schema>>; components: Record<string, Record<string, Schema>> };
type EovInternals = { options: { validateResponses: false | Schema }; ajvOpts: { request: unknown; response: unknown } };
type ResponseValidatorLike = {
  buildValidators(responses: unknown, key: string): unknown;
  _validate(args: { validators: unknown; body: unknown; statusCode: number; path: string; accepts: string[] }): void;
};

export interface DirectRouteDeps {
  spec: Spec;
  bodyLimitBytes: number;
  migrated(): boolean;
  /** The bearer check eov's security handler runs: token, rate limit, scope; throws as that handler throws. */
  authenticate(req: Request, res: Response, operationId: string): Promise<void>;
  handler(req: Request, res: Response): Promise<void>;
  /** The options app.ts gives OpenApiValidator.middleware (a copy is taken: eov normalises them in place). */
  validatorOptions: object;
  /** Which operation (default: the per-server endpoint's POST). */
  operation?: DirectOperation;
}

/** The operation's validators, compiled at its first request (as eov compiles a route's). */
function compile(spec: Spec, operation: DirectOperation, validatorOptions: object) {
  const item = spec.paths[operation.route];
  const op = item.post as { parameters?: Schema[]; requestBody?: { $ref?: string; required?: boolean; content: Record<string, { schema: Schema }> }; responses: unknown };
  const deref = <T>(node: T & { $ref?: string }, kind: string): T => (node.$ref ? (spec.components[kind][node.$ref.replace(/^.+\//, "")] as T) : node);
  const parameters = [...((item.parameters as unknown as Schema[]) ?? []), ...(op.parameters ?? [])].map((p) => deref(p as Schema & { name: string; in: string; schema: Schema }, "parameters"));
  const pathParams = parameters.filter((p) => p.in === "path");
  if (pathParams.length !== 1 || pathParams[0].name !== operation.param || parameters.length !== 1) throw new Error(`${operation.route}: the direct route knows one path parameter, ${operation.param}`);
  const body = deref(op.requestBody!, "requestBodies");
  if (Object.keys(body.content).join() !== "application/json") throw new Error(`${operation.route}: the direct route knows only application/json bodies`);
  // eov's own Ajv options, normalised by eov from the options app.ts gives it (formats included).
  const eov = new openApiValidatorModule.OpenApiValidator({ ...validatorOptions } as never) as unknown as EovInternals;
  const ajv = ajvModule.createRequestAjv({ openapi: spec.openapi, components: spec.components } as never, eov.ajvOpts.request as never) as unknown as { compile(schema: Schema): Validate };
  const params = ajv.compile({ components: spec.components, type: "object", required: [operation.param], properties: { [operation.param]: pathParams[0].schema } });
  const bodies = ajv.compile({ components: spec.components, type: "object", ...(body.required ? { required: ["body"] } : {}), properties: { body: body.content["application/json"].schema } });
  let responses: ((res: Response, req: Request, body: unknown) => void) | null = null;
  if (eov.options.validateResponses) {
    // eov's own response check, on a copy of the spec as eov keeps one.
    const validator = new responseValidatorModule.ResponseValidator(structuredClone(spec) as never, eov.ajvOpts.response as never) as unknown as ResponseValidatorLike;
    const built = validator.buildValidators(structuredClone(op.responses), `POST-${operation.expressRoute}-application/json`) as Record<string, Record<string, Validate>>;
    // eov picks a status's and a media type's validator anew for every answer (content-type
    // and media-typer parses of each type, each time). Which one it picked is learnt from eov
    // itself, per status and Accept: each validator is wrapped to note that it ran. Later
    // answers with that status and Accept go to the same validator; anything else, a body eov
    // would refuse before validating (null), or a failure goes through eov's _validate in full,
    // so its errors are eov's own.
    let ran: Validate | null = null;
    const validators: Record<string, Record<string, Validate>> = {};
    for (const [status, types] of Object.entries(built)) {
      validators[status] = {};
      for (const [type, validate] of Object.entries(types)) {
        const noted = Object.assign((data: unknown) => {
          ran = validate;
          const valid = validate(data);
          noted.errors = validate.errors;
          return valid;
        }, { errors: undefined as unknown });
        validators[status][type] = noted;
      }
    }
    const picked = new Map<string, Validate | null>();
    responses = (res, req, data) => {
      const contentType = res.getHeader("content-type");
      const accept = req.headers.accept;
      const key = `${res.statusCode} ${contentType === undefined ? "" : String(contentType)}\n${accept ?? ""}`;
      const known = picked.get(key);
      if (known && data !== undefined && data !== null && known({ response: data })) return;
      const accepts = contentType ? [String(contentType)] : accept ? accept.split(",").map((h) => h.trim()) : [];
      ran = null;
      validator._validate({ validators, body: data, statusCode: res.statusCode, path: req.originalUrl, accepts });
      // Kept for the statuses and Accept values agents send, not for every value one could send.
      if (known === undefined && picked.size < 64) picked.set(key, ran);
    };
  }
  return { id: (id: string) => params({ [operation.param]: id }), body: (value: unknown) => bodies({ body: value }), responses };
}

/**
 * The gateway's JSON answer as Express's res.json writes it (the same headers and bytes), in one
 * writeHead and one end: the serialised text, not a copy of it. False when Express must write it
 * (a type already set, as the problem handler's; a status that carries no body).
 */
function writeJson(res: Response, body: unknown): boolean {
  if (res.getHeader("content-type") !== undefined || res.statusCode === 204 || res.statusCode === 304) return false;
  const text = JSON.stringify(body);
  if (text === undefined) return false;
  res.writeHead(res.statusCode, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
  return true;
}

export function directGatewayRoute(deps: DirectRouteDeps) {
  const operation = deps.operation ?? PER_SERVER_OPERATION;
  let checks: ReturnType<typeof compile> | null = null;

  function directRoute(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== "POST") return next();
    const match = operation.pattern.exec(req.url);
    if (match === null) return next();
    const h = req.headers;
    const length = Number(h["content-length"]);
    const authorization = h.authorization;
    if (
      !deps.migrated() ||
      h["transfer-encoding"] !== undefined ||
      h["content-encoding"] !== undefined ||
      !(length > 0 && length <= deps.bodyLimitBytes) ||
      !JSON_TYPE.test(h["content-type"] ?? "") ||
      // eov's own test of a bearer Authorization header, before it calls the security handler.
      !authorization ||
      !authorization.toLowerCase().includes("bearer")
    ) {
      return next();
    }
    checks ??= compile(deps.spec, operation, deps.validatorOptions);
    const id = match[1];
    if (!checks.id(id)) return next();
    const ready = checks;
    readBody(req, length).then(
      (bytes) => {
        const parsed = parseJsonBody(bytes);
        if (!parsed.ok) return next(parsed.error);
        req.body = parsed.value;
        // Not what this operation takes: eov answers it after the token check, as before.
        if (!ready.body(parsed.value)) return next();
        req.params = { [operation.param]: id };
        // What the request log line and the metrics read for the operation (eov sets it on the generic path).
        (req as Request & { openapi?: unknown }).openapi = { openApiRoute: operation.route, expressRoute: operation.expressRoute, pathParams: { [operation.param]: id }, schema: { operationId: operation.operationId } };
        deps
          .authenticate(req, res, operation.operationId)
          .then(() => {
            const check = ready.responses;
            const json = res.json;
            res.json = function directJson(this: Response, body: unknown) {
              res.json = json;
              if (res.headersSent) return json.call(this, body);
              // As eov's response hook (express-mung) does: one JSON answer below 500 is checked, a failure goes to the problem handler.
              if (check && res.statusCode < 500) {
                try {
                  check(res, req, body);
                } catch (err) {
                  next(err);
                  return res;
                }
              }
              return writeJson(res, body) ? res : json.call(this, body);
            };
            return deps.handler(req, res);
          })
          .catch(next);
      },
      (err) => next(err),
    );
  }
  /** Whether a POST to this URL is this route's to try (app.ts takes it ahead of Express then). */
  const takes = (url: string) => operation.pattern.test(url);
  return Object.assign(directRoute, { takes });
}

/**
 * What Express's app.handle does to a request before its router runs (its request and response
 * prototypes, the two references between them, res.locals), and what the router sets before
 * its first layer: so a request answered ahead of Express reads and writes as one inside it.
 */
export function asExpressRequest(app: Express, req: Request, res: Response): void {
  req.res = res;
  res.req = req;
  Object.setPrototypeOf(req, app.request);
  Object.setPrototypeOf(res, app.response);
  res.locals ??= Object.create(null);
  req.baseUrl = "";
  req.originalUrl = req.url;
}
