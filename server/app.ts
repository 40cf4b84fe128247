// buildApp(deps): the direct routes, ahead of Express (the gateway POSTs; GET, create, PATCH of a record) → request id and log → JSON parser → contract validator → routes → problems.
// It never listens; server/main.ts and the tests do.
import { readFileSync } from "node:fs";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import * as OpenApiValidator from "express-openapi-validator";
import type { Logger } from "pino";
import type { ConnectionService } from "./domain/connections.js";
import type { ConnectorService } from "./domain/connectors.js";
import type { McpServerService } from "./domain/mcp-servers.js";
import type { ActivityService } from "./domain/activity.js";
import { activityHandlers } from "./http/activity.js";
import type { HealthService } from "./domain/health.js";
import { healthHandlers } from "./http/health.js";
import { DomainError, Forbidden, ServiceUnavailable, Unauthorized } from "./domain/errors.js";
import type { Idempotency } from "./domain/idempotency.js";
import type { OAuthService } from "./domain/oauth/index.js";
import { oauthHandlers } from "./http/oauth.js";
import type { RateLimiter, RateLimitState } from "./domain/rate-limit.js";
import type { TokenService } from "./domain/tokens.js";
import type { ToolsetService } from "./domain/toolsets.js";
import type { SessionService } from "./domain/sessions.js";
import { readCookie, SESSION_COOKIE } from "./http/cookies.js";
import { tokenHandlers } from "./http/tokens.js";
import { toolsetHandlers } from "./http/toolsets.js";
import { userConnectionHandlers } from "./http/user-connections.js";
import type { UserConnectionService } from "./domain/user-connections.js";
import { connectionHandlers } from "./http/connections.js";
import type { ToolPinService } from "./domain/gateway/pins/service.js";
import { toolPinHandlers } from "./http/tool-pins.js";
import { connectorHandlers } from "./http/connectors.js";
import { docsRouter } from "./http/docs.js";
import { consoleRouter } from "./http/console.js";
import type { HandlerTable, RawHandlerTable, RawOperationId } from "./http/handler-types.js";

type RawHandler = RawHandlerTable[RawOperationId];
import { mcpGatewayHandlers, type McpGatewayDeps } from "./http/mcp-gateway.js";
import { asExpressRequest, directGatewayRoute, WORKSPACE_OPERATION } from "./http/mcp-gateway-direct.js";
import { mcpServerHandlers } from "./http/mcp-servers.js";
import type { WorkspaceGateway } from "./domain/workspace-gateway.js";
import { createProblemHandler } from "./http/problem.js";
import { requestIdFor } from "./http/request-id.js";
import { compileMetaSchemaOnUse, keepRouteRegexps, precomputeRouteLookup, resolveComponentRefsWithoutCompiling, skipBundlingSelfContainedSpecs, skipRefScanOfSchemasWithoutIds } from "./http/validator.js";
import { operationRoute, registerRoutes } from "./http/routes.js";
import { directRestRoute } from "./http/rest-direct.js";
import { systemHandlers } from "./http/system.js";
import { bindScope, scopeOf } from "./observability/hooks.js";
import { observeHttp } from "./observability/http.js";
import { fromRoot } from "./paths.js";

export const spec = JSON.parse(readFileSync(fromRoot("generated/openapi.json"), "utf8"));

export const JSON_BODY_LIMIT = "1mb";
export { MAX_HEADER_BYTES } from "./http/limits.js";
const JSON_BODY_LIMIT_BYTES = 1024 * 1024; // JSON_BODY_LIMIT as body-parser reads it
// What a token of scope `gateway` may do: use the MCP endpoints of its workspaces, nothing else.
// getMe too: an agent may ask which person it acts for.
const GATEWAY_OPERATIONS = new Set(["sendMcpServerMessage", "openMcpServerStream", "closeMcpServerSession", "sendWorkspaceMessage", "openWorkspaceStream", "closeWorkspaceSession", "sendToolsetMessage", "getMe"]);
// What a token limited to toolsets may do: use those toolsets' MCP endpoints (checked there), and getMe.
const TOOLSET_OPERATIONS = new Set(["sendToolsetMessage", "getMe"]);

