// Express gives every request its own prototypes (`Object.setPrototypeOf(req, app.request)`, and
// the same for res), and so does app.ts's direct route (asExpressRequest). Swapping an object's
// prototype after it is made costs V8 dearly: served so, about a third of all that a request
// allocates survived each young-generation collection (against 0.1% without the swap), so each
// scavenge copied megabytes and paused for tens of milliseconds, and the survivors filled the old
// generation. Here node:http makes each request and response with the app's prototypes from
// the start, so Express's swap finds them in place and changes nothing.
import { IncomingMessage, ServerResponse } from "node:http";

interface ExpressPrototypes {
  request: IncomingMessage;
  response: ServerResponse;
}

/** The classes to give `http.createServer`, and `adopt(app)` once the Express app is built (until then, node's own prototypes). */
export function bornExpress() {
  // Plain functions, not classes: a class's `prototype` cannot be replaced. Reflect.construct runs
  // node's constructors (functions or classes alike) for an object whose prototype is new.target's.
  function Request(...args: unknown[]) {
    return Reflect.construct(IncomingMessage, args, new.target);
  }
  function Response(...args: unknown[]) {
    return Reflect.construct(ServerResponse, args, new.target);
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
