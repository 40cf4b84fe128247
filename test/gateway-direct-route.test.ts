// POST /api/mcp-servers/{id}/mcp is answered ahead of Express's generic stack (issue 25). What the
// contract checks must not change with it: every malformed or refused request below gets the
// status, headers and body it got when every request went through express-openapi-validator
// (the snapshots were recorded on the commit before the direct route), and well-formed ones
// still reach the upstream, including the bodies the route hands back to the generic stack.
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { exactRequest, raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let peer: GatewayPeer;
let ws: string;
let token: string;
let adminToken: string;
let path: string;

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  peer = await startV2Peer();
  ws = uniqueWorkspace("direct");
  adminToken = await srv.token([ws], "usr_admin");
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: adminToken, body: JSON.stringify({ workspaceId: ws, name: "upstream", url: peer.url }) });
  expect(created.status, created.text).toBe(201);
  token = (await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
  path = `/api/mcp-servers/${created.json.id}/mcp`;
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

type Sent = { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer };

/** One request exactly as given (no header added but Host), and what came back. */
const send = ({ method = "POST", path: p = path, headers = {}, body }: Sent) => exactRequest(srv.baseUrl, { method, path: p, headers, body });

const json = (body: string | Buffer, extra: Record<string, string> = {}) => ({
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "content-length": String(Buffer.byteLength(body)),
  ...extra,
});
const auth = () => ({ authorization: `Bearer ${token}` });
const call = (id = 1) => JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { text: "hi" } } });

/** What a client sees, without what differs per request (request ids, dates, rate-limit counters). */
function outcome(res: { status: number; headers: Record<string, unknown>; text: string }) {
  let body: unknown = res.text;
  try {
    body = JSON.parse(res.text);
  } catch {
    /* not JSON */
  }
  if (body && typeof body === "object" && "requestId" in body) (body as Record<string, unknown>).requestId = "<id>";
  if (body && typeof body === "object" && "instance" in body) (body as Record<string, unknown>).instance = String((body as Record<string, unknown>).instance).replace(path, "<path>");
  return {
    status: res.status,
    contentType: res.headers["content-type"] ?? null,
    wwwAuthenticate: res.headers["www-authenticate"] ?? null,
    rateLimited: res.headers["ratelimit"] !== undefined,
    body,
  };
}

