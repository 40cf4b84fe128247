// POST /api/workspaces/{workspaceId}/mcp is answered ahead of Express's generic stack, by the
// per-server endpoint's direct route (server/http/mcp-gateway-direct.ts). What the contract
// checks must not change with it: every malformed or refused request below gets the status,
// headers and body it got when every request went through express-openapi-validator (the
// snapshot was recorded on the commit before), and well-formed calls are still answered.
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { exactRequest, raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let peer: GatewayPeer;
let ws: string;
let token: string;
let path: string;

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  peer = await startV2Peer();
  ws = uniqueWorkspace("wsdirect");
  const admin = await srv.token([ws], "usr_admin");
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: ws, name: "upstream", url: peer.url }) });
  expect(created.status, created.text).toBe(201);
  token = (await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
  path = `/api/workspaces/${ws}/mcp`;
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

type Sent = { path?: string; headers?: Record<string, string>; body?: string | Buffer };

/** One request exactly as given (no header added but Host), and what came back. */
const send = ({ path: p = path, headers = {}, body }: Sent) => exactRequest(srv.baseUrl, { method: "POST", path: p, headers, body });

const json = (body: string | Buffer, extra: Record<string, string> = {}) => ({
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
  "content-length": String(Buffer.byteLength(body)),
  ...extra,
});
const auth = () => ({ authorization: `Bearer ${token}` });
const call = (id = 1) => JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "upstream__echo", arguments: { text: "hi" } } });

/** What a client sees, without what differs per request (request ids, the workspace, rate-limit counters). */
function outcome(res: { status: number; headers: Record<string, unknown>; text: string }) {
  let body: unknown = res.text;
  try {
    body = JSON.parse(res.text.replaceAll(ws, "<ws>"));
  } catch {
    /* not JSON */
  }
  if (body && typeof body === "object" && "requestId" in body) (body as Record<string, unknown>).requestId = "<id>";
  return { status: res.status, contentType: res.headers["content-type"] ?? null, wwwAuthenticate: res.headers["www-authenticate"] ?? null, rateLimited: res.headers["ratelimit"] !== undefined, body };
}

const echoed = (res: { text: string }) => {
  const text = res.text.startsWith("{") ? res.text : res.text.split("\n").find((l) => l.startsWith("data: "))!.slice(6);
  return (JSON.parse(text) as { result: { content: { text: string }[] } }).result.content[0].text;
};

