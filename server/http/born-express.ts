// Express gives every request and response its app's prototypes (`Object.setPrototypeOf(req,
// app.request)`, and the same for res), and so does app.ts's direct route (asExpressRequest).
// Swapping an object's prototype after it is made costs V8 dearly: served so, about a third of
// all that a request allocates survived each young-generation collection (against 0.1% without
// the swap), so each scavenge copied megabytes and the survivors filled the old generation. Here
// node:http makes each request and response with the app's prototypes from the start, so
// Express's swap finds them in place and changes nothing.
import { IncomingMessage, ServerResponse } from "node:http";

interface ExpressPrototypes {
  request: IncomingMessage;
  response: ServerResponse;
}

const isClass = (f: unknown) => /^class\b/.test(Function.prototype.toString.call(f));

/** The constructors to give `http.createServer`, and `adopt(app)` once the Express app is built (until then, node's own prototypes). */
export function bornExpress() {
  // Node's constructors are plain functions, run here on an object made with our prototype.
  // Plain functions too, not classes, because a class's `prototype` cannot be replaced; and not
  // Reflect.construct, which measured 2.6× the CPU per request of this on a bare Express app
  // (and kept 7% of its allocation alive where this keeps 0.1%). A Node whose constructors
  // became classes keeps its own (the swap then happens as before).
  if (isClass(IncomingMessage) || isClass(ServerResponse)) return { IncomingMessage, ServerResponse, adopt: (_app: ExpressPrototypes) => {} };
  function Request(this: IncomingMessage, ...args: unknown[]) {
    (IncomingMessage as unknown as (...a: unknown[]) => void).apply(this, args);
  }
  function Response(this: ServerResponse, ...args: unknown[]) {
    (ServerResponse as unknown as (...a: unknown[]) => void).apply(this, args);
  }
  Request.prototype = IncomingMessage.prototype;
  Response.prototype = ServerResponse.prototype;
  return {
    IncomingMessage: Request as unknown as typeof IncomingMessage,
    ServerResponse: Response as unknown as typeof ServerResponse,
    adopt(app: ExpressPrototypes) {
      Request.prototype = app.request;
      Response.prototype = app.response;
    },
  };
}
