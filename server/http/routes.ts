// Registers one Express route per operation in the spec, each bound to its handler.
import type { Express, Request, Response } from "express";
import { Unauthorized, ValidationFailed } from "../domain/errors.js";
import type { Actor } from "../domain/tokens.js";
import type { OperationId } from "../wire.js";
import type { HandlerRequest, HandlerTable, RawHandlerTable } from "./handler-types.js";

type AnyReply = { status: number; body: unknown; headers?: Record<string, string> };

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

type Spec = { paths: Record<string, Partial<Record<(typeof METHODS)[number], { operationId: string; requestBody?: { required?: boolean } }>>> };

const emptyBody = (req: Request) => req.headers["transfer-encoding"] === undefined && Number(req.headers["content-length"] ?? 0) === 0;

/**
 * Aborted when the caller goes away before the answer is sent: outbound work stops with it.
 * Made when a handler first asks (only the outbound checks do), so a GET or a write pays for no
 * AbortController or close listener; asked after the caller left, it is aborted already.
 */
function goneSignal(res: Response): AbortSignal {
  const gone = new AbortController();
  const abort = () => {
    if (!res.writableFinished) gone.abort(new DOMException("the client went away", "AbortError"));
  };
  if (res.closed) abort();
  else res.on("close", abort);
  return gone.signal;
}

type Operation = NonNullable<Spec["paths"][string][(typeof METHODS)[number]]>;

// What a handler is given. A class, so that `signal` is one getter on its prototype: a `get` in an
// object literal made per request is an accessor pair V8 allocates in the old generation, which
// held the request's closure, and all the request allocated, past every scavenge until the next
// full collection (issue 25, the tail; observability/http.ts has the numbers).
class OperationRequest {
  #gone: AbortSignal | undefined;
  readonly params: unknown;
  readonly query: unknown;
  readonly headers: Request["headers"];
  readonly body: unknown;
  readonly requestId: unknown;
  readonly #req: Request;
  readonly #res: Response;
  constructor(req: Request, res: Response) {
    this.#req = req;
    this.#res = res;
    this.params = req.params;
    this.query = req.query;
    this.headers = req.headers;
    this.body = req.body;
    this.requestId = res.locals.requestId;
  }
  get signal(): AbortSignal {
    return (this.#gone ??= goneSignal(this.#res));
  }
  actor = (): Actor => {
    const actor = (this.#req as Request & { auth?: Actor }).auth;
    if (!actor) throw new Unauthorized();
    return actor;
  };
}

/** The Express handler of one operation: its validated request adapted to `handler`, the reply sent. */
export function operationRoute(op: Operation, handlers: HandlerTable): (req: Request, res: Response) => Promise<void> {
  const handler = handlers[op.operationId as keyof HandlerTable] as unknown as (req: HandlerRequest<OperationId>) => Promise<AnyReply>;
  if (!handler) throw new Error(`no handler for operation ${op.operationId}`);
  const bodyRequired = op.requestBody?.required === true;
  return async (req: Request, res: Response) => {
    // An empty body passes the validator as {} where the schema requires no field (PATCH): say it is missing.
    if (bodyRequired && emptyBody(req)) throw new ValidationFailed([{ path: "/body", message: "is required: send a JSON object" }]);
    const reply = await handler(new OperationRequest(req, res) as never);
    res.status(reply.status);
    if (reply.headers) res.set(reply.headers);
    if (reply.body === undefined) res.end();
    else if (typeof reply.body === "string") res.type("html").send(reply.body); // pages for a person's browser
    else res.json(reply.body);
  };
}

export function registerRoutes(app: Express, spec: Spec, handlers: HandlerTable, raw: RawHandlerTable) {
  for (const [path, item] of Object.entries(spec.paths)) {
    const expressPath = path.replace(/\{([^}]+)\}/g, ":$1");
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const rawHandler = raw[op.operationId as keyof RawHandlerTable];
      app[method](expressPath, rawHandler ?? operationRoute(op, handlers));
    }
  }
}
