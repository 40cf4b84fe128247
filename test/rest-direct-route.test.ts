// GET /api/mcp-servers/{id} is answered ahead of Express's generic stack (issue 25). What the
// contract checks must not change with it: every request below gets the status, headers and body
// it got when every request went through express-openapi-validator (the snapshots were recorded
// on the commit before the direct route), both those the route answers and those it hands on.
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let ws: string;
let token: string;
let otherToken: string;
let gatewayToken: string;
let id: string;
let record: Record<string, unknown>;

beforeAll(async () => {
  srv = await startServer();
  ws = uniqueWorkspace("direct-get");
  token = await srv.token([ws], "usr_admin");
  otherToken = await srv.token([uniqueWorkspace("direct-get-other")], "usr_other");
  gatewayToken = (await srv.services.tokens.mint({ userId: "usr_agent", workspaces: [ws], scope: "gateway" })).token;
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "direct get", url: "https://mcp.example.com/mcp", headers: { "X-Team": "platform" } }) });
  expect(created.status, created.text).toBe(201);
  record = created.json;
  id = created.json.id;
});
afterAll(async () => {
  await srv?.stop();
});

type Sent = { method?: string; path?: string; headers?: Record<string, string>; body?: string };

/** One request exactly as given (no header added but Host), and what came back. */
function send({ method = "GET", path = `/api/mcp-servers/${id}`, headers = {}, body }: Sent): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const url = new URL(srv.baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const auth = (t = token) => ({ authorization: `Bearer ${t}` });

/** What a client sees, without what differs per run (ids, dates, request ids, rate-limit counters). */
function outcome(res: { status: number; headers: Record<string, unknown>; text: string }) {
  let body: unknown = res.text;
  try {
    body = JSON.parse(res.text.replaceAll(id, "<id>").replaceAll(ws, "<ws>"));
  } catch {
    body = res.text.replaceAll(id, "<id>");
  }
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if ("requestId" in b) b.requestId = "<request id>";
    for (const k of ["createdAt", "updatedAt"]) if (k in b) b[k] = "<date>";
  }
  return {
    status: res.status,
    // Header names and the values that do not change per request.
    headers: Object.keys(res.headers)
      .filter((h) => h !== "date")
      .sort()
      .map((h) => (["content-type", "etag", "www-authenticate", "content-length", "connection", "keep-alive"].includes(h) ? `${h}: ${res.headers[h]}` : h)),
    body,
  };
}

describe("GET /api/mcp-servers/{id}, well-formed", () => {
  test("when the record is in the token's workspaces, then 200 with the record, its ETag, the rate-limit headers and the request id", async () => {
    const res = await send({ headers: { ...auth(), accept: "application/json" } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual(record);
    expect(outcome(res)).toMatchSnapshot();
  });

  test("when a request is answered, then one request log line names the operation and its route", async () => {
    const before = srv.logs.length;
    const res = await send({ headers: { ...auth(), "x-request-id": "direct-get-log-check" } });
    expect(res.status).toBe(200);
    expect(res.headers["x-request-id"]).toBe("direct-get-log-check");
    await new Promise((r) => setTimeout(r, 50));
    const lines = srv.logs
      .slice(before)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "request" && l.requestId === "direct-get-log-check");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: "GET", route: "/api/mcp-servers/{id}", operationId: "getMcpServer", status: 200 });
    expect(typeof lines[0].traceId).toBe("string");
  });
});

describe("GET /api/mcp-servers/{id}, malformed or refused", () => {
  const cases: [string, () => Sent][] = [
    ["no Authorization header", () => ({})],
    ["another scheme", () => ({ headers: { authorization: "Basic dXNlcjpwYXNz" } })],
    ["an unknown bearer token", () => ({ headers: { authorization: "Bearer mcpk_unknown" } })],
    ["a lowercase scheme", () => ({ headers: { authorization: `bearer ${token}` } })],
    ["a gateway-scope token", () => ({ headers: auth(gatewayToken) })],
    ["a token of another workspace", () => ({ headers: auth(otherToken) })],
    ["a well-formed id of no record", () => ({ path: "/api/mcp-servers/mcp_00000000000000000000000000", headers: auth() })],
    ["an id that is not an MCP server id", () => ({ path: "/api/mcp-servers/tok_123", headers: auth() })],
    ["an id too long", () => ({ path: `/api/mcp-servers/mcp_${"A".repeat(61)}`, headers: auth() })],
    ["an id with a hyphen", () => ({ path: "/api/mcp-servers/mcp_a-b", headers: auth() })],
    ["an id with an escaped underscore", () => ({ path: `/api/mcp-servers/${id.replace("_", "%5F")}`, headers: auth() })],
    ["a query parameter", () => ({ path: `/api/mcp-servers/${id}?x=1`, headers: auth() })],
    ["an empty query string", () => ({ path: `/api/mcp-servers/${id}?`, headers: auth() })],
    ["a trailing slash", () => ({ path: `/api/mcp-servers/${id}/`, headers: auth() })],
    ["a JSON body", () => ({ headers: { ...auth(), "content-type": "application/json", "content-length": "2" }, body: "{}" })],
    ["a HEAD request", () => ({ method: "HEAD", headers: auth() })],
  ];
  for (const [name, request] of cases) {
    test(`when the request has ${name}, then it is answered as the validator answered it`, async () => {
      expect(outcome(await send(request()))).toMatchSnapshot();
    });
  }
});

describe("GET /api/mcp-servers/{id}, response validation", () => {
  test("when the stored record no longer fits the McpServer schema, then 500 and not the record", async () => {
    const bad = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "broken", url: "https://mcp.example.com/mcp" }) });
    expect(bad.status, bad.text).toBe(201);
    await srv.services.db.knex("mcp_servers").where({ id: bad.json.id }).update({ connector_status: "bogus" });
    const res = await send({ path: `/api/mcp-servers/${bad.json.id}`, headers: auth() });
    expect(res.status).toBe(500);
    expect(res.text).not.toContain("bogus");
    expect(outcome({ ...res, text: res.text.replaceAll(bad.json.id, "<id>") })).toMatchSnapshot();
  });
});