describe("POST /api/workspaces/{workspaceId}/mcp, malformed or refused", () => {
  test("when requests are malformed or refused, then each gets the answer the generic stack gave", async () => {
    const bad = '{"jsonrpc":';
    const scalar = '"tools/call"';
    const items = '[1, {"jsonrpc":"2.0","id":1,"method":"ping"}]';
    const dup = JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "ping" }, { jsonrpc: "2.0", id: 1, method: "ping" }]);
    const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(1_100_000) } });
    const ping = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" });
    const cases: [string, Sent][] = [
      ["not JSON, with a token", { headers: { ...json(bad), ...auth() }, body: bad }],
      ["not JSON, without a token", { headers: json(bad), body: bad }],
      ["JSON but a string", { headers: { ...json(scalar), ...auth() }, body: scalar }],
      ["a batch with a number", { headers: { ...json(items), ...auth() }, body: items }],
      ["no token", { headers: json(ping), body: ping }],
      ["another scheme", { headers: { ...json(ping), authorization: "Basic dXNlcjpwYXNz" }, body: ping }],
      ["an unknown token", { headers: { ...json(ping), authorization: "Bearer mcpk_not_a_token" }, body: ping }],
      ["a malformed workspace id", { path: "/api/workspaces/not%20an%20id/mcp", headers: { ...json(ping), ...auth() }, body: ping }],
      ["another workspace", { path: "/api/workspaces/ws_not_mine/mcp", headers: { ...json(ping), ...auth() }, body: ping }],
      ["a query parameter", { path: `${path}?x=1`, headers: { ...json(ping), ...auth() }, body: ping }],
      ["text/plain", { headers: { ...json(ping, { "content-type": "text/plain" }), ...auth() }, body: ping }],
      ["over 1 MiB", { headers: { ...json(big), ...auth() }, body: big }],
      ["empty", { headers: { ...json(""), ...auth() }, body: "" }],
      ["not JSON-RPC", { headers: { ...json('{"no":"rpc"}'), ...auth() }, body: '{"no":"rpc"}' }],
      ["two requests of one id", { headers: { ...json(dup), ...auth() }, body: dup }],
      ["a foreign origin", { headers: { ...json(ping), ...auth(), origin: "https://evil.example" }, body: ping }],
      ["no Accept for both", { headers: { ...json(ping, { accept: "application/json" }), ...auth() }, body: ping }],
    ];
    const seen: Record<string, unknown> = {};
    for (const [name, sent] of cases) seen[name] = outcome(await send(sent));
    expect(seen).toMatchInlineSnapshot(`
      {
        "JSON but a string": {
          "body": {
            "detail": "The request body is not valid JSON.",
            "errors": [
              {
                "message": "is not valid JSON",
                "path": "/",
              },
            ],
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "a batch with a number": {
          "body": {
            "detail": "1 field is not valid.",
            "errors": [
              {
                "message": "must be an object",
                "path": "/0",
              },
            ],
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "a foreign origin": {
          "body": {
            "detail": "Requests from the web origin https://evil.example may not use the MCP endpoints.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 403,
            "title": "You are not allowed to do this.",
            "type": "/problems/forbidden",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 403,
          "wwwAuthenticate": null,
        },
        "a malformed workspace id": {
          "body": {
            "detail": "1 field is not valid.",
            "errors": [
              {
                "message": "must start with a letter or digit and hold only letters, digits, '_', '.', ':' and '-'",
                "path": "/params/workspaceId",
              },
            ],
            "instance": "/api/workspaces/not%20an%20id/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "a query parameter": {
          "body": {
            "detail": "1 field is not valid.",
            "errors": [
              {
                "message": "is not a known parameter",
                "path": "/query/x",
              },
            ],
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "an unknown token": {
          "body": {
            "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 401,
            "title": "Authentication is required.",
            "type": "/problems/unauthorized",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 401,
          "wwwAuthenticate": "Bearer realm="mcp-servers-api", error="invalid_token"",
        },
        "another scheme": {
          "body": {
            "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 401,
            "title": "Authentication is required.",
            "type": "/problems/unauthorized",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 401,
          "wwwAuthenticate": "Bearer realm="mcp-servers-api", error="invalid_token"",
        },
        "another workspace": {
          "body": {
            "detail": "The token does not cover workspace ws_not_mine.",
            "instance": "/api/workspaces/ws_not_mine/mcp",
            "requestId": "<id>",
            "status": 403,
            "title": "You are not allowed to do this.",
            "type": "/problems/forbidden",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 403,
          "wwwAuthenticate": null,
        },
        "empty": {
          "body": {
            "detail": "The body is not a JSON-RPC 2.0 message: the message needs "jsonrpc": "2.0".",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "no Accept for both": {
          "body": {
            "detail": "Send Accept: application/json, text/event-stream (Streamable HTTP).",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 406,
            "title": "The requested media type is not available.",
            "type": "/problems/not-acceptable",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 406,
          "wwwAuthenticate": null,
        },
        "no token": {
          "body": {
            "detail": "Send a valid token as 'Authorization: Bearer <token>'.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 401,
            "title": "Authentication is required.",
            "type": "/problems/unauthorized",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 401,
          "wwwAuthenticate": "Bearer realm="mcp-servers-api"",
        },
        "not JSON, with a token": {
          "body": {
            "detail": "The request body is not valid JSON.",
            "errors": [
              {
                "message": "is not valid JSON",
                "path": "/",
              },
            ],
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "not JSON, without a token": {
          "body": {
            "detail": "The request body is not valid JSON.",
            "errors": [
              {
                "message": "is not valid JSON",
                "path": "/",
              },
            ],
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "not JSON-RPC": {
          "body": {
            "detail": "The body is not a JSON-RPC 2.0 message: the message needs "jsonrpc": "2.0".",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 400,
          "wwwAuthenticate": null,
        },
        "over 1 MiB": {
          "body": {
            "detail": "Request bodies are limited to 1 MiB.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 413,
            "title": "The request body is too large.",
            "type": "/problems/payload-too-large",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": false,
          "status": 413,
          "wwwAuthenticate": null,
        },
        "text/plain": {
          "body": {
            "detail": "Send the body as application/json.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 415,
            "title": "The request body must be JSON.",
            "type": "/problems/unsupported-media-type",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 415,
          "wwwAuthenticate": null,
        },
        "two requests of one id": {
          "body": {
            "detail": "The body is not a JSON-RPC 2.0 message: two requests of the batch have the id 1.",
            "instance": "/api/workspaces/<ws>/mcp",
            "requestId": "<id>",
            "status": 400,
            "title": "Your request is not valid.",
            "type": "/problems/validation-error",
          },
          "contentType": "application/problem+json; charset=utf-8",
          "rateLimited": true,
          "status": 400,
          "wwwAuthenticate": null,
        },
      }
    `);
  }, 30_000);

  test("when a tools/call is sent plainly, chunked, gzipped, with a byte-order mark or with charset=utf-8, then each is answered", async () => {
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
    const res = await send({ headers: { ...json(body), ...auth(), "x-request-id": "ws-direct-route-log-check" }, body });
    expect(echoed(res)).toBe("hi");
    expect(res.headers["x-request-id"]).toBe("ws-direct-route-log-check");
    expect(res.headers["ratelimit"]).toMatch(/^"default";r=\d+;t=\d+$/);
    await new Promise((r) => setTimeout(r, 50));
    const lines = srv.logs
      .slice(before)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "request" && l.requestId === "ws-direct-route-log-check");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: "POST", route: "/api/workspaces/{workspaceId}/mcp", operationId: "sendWorkspaceMessage", status: 200 });
  });
});