describe("POST /api/mcp-servers/{id}/mcp, malformed or refused", () => {
  test("when the body is not JSON, then 400 not valid JSON, with or without a token", async () => {
    const body = '{"jsonrpc":';
    const withToken = outcome(await send({ headers: { ...json(body), ...auth() }, body }));
    expect(withToken).toEqual(outcome(await send({ headers: json(body), body })));
    expect(withToken).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "The request body is not valid JSON.",
          "errors": [
            {
              "message": "is not valid JSON",
              "path": "/",
            },
          ],
          "instance": "<path>",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when the body is JSON but not an object or array, then 400 not valid JSON (the parser is strict)", async () => {
    const body = '"tools/call"';
    expect(outcome(await send({ headers: { ...json(body), ...auth() }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "The request body is not valid JSON.",
          "errors": [
            {
              "message": "is not valid JSON",
              "path": "/",
            },
          ],
          "instance": "<path>",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when a batch holds something other than objects, then 400 naming the item, after the token check", async () => {
    const body = '[1, {"jsonrpc":"2.0","id":1,"method":"ping"}]';
    expect(outcome(await send({ headers: { ...json(body), ...auth() }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "1 field is not valid.",
          "errors": [
            {
              "message": "must be an object",
              "path": "/0",
            },
          ],
          "instance": "<path>",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
    expect(outcome(await send({ headers: json(body), body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 401,
          "title": "Authentication is required.",
          "type": "/problems/unauthorized",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 401,
        "wwwAuthenticate": "Bearer realm="mcp-servers-api"",
      }
    `);
  });

  test("when the token is missing, of another scheme or unknown, then 401 before the body is looked at", async () => {
    const body = call();
    expect(outcome(await send({ headers: json(body), body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 401,
          "title": "Authentication is required.",
          "type": "/problems/unauthorized",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 401,
        "wwwAuthenticate": "Bearer realm="mcp-servers-api"",
      }
    `);
    expect(outcome(await send({ headers: { ...json(body), authorization: "Basic dXNlcjpwYXNz" }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 401,
          "title": "Authentication is required.",
          "type": "/problems/unauthorized",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 401,
        "wwwAuthenticate": "Bearer realm="mcp-servers-api", error="invalid_token"",
      }
    `);
    expect(outcome(await send({ headers: { ...json(body), authorization: "Bearer mcp_not_a_real_token" }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 401,
          "title": "Authentication is required.",
          "type": "/problems/unauthorized",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 401,
        "wwwAuthenticate": "Bearer realm="mcp-servers-api", error="invalid_token"",
      }
    `);
    expect(outcome(await send({ headers: { ...json(body), authorization: "bearer " }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 401,
          "title": "Authentication is required.",
          "type": "/problems/unauthorized",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 401,
        "wwwAuthenticate": "Bearer realm="mcp-servers-api", error="invalid_token"",
      }
    `);
  });

  test("when the id is not an MCP server id, then 400 naming the path parameter", async () => {
    const body = call();
    expect(outcome(await send({ path: "/api/mcp-servers/not-an-id/mcp", headers: { ...json(body), ...auth() }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "1 field is not valid.",
          "errors": [
            {
              "message": "must be an MCP server id (mcp_…)",
              "path": "/params/id",
            },
          ],
          "instance": "/api/mcp-servers/not-an-id/mcp",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when the id is well-formed but no such server is in the token's workspaces, then 404", async () => {
    const body = call();
    const res = outcome(await send({ path: "/api/mcp-servers/mcp_0000000000000000000000000/mcp", headers: { ...json(body), ...auth() }, body }));
    expect(res).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "MCP server mcp_0000000000000000000000000 was not found.",
          "instance": "/api/mcp-servers/mcp_0000000000000000000000000/mcp",
          "requestId": "<id>",
          "status": 404,
          "title": "Not found.",
          "type": "/problems/not-found",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 404,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when the query string has a parameter, then 400 unknown parameter", async () => {
    const body = call();
    expect(outcome(await send({ path: `${path}?debug=1`, headers: { ...json(body), ...auth() }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "1 field is not valid.",
          "errors": [
            {
              "message": "is not a known parameter",
              "path": "/query/debug",
            },
          ],
          "instance": "<path>",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when the body is not application/json, then 415", async () => {
    const body = call();
    expect(outcome(await send({ headers: { ...json(body), ...auth(), "content-type": "text/plain" }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send the body as application/json.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 415,
          "title": "The request body must be JSON.",
          "type": "/problems/unsupported-media-type",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 415,
        "wwwAuthenticate": null,
      }
    `);
    expect(outcome(await send({ headers: { ...json(body), ...auth(), "content-type": "application/json; charset=latin1" }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Send the body as UTF-8 application/json.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 415,
          "title": "The request body must be JSON.",
          "type": "/problems/unsupported-media-type",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 415,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when the body is over 1 MiB, then 413", async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(1024 * 1024) } });
    expect(outcome(await send({ headers: { ...json(body), ...auth() }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Request bodies are limited to 1 MiB.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 413,
          "title": "The request body is too large.",
          "type": "/problems/payload-too-large",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": false,
        "status": 413,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when the body is empty, or an object that is not JSON-RPC, then 400", async () => {
    expect(outcome(await send({ headers: { ...json(""), ...auth() }, body: "" }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "The body is not a JSON-RPC 2.0 message: the message needs "jsonrpc": "2.0".",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
    expect(outcome(await send({ headers: { ...json("{}"), ...auth() }, body: "{}" }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "The body is not a JSON-RPC 2.0 message: the message needs "jsonrpc": "2.0".",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 400,
          "title": "Your request is not valid.",
          "type": "/problems/validation-error",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when a batch holds two requests of one id, then the JSON-RPC error -32600 with HTTP 400", async () => {
    const body = JSON.stringify([
      { jsonrpc: "2.0", id: 1, method: "ping" },
      { jsonrpc: "2.0", id: 1, method: "ping" },
    ]);
    expect(outcome(await send({ headers: { ...json(body), ...auth() }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "error": {
            "code": -32600,
            "message": "Invalid Request: two requests of the batch have the id 1.",
          },
          "id": null,
          "jsonrpc": "2.0",
        },
        "contentType": "application/json; charset=utf-8",
        "rateLimited": true,
        "status": 400,
        "wwwAuthenticate": null,
      }
    `);
  });

  test("when a call comes from a foreign web origin, then 403", async () => {
    const body = call();
    expect(outcome(await send({ headers: { ...json(body), authorization: `Bearer ${adminToken}`, origin: "https://evil.example" }, body }))).toMatchInlineSnapshot(`
      {
        "body": {
          "detail": "Requests from the web origin https://evil.example may not use the MCP endpoints.",
          "instance": "<path>",
          "requestId": "<id>",
          "status": 403,
          "title": "You are not allowed to do this.",
          "type": "/problems/forbidden",
        },
        "contentType": "application/problem+json; charset=utf-8",
        "rateLimited": true,
        "status": 403,
        "wwwAuthenticate": null,
      }
    `);
  });
});

describe("POST /api/mcp-servers/{id}/mcp, well-formed", () => {
  const echoed = (res: { status: number; text: string }) => {
    expect(res.status, res.text).toBe(200);
    const text = res.text.startsWith("{") ? res.text : res.text.split("\n").find((l) => l.startsWith("data: "))!.slice(6);
    return (JSON.parse(text) as { result: { content: { text: string }[] } }).result.content[0].text;
  };

  test("when a tools/call is sent plainly, chunked, gzipped, with a byte-order mark or with charset=utf-8, then each is relayed and answered", async () => {
    const body = call();
    expect(echoed(await send({ headers: { ...json(body), ...auth() }, body }))).toBe("hi");
    const { "content-length": _, ...chunked } = json(body);
    expect(echoed(await send({ headers: { ...chunked, "transfer-encoding": "chunked", ...auth() }, body }))).toBe("hi");
    const gz = gzipSync(body);
    expect(echoed(await send({ headers: { ...json(gz), "content-encoding": "gzip", ...auth() }, body: gz }))).toBe("hi");
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]);
    expect(echoed(await send({ headers: { ...json(bom), ...auth() }, body: bom }))).toBe("hi");
    expect(echoed(await send({ headers: { ...json(body, { "content-type": "application/json; charset=UTF-8" }), ...auth() }, body }))).toBe("hi");
  });

  test("when a call is answered, then the rate-limit headers and request id are set and one request log line names the operation", async () => {
    const before = srv.logs.length;
    const body = call(7);
    const res = await send({ headers: { ...json(body), ...auth(), "x-request-id": "direct-route-log-check" }, body });
    expect(echoed(res)).toBe("hi");
    expect(res.headers["x-request-id"]).toBe("direct-route-log-check");
    expect(res.headers["ratelimit-policy"]).toMatch(/^"default";q=\d+;w=60$/);
    expect(res.headers["ratelimit"]).toMatch(/^"default";r=\d+;t=\d+$/);
    await new Promise((r) => setTimeout(r, 50));
    const lines = srv.logs
      .slice(before)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "request" && l.requestId === "direct-route-log-check");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: "POST", route: "/api/mcp-servers/{id}/mcp", operationId: "sendMcpServerMessage", status: 200 });
  });
});
