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

/** The Express handler of one operation: its validated request adapted to `handler`, the reply sent. */
export function operationRoute(op: Operation, handlers: HandlerTable): (req: Request, res: Response) => Promise<void> {
  const handler = handlers[op.operationId as keyof HandlerTable] as unknown as (req: HandlerRequest<OperationId>) => Promise<AnyReply>;
  if (!handler) throw new Error(`no handler for operation ${op.operationId}`);
  const bodyRequired = op.requestBody?.required === true;
  return async (req: Request, res: Response) => {
    let gone: AbortSignal | undefined;
    // An empty body passes the validator as {} where the schema requires no field (PATCH): say it is missing.
    if (bodyRequired && emptyBody(req)) throw new ValidationFailed([{ path: "/body", message: "is required: send a JSON object" }]);
    const reply = await handler({
      get signal() {
        return gone ?? (gone = goneSignal(res));
      },
      actor: () => {
        const actor = (req as Request & { auth?: Actor }).auth;
        if (!actor) throw new Unauthorized();
        return actor;
      },
      params: req.params as never,
      query: req.query as never,
      headers: req.headers,
      body: req.body,
      requestId: res.locals.requestId,
    });
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