export interface AppDeps {
  tokens: TokenService;
  sessions: SessionService;
  userConnections: UserConnectionService;
  servers: McpServerService;
  toolsets: ToolsetService;
  activity: ActivityService;
  health: HealthService;
  connections: ConnectionService;
  /** Pinned tool definitions (issue 22). */
  toolPins: ToolPinService;
  connectors: ConnectorService;
  idempotency: Idempotency;
  rateLimiter: RateLimiter;
  oauth: OAuthService;
  gateway: McpGatewayDeps & { workspace: WorkspaceGateway };
  readiness: { migrated(): boolean; check(): Promise<boolean> };
  logger: Logger;
  validateResponses: boolean;
  /** Whether a thrown error means the store cannot be reached (answered 503). */
  storeUnavailable: (err: unknown) => boolean;
  /** Called once per response with the operation it answered (tests record coverage with it). */
  onResponse?: (operationId: string | undefined, status: number) => void;
}

type OperationMatch = { route: string; operationId: string };

/** Finds the spec operation for a request, also for requests refused before the validator ran (413, bad JSON). */
function operationMatcher(paths: Record<string, Record<string, { operationId?: string }>>) {
  const table = Object.entries(paths).map(([route, item]) => ({
    route,
    // Spec paths hold only letters, digits, "-", "/" and {params}.
    pattern: new RegExp("^" + route.replace(/\{[^}]+\}/g, "[^/]+") + "$"),
    item,
  }));
  return (method: string, path: string): OperationMatch | null => {
    for (const { route, pattern, item } of table) {
      const operationId = item[method.toLowerCase()]?.operationId;
      if (operationId && pattern.test(path)) return { route, operationId };
    }
    return null;
  };
}

const matchOperation = operationMatcher(spec.paths);

/** Only the probes go unlimited: a balancer or orchestrator polls them (issue 18). */
export const RATE_LIMIT_EXEMPT: ReadonlySet<string> = new Set(["/healthz", "/readyz"]);

// Paths whose operations need no credential; every path outside /api is unauthenticated too (docs, the spec, 404s).
const PUBLIC_PATHS: ReadonlySet<string> = new Set(
  Object.entries(spec.paths as Record<string, Record<string, { security?: unknown[] }>>)
    .filter(([, item]) => Object.values(item).some((op) => Array.isArray(op?.security) && op.security.length === 0))
    .map(([path]) => path),
);

/** Whether a request is served without any credential, so its client address is what gets counted. */
const unauthenticated = (path: string) => !RATE_LIMIT_EXEMPT.has(path) && (PUBLIC_PATHS.has(path) || !path.startsWith("/api/"));

/**
 * `logger`: the access line's, redacting nothing. Its fields are the request's ids, method, spec
 * route, operationId, status and time, never a header or a body, so nothing in it could be secret;
 * pino's redaction (wildcard paths) was four fifths of that line's cost, on every request.
 */
function requestContext(onResponse: AppDeps["onResponse"], logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const requestId = requestIdFor(req.get("x-request-id"));
    const started = process.hrtime.bigint();
    res.locals.requestId = requestId;
    // The request's logger (requestId and traceId bound in one child) is made by observeHttp, next, when first used.
    res.setHeader("X-Request-Id", requestId);
    let answered = false;
    const done = () => {
      if (answered) return;
      answered = true;
      // The validator knows the route; requests refused before it ran (413, bad JSON) are matched here.
      const openapi = (req as Request & { openapi?: { openApiRoute?: string; schema?: { operationId?: string } } }).openapi;
      const match = openapi?.schema?.operationId ? { route: openapi.openApiRoute, operationId: openapi.schema.operationId } : matchOperation(req.method, req.path);
      const operationId = match?.operationId;
      const route = match?.route;
      logger.info(
        {
          requestId,
          traceId: res.locals.traceId,
          method: req.method,
          route: route ?? null,
          operationId: operationId ?? null,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        "request",
      );
      onResponse?.(operationId, res.statusCode);
    };
    res.on("finish", done);
    // A stream (SSE) the client closed never finishes; it was answered all the same once its headers went out.
    res.on("close", () => {
      if (res.headersSent) done();
    });
    next();
  };
}

