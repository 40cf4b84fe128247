// What the server answers while the app is still being built (server/main.ts listens first, then
// loads the app and opens the store). `GET /healthz` is liveness only (README): the process is up
// and will serve, so it is answered at once, with the body, headers and log line the app gives
// it. Everything else, `/readyz` included, waits and is handed to the app once it is built, so
// nothing arriving early is refused and nothing is answered by anything but the app.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { traceIdOf } from "../observability/http.js";
import { requestIdFor } from "./request-id.js";

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** What `GET /healthz` answers, here and in the app (http/system.ts). */
export const HEALTH = { status: "ok" } as const;
const HEALTHY = JSON.stringify(HEALTH);

export function whileStarting(logger: Logger): { listener: Listener; serve(app: Listener): void } {
  let app: Listener | null = null;
  const waiting: [IncomingMessage, ServerResponse][] = [];
  const listener: Listener = (req, res) => {
    if (app) app(req, res);
    else if (req.method === "GET" && req.url === "/healthz") healthy(req, res, logger);
    else waiting.push([req, res]);
  };
  return {
    listener,
    serve(built) {
      app = built;
      for (const [req, res] of waiting.splice(0)) built(req, res);
    },
  };
}

// As getHealth answers through the app (status, body, headers, the request log line). Not counted
// in metrics or traced: observability starts with the app.
function healthy(req: IncomingMessage, res: ServerResponse, logger: Logger) {
  const started = process.hrtime.bigint();
  const given = req.headers["x-request-id"];
  const requestId = requestIdFor(typeof given === "string" ? given : undefined);
  const log = logger.child({ requestId, traceId: traceIdOf(req.headers.traceparent) });
  res.on("finish", () => {
    log.info({ method: req.method, route: "/healthz", operationId: "getHealth", status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, "request");
  });
  res.writeHead(200, { "X-Request-Id": requestId, "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(HEALTHY) });
  res.end(HEALTHY);
}