/**
 * Express 5 recomputes req.query on every read; pinned so the validator's coercion sticks. Only
 * for the generic stack: the direct gateway routes take no query string, and pin it when they
 * hand a request on.
 */
function pinQuery(req: Request): void {
  Object.defineProperty(req, "query", { value: { ...req.query }, writable: true, enumerable: true, configurable: true });
}

export function setRateLimitHeaders(res: Response, state: RateLimitState) {
  res.setHeader("RateLimit-Policy", `"default";q=${state.limit};w=60`);
  res.setHeader("RateLimit", `"default";r=${Math.max(0, state.remaining)};t=${state.resetSeconds}`);
}

/** Handlers whose module loads at their first request (the workspace endpoint's MCP server SDK is a tenth of start-up). */
function lazyHandlers<K extends RawOperationId>(names: K[], load: () => Promise<Record<K, RawHandler>>): Record<K, RawHandler> {
  let loaded: Promise<Record<K, RawHandler>> | undefined;
  return Object.fromEntries(names.map((name) => [name, async (req: Request, res: Response) => (await (loaded ??= load()))[name](req, res)])) as Record<K, RawHandler>;
}

export function buildApp(deps: AppDeps): Express {
  /**
   * The bearer token check of every secured operation (eov's security handler, and the gateway's
   * direct route): the token, its rate limit, what its scope allows; sets req.auth.
   */
  async function checkBearer(req: Request, res: Response, operationId: string): Promise<void> {
    try {
      let actor;
      try {
        actor = await deps.tokens.authenticate(req.headers.authorization);
      } catch (err) {
        // Without a valid token, the client address is what gets counted.
        if (err instanceof Unauthorized) await deps.rateLimiter.consume(`ip:${req.ip}`);
        throw err;
      }
      setRateLimitHeaders(res, await deps.rateLimiter.consume(`token:${actor.tokenId}`));
      if (actor.scope === "gateway" && !GATEWAY_OPERATIONS.has(operationId)) {
        throw new Forbidden("This token has scope gateway: it may only use the MCP endpoints (/api/mcp-servers/{id}/mcp, /api/workspaces/{workspaceId}/mcp, /api/toolsets/{toolsetId}/mcp) of its workspaces.");
      }
      if (actor.toolsets && !TOOLSET_OPERATIONS.has(operationId)) {
        throw new Forbidden(`This token is limited to toolsets ${actor.toolsets.join(", ")}: it may only use their MCP endpoints (/api/toolsets/{toolsetId}/mcp).`);
      }
      const auth = { ...actor, requestId: res.locals.requestId };
      // The request's observability scope travels with its actor when it is not ambient (observability/http.ts).
      const scope = scopeOf(res);
      if (scope) bindScope(auth, scope);
      (req as Request & { auth?: unknown }).auth = auth;
    } catch (err) {
      // The validator re-wraps what we throw and keeps only 401/403/500; the problem
      // handler answers from the original.
      res.locals.securityError = err;
      throw { status: err instanceof DomainError ? err.status : 500, error: new Error("authentication failed") };
    }
  }

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const context = requestContext(deps.onResponse, deps.logger.child({}, { redact: { paths: [], censor: "[redacted]" } }));
  const observe = observeHttp(matchOperation, deps.logger); // the request's logger with its ids; metrics and spans when on
  // The gateway's hot path, POST /api/mcp-servers/{id}/mcp, checked as eov checks it, ahead of
  // Express; whatever it does not take goes on unchanged (server/http/mcp-gateway-direct.ts).
  const gatewayHandlers = mcpGatewayHandlers(deps.gateway);
  const workspaceHandlers = lazyHandlers(["sendWorkspaceMessage", "openWorkspaceStream", "closeWorkspaceSession", "sendToolsetMessage"], async () =>
    (await import("./http/workspace-mcp.js")).workspaceMcpHandlers(deps.gateway.workspace, deps.gateway.publicOrigin, (actor, id) => deps.toolsets.serving(actor, id)),
  );
  // The contract validator's options; the direct routes (below) build eov's validators from the same ones.
  const validatorOptions: Parameters<typeof OpenApiValidator.middleware>[0] = {
    // eov deep-copies it before use (lodash.clonedeep in its middleware()), so no copy here.
    apiSpec: spec,
    // Checked at build and test time (`npm run generate`, test/spec.test.ts); ~360 ms at every start otherwise.
    validateApiSpec: false,
    // No operation takes multipart/form-data or a binary body (test/validator-startup.test.ts
    // checks), so eov's multer step would only pass every request on, after building one
    // more Ajv over the whole spec at the first request.
    fileUploader: false,
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false, allErrors: true },
    validateResponses: deps.validateResponses ? { removeAdditional: false } : false,
    validateFormats: true,
    validateSecurity: {
      handlers: {
        bearerAuth: async (req) => {
          await checkBearer(req, req.res!, (req as Request & { openapi?: { schema?: { operationId?: string } } }).openapi?.schema?.operationId ?? "");
          return true;
        },
        // Only deleteSession is secured by the cookie; the pages that read it check it themselves.
        sessionCookie: async (req) => {
          const res = req.res!;
          try {
            const user = await deps.sessions.resolve(readCookie(req.headers.cookie, SESSION_COOKIE));
            if (!user) {
              await deps.rateLimiter.consume(`ip:${req.ip}`);
              throw new Unauthorized("The session cookie is missing, unknown or has ended.");
            }
            return true;
          } catch (err) {
            res.locals.securityError = err;
            throw { status: err instanceof DomainError ? err.status : 500, error: new Error("authentication failed") };
          }
        },
      },
    },
  };
  const direct = { spec, bodyLimitBytes: JSON_BODY_LIMIT_BYTES, migrated: () => deps.readiness.migrated(), authenticate: checkBearer, validatorOptions };
  // GET, create and PATCH of /api/mcp-servers the same way, with the handlers the router mounts for them (server/http/rest-direct.ts).
  const handlers: HandlerTable = { ...mcpServerHandlers(deps.servers, deps.idempotency), ...connectionHandlers(deps.connections), ...toolPinHandlers(deps.toolPins), ...connectorHandlers(deps.connectors), ...oauthHandlers(deps.oauth, deps.sessions), ...tokenHandlers(deps.tokens, deps.sessions, deps.gateway.publicOrigin), ...userConnectionHandlers(deps.userConnections, deps.sessions, deps.oauth, deps.userConnections.findServer), ...systemHandlers(deps.readiness), ...activityHandlers(deps.activity), ...healthHandlers(deps.health), ...toolsetHandlers(deps.toolsets) };
  const restDirect = directRestRoute({ spec, validatorOptions, bodyLimitBytes: JSON_BODY_LIMIT_BYTES, migrated: direct.migrated, authenticate: checkBearer, handler: (op) => operationRoute(spec.paths[op.route][op.method], handlers) });
  const directRoutes = [
    directGatewayRoute({ ...direct, handler: gatewayHandlers.sendMcpServerMessage }),
    // The workspace endpoint's POST the same way (issue 21 holds its CPU per call against the per-server endpoint's).
    directGatewayRoute({ ...direct, operation: WORKSPACE_OPERATION, handler: workspaceHandlers.sendWorkspaceMessage }),
  ];
  // Their POSTs, and the REST route's GET, POST and PATCH, are taken before Express's app and router dispatch (issue 25): with Express's own
  // set-up of a request (its request and response prototypes), the request id and log line, and
  // the observability scope, as every request gets them; one they hand on enters the app below,
  // whose first layer then passes it (and an error, if they failed it) to the rest of the stack.
  // Express calls app.handle for every request it is given (express.js: app(req, res) → app.handle), untyped.
  const dispatching = app as Express & { handle(req: Request, res: Response, callback?: NextFunction): void };
  const expressHandle = dispatching.handle;
  dispatching.handle = function handle(req, res, callback) {
    const route = callback !== undefined ? undefined : ((req.method === "POST" ? directRoutes.find((r) => r.takes(req.url)) : undefined) ?? (restDirect.takes(req.method, req.url) ? restDirect : undefined));
    if (route === undefined) return expressHandle.call(app, req, res, callback);
    asExpressRequest(app, req, res);
    const handOn = (err?: unknown) => {
      if (route !== restDirect) pinQuery(req);
      res.locals.handedOn = { err };
      expressHandle.call(app, req, res);
    };
    // The REST route's checks run eov's RequestValidator, which redefines req.query for good: pin it first, as the generic stack does.
    if (route === restDirect) pinQuery(req);
    context(req, res, () => observe(req, res, () => route(req, res, handOn)));
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    const handedOn = res.locals.handedOn as { err: unknown } | undefined;
    if (handedOn === undefined) {
      return context(req, res, () => {
        pinQuery(req);
        observe(req, res, next);
      });
    }
    res.locals.handedOn = undefined;
    next(handedOn.err);
  });
  // The list (which reads req.query, pinned above) is taken here; the others ahead of Express (dispatching.handle).
  app.use(restDirect);
  // Unauthenticated routes count per client address, before any work (an UPDATE and a SELECT per OAuth callback).
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!unauthenticated(req.path)) return next();
    res.locals.countedByAddress = true;
    deps.rateLimiter.consume(`ip:${req.ip}`).then((state) => {
      setRateLimitHeaders(res, state);
      next();
    }, next);
  });
  // Before the validator: these paths are not operations of the spec (docs; /, /console and its
  // assets). None is under /api/, so API requests skip both routers' layers.
  const docs = docsRouter();
  const pages = consoleRouter();
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.path.startsWith("/api/")) return next();
    docs(req, res, (err?: unknown) => (err ? next(err) : pages(req, res, next)));
  });
  // Until the store is migrated nothing under /api can be answered; say so plainly.
  app.use("/api", (_req: Request, _res: Response, next: NextFunction) => next(deps.readiness.migrated() ? undefined : { status: 503 }));
  app.use(express.json({ limit: JSON_BODY_LIMIT, type: ["application/json", "application/*+json"] }));
  // The validator looks for cookie credentials in req.cookies; only the session cookie is read.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const session = readCookie(req.headers.cookie, SESSION_COOKIE);
    (req as Request & { cookies?: Record<string, string> }).cookies = session === undefined ? {} : { [SESSION_COOKIE]: session };
    next();
  });
  compileMetaSchemaOnUse();
  resolveComponentRefsWithoutCompiling();
  keepRouteRegexps();
  precomputeRouteLookup();
  skipBundlingSelfContainedSpecs();
  skipRefScanOfSchemasWithoutIds();
  app.use(OpenApiValidator.middleware(validatorOptions));
  registerRoutes(app, spec, handlers, { ...gatewayHandlers, ...workspaceHandlers });
  app.use((req: Request, _res: Response, next: NextFunction) => next({ status: 404 }));
  // A request with no Authorization header at all is refused by the validator before the
  // security handler runs, and so is one to a path or method of no operation: count them against their address too.
  app.use(async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    const status = (err as { status?: number })?.status;
    const authenticated = (req as Request & { auth?: unknown }).auth !== undefined;
    if (res.locals.securityError !== undefined || res.locals.countedByAddress || authenticated || (status !== 401 && status !== 404 && status !== 405)) return next(err);
    try {
      await deps.rateLimiter.consume(`ip:${req.ip}`);
      next(err);
    } catch (limited) {
      next(limited);
    }
  });
  // A store outage reaches http/ as the domain's ServiceUnavailable: http/ knows no store.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const original = res.locals.securityError ?? err;
    if (original instanceof DomainError || !deps.storeUnavailable(original)) return next(err);
    res.locals.securityError = undefined;
    next(new ServiceUnavailable());
  });
  app.use(createProblemHandler(spec));
  return app;
}
