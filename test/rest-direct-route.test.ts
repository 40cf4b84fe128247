// GET, the list, create and PATCH of /api/mcp-servers are answered ahead of Express's generic stack (issue 25). What the
// contract checks must not change with it: every request below gets the status, headers and body
// it got when every request went through express-openapi-validator (the snapshots were recorded
// on the commit before the direct route), both those the route answers and those it hands on.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exactRequest, raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

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
const send = ({ method = "GET", path = `/api/mcp-servers/${id}`, headers = {}, body }: Sent) => exactRequest(srv.baseUrl, { method, path, headers, body });

const auth = (t = token) => ({ authorization: `Bearer ${t}` });

/** What a client sees, without what differs per run (ids, dates, request ids, rate-limit counters). */
function outcome(res: { status: number; headers: Record<string, unknown>; text: string }) {
  const text = res.text.replaceAll(id, "<id>").replaceAll(ws, "<ws>").replace(/mcp_[0-9A-Z]{26}/g, "<other id>");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
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

  test("when If-None-Match or If-Modified-Since is sent, then Express's freshness check answers as on the generic stack", async () => {
    const first = await send({ headers: auth() });
    const etag = String(first.headers.etag);
    // The record's own ETag: 304, no body, no Content-Type or Content-Length (res.send strips them).
    const fresh = await send({ headers: { ...auth(), "if-none-match": etag } });
    expect(fresh.status).toBe(304);
    expect(fresh.text).toBe("");
    expect(fresh.headers.etag).toBe(etag);
    expect(fresh.headers["content-type"]).toBeUndefined();
    expect(fresh.headers["content-length"]).toBeUndefined();
    expect((await send({ headers: { ...auth(), "if-none-match": `W/${etag}, "other"` } })).status).toBe(304);
    // Another ETag, or a date with no Last-Modified to compare: the record, as without the header.
    for (const headers of [{ "if-none-match": '"v999"' }, { "if-modified-since": new Date().toUTCString() }] as Record<string, string>[]) {
      const res = await send({ headers: { ...auth(), ...headers } });
      expect(res.status).toBe(200);
      expect(res.text).toBe(first.text);
      expect(res.headers["content-length"]).toBe(first.headers["content-length"]);
    }
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

const jsonHeaders = (body: string, extra: Record<string, string> = {}) => ({ ...auth(), "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...extra });
const created = (name: string, extra: Record<string, unknown> = {}) => JSON.stringify({ workspaceId: ws, name, url: "https://mcp.example.com/mcp", ...extra });

describe("POST /api/mcp-servers, through the direct route or handed on", () => {
  const cases: [string, () => Sent][] = [
    ["a valid record", () => ({ body: created("create ok"), headers: jsonHeaders(created("create ok")) })],
    ["a taken name", () => ({ body: created("create ok"), headers: jsonHeaders(created("create ok")) })],
    ["a byte-order mark and charset=utf-8", () => ({ body: "\ufeff" + created("create bom"), headers: jsonHeaders("\ufeff" + created("create bom"), { "content-type": "application/json; charset=utf-8" }) })],
    ["an invalid Idempotency-Key", () => ({ body: created("create key"), headers: jsonHeaders(created("create key"), { "idempotency-key": "has space" }) })],
    ["no name and an unknown field", () => ({ body: JSON.stringify({ workspaceId: ws, url: "https://mcp.example.com/mcp", color: "red" }), headers: jsonHeaders(JSON.stringify({ workspaceId: ws, url: "https://mcp.example.com/mcp", color: "red" })) })],
    ["a URL that is not http(s)", () => ({ body: created("create url", { url: "ftp://x" }), headers: jsonHeaders(created("create url", { url: "ftp://x" })) })],
    ["a body that is not JSON", () => ({ body: "nope", headers: jsonHeaders("nope") })],
    ["a body that is not JSON and no token", () => ({ body: "{nope", headers: { "content-type": "application/json", "content-length": "5" } })],
    ["a JSON string", () => ({ body: '"x"', headers: jsonHeaders('"x"') })],
    ["a JSON array", () => ({ body: "[]", headers: jsonHeaders("[]") })],
    ["no token", () => ({ body: created("create anon"), headers: { "content-type": "application/json", "content-length": String(created("create anon").length) } })],
    ["a gateway-scope token", () => ({ body: created("create gw"), headers: jsonHeaders(created("create gw"), auth(gatewayToken)) })],
    ["a workspace the token does not cover", () => ({ body: created("create other"), headers: jsonHeaders(created("create other"), auth(otherToken)) })],
    ["a text/plain body", () => ({ body: created("create text"), headers: jsonHeaders(created("create text"), { "content-type": "text/plain" }) })],
    ["a query parameter", () => ({ path: "/api/mcp-servers?x=1", body: created("create query"), headers: jsonHeaders(created("create query")) })],
  ];
  for (const [name, request] of cases) {
    test(`when the request has ${name}, then it is answered as the validator answered it`, async () => {
      expect(outcome(await send({ method: "POST", path: "/api/mcp-servers", ...request() }))).toMatchSnapshot();
    });
  }

  test("when a create is retried with its Idempotency-Key, then the first answer is replayed", async () => {
    const body = created("create replayed");
    const first = await send({ method: "POST", path: "/api/mcp-servers", body, headers: jsonHeaders(body, { "idempotency-key": "direct-route-key-1" }) });
    const again = await send({ method: "POST", path: "/api/mcp-servers", body, headers: jsonHeaders(body, { "idempotency-key": "direct-route-key-1" }) });
    expect(first.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(outcome(again)).toMatchSnapshot();
  });
});

describe("PATCH /api/mcp-servers/{id}, through the direct route or handed on", () => {
  let target: string;
  beforeAll(async () => {
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: created("patch target") });
    expect(res.status, res.text).toBe(201);
    target = res.json.id;
  });
  const at = () => `/api/mcp-servers/${target}`;
  const patch = (body: string, extra: Record<string, string> = {}, path = at()): Sent => ({ method: "PATCH", path, body, headers: jsonHeaders(body, extra) });
  const cases: [string, () => Sent][] = [
    ["a new name", () => patch(JSON.stringify({ name: "patch target renamed" }))],
    ["nothing to change", () => patch("{}")],
    ["an If-Match of an older version", () => patch(JSON.stringify({ name: "patch stale" }), { "if-match": '"v1"' })],
    ["an If-Match of the current version", () => patch(JSON.stringify({ name: "patch current" }), { "if-match": '"v2"' })],
    ["an If-Match that is not an ETag", () => patch(JSON.stringify({ name: "patch garbage" }), { "if-match": "garbage" })],
    ["an invalid URL", () => patch(JSON.stringify({ url: "nope" }))],
    ["an unknown field", () => patch(JSON.stringify({ color: "red" }))],
    ["a body that is not JSON", () => patch("nope")],
    ["an empty body", () => ({ method: "PATCH", path: at(), headers: { ...auth(), "content-type": "application/json", "content-length": "0" } })],
    ["no token", () => ({ method: "PATCH", path: at(), body: "{}", headers: { "content-type": "application/json", "content-length": "2" } })],
    ["a well-formed id of no record", () => patch(JSON.stringify({ name: "x" }), {}, "/api/mcp-servers/mcp_00000000000000000000000000")],
    ["an id that is not an MCP server id", () => patch(JSON.stringify({ name: "x" }), {}, "/api/mcp-servers/nope")],
  ];
  for (const [name, request] of cases) {
    test(`when the request has ${name}, then it is answered as the validator answered it`, async () => {
      const res = await send(request());
      expect(outcome({ ...res, text: res.text.replaceAll(target, "<target>") })).toMatchSnapshot();
    });
  }
});

describe("GET /api/mcp-servers (the list), through the direct route or handed on", () => {
  let wsList: string;
  let wsOther: string;
  let wsBroken: string;
  let listToken: string;
  const names = ["list one", "list two", "list three"];
  beforeAll(async () => {
    wsList = uniqueWorkspace("direct-list");
    wsOther = uniqueWorkspace("direct-list-other");
    wsBroken = uniqueWorkspace("direct-list-broken");
    listToken = await srv.token([wsList, wsOther, wsBroken], "usr_lister");
    for (const name of names) {
      const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: listToken, body: JSON.stringify({ workspaceId: wsList, name, url: "https://mcp.example.com/mcp" }) });
      expect(res.status, res.text).toBe(201);
    }
    for (const name of ["other one", "other two"]) {
      const other = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: listToken, body: JSON.stringify({ workspaceId: wsOther, name, url: "https://mcp.example.com/mcp" }) });
      expect(other.status, other.text).toBe(201);
    }
    const broken = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: listToken, body: JSON.stringify({ workspaceId: wsBroken, name: "broken one", url: "https://mcp.example.com/mcp" }) });
    expect(broken.status, broken.text).toBe(201);
    await srv.services.db.knex("mcp_servers").where({ id: broken.json.id }).update({ connector_status: "bogus" });
  });
  const list = (query: string, headers: Record<string, string> = auth(listToken)): Sent => ({ path: `/api/mcp-servers${query}`, headers });
  /** outcome(), with the per-run workspace names, records' dates and the signed cursor's value left out. */
  const listOutcome = (res: { status: number; headers: Record<string, unknown>; text: string }) => {
    const text = res.text.replaceAll(wsList, "<wsList>").replaceAll(wsOther, "<wsOther>").replaceAll(wsBroken, "<wsBroken>");
    const o = outcome({ ...res, text });
    const body = o.body as { data?: Record<string, unknown>[]; nextCursor?: unknown } | string;
    if (body && typeof body === "object" && Array.isArray(body.data)) {
      for (const r of body.data) for (const k of ["createdAt", "updatedAt"]) if (k in r) r[k] = "<date>";
      if (typeof body.nextCursor === "string") body.nextCursor = "<cursor>";
    }
    return o;
  };
  const cursorOf = async (query: string) => JSON.parse((await send(list(query))).text).nextCursor as string;

  const cases: [string, () => Sent | Promise<Sent>][] = [
    ["the workspace only", () => list(`?workspaceId=${wsList}`)],
    ["a limit smaller than the list", () => list(`?workspaceId=${wsList}&limit=2`)],
    ["the next page's cursor", async () => list(`?workspaceId=${wsList}&limit=2&cursor=${await cursorOf(`?workspaceId=${wsList}&limit=2`)}`)],
    ["the cursor percent-encoded", async () => list(`?workspaceId=${wsList}&limit=2&cursor=${encodeURIComponent(await cursorOf(`?workspaceId=${wsList}&limit=2`)).replace(".", "%2E")}`)],
    ["another workspace's cursor", async () => list(`?workspaceId=${wsList}&limit=2&cursor=${await cursorOf(`?workspaceId=${wsOther}&limit=1`)}`)],
    ["a cursor this server did not issue", () => list(`?workspaceId=${wsList}&cursor=eyJzIjoieCIsImEiOiJ5In0.AAAAAAAAAAAAAAAAAAAAAA`)],
    ["an empty cursor", () => list(`?workspaceId=${wsList}&cursor=`)],
    ["a cursor with reserved characters", () => list(`?workspaceId=${wsList}&cursor=a:b/c`)],
    ["limit 0", () => list(`?workspaceId=${wsList}&limit=0`)],
    ["limit 101", () => list(`?workspaceId=${wsList}&limit=101`)],
    ["limit 1.5", () => list(`?workspaceId=${wsList}&limit=1.5`)],
    ["a limit that is not a number", () => list(`?workspaceId=${wsList}&limit=abc`)],
    ["the limit twice", () => list(`?workspaceId=${wsList}&limit=1&limit=2`)],
    ["the workspace twice", () => list(`?workspaceId=${wsList}&workspaceId=${wsOther}`)],
    ["the workspace in bracket notation", () => list(`?workspaceId[]=${wsList}`)],
    ["a percent-encoded workspace", () => list(`?workspaceId=${encodeURIComponent(wsList).replace("_", "%5F")}`)],
    ["an unknown query parameter", () => list(`?workspaceId=${wsList}&color=red`)],
    ["no workspace", () => list("")],
    ["an empty query string", () => list("?")],
    ["a workspace not in the token", () => list(`?workspaceId=${ws}`)],
    ["a workspace id that is not one", () => list("?workspaceId=not%20a%20workspace")],
    ["a record that no longer fits the McpServer schema", () => list(`?workspaceId=${wsBroken}`)],
    ["no Authorization header", () => list(`?workspaceId=${wsList}`, {})],
    ["an unknown bearer token", () => list(`?workspaceId=${wsList}`, { authorization: "Bearer mcpk_unknown" })],
    ["a lowercase scheme", () => list(`?workspaceId=${wsList}`, { authorization: `bearer ${listToken}` })],
    ["a gateway-scope token", () => list(`?workspaceId=${ws}`, auth(gatewayToken))],
    ["a trailing slash", () => list(`/?workspaceId=${wsList}`)],
    ["a JSON body", () => ({ ...list(`?workspaceId=${wsList}`), headers: { ...auth(listToken), "content-type": "application/json", "content-length": "2" }, body: "{}" })],
    ["a HEAD request", () => ({ ...list(`?workspaceId=${wsList}`), method: "HEAD" })],
  ];
  for (const [name, request] of cases) {
    test(`when the request has ${name}, then it is answered as the validator answered it`, async () => {
      expect(listOutcome(await send(await request()))).toMatchSnapshot();
    });
  }

  test("when records hold sealed credentials, then each listed record is the one GET answers", async () => {
    const wsSealed = uniqueWorkspace("direct-list-sealed");
    const sealedToken = await srv.token([wsSealed], "usr_sealed");
    const bodies = [
      { workspaceId: wsSealed, name: "plain", url: "https://mcp.example.com/mcp" },
      { workspaceId: wsSealed, name: "with key", url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: "sk_live_listed" },
      { workspaceId: wsSealed, name: "with secret", url: "https://mcp.example.com/mcp", authType: "oauth", oauthClientId: "c", oauthClientSecret: "s3cret", oauthTokenEndpoint: "https://auth.example.com/token", oauthAuthorizationEndpoint: "https://auth.example.com/authorize" },
    ];
    const gets: unknown[] = [];
    for (const body of bodies) {
      const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: sealedToken, body: JSON.stringify(body) });
      expect(res.status, res.text).toBe(201);
      gets.unshift((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${res.json.id}`, { token: sealedToken })).json);
    }
    const res = await send(list(`?workspaceId=${wsSealed}`, auth(sealedToken)));
    expect(res.status, res.text).toBe(200);
    const page = JSON.parse(res.text) as { data: Record<string, unknown>[] };
    expect(page.data).toEqual(gets);
    expect(page.data.map((r) => [r.hasApiKey, r.hasOauthClientSecret])).toEqual([[false, true], [true, false], [false, false]]);
    expect(res.text).not.toContain("sk_live_listed");
  });

  test("when the list is walked page by page, then every record is seen once, newest first", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await send(list(`?workspaceId=${wsList}&limit=1${cursor ? `&cursor=${cursor}` : ""}`));
      expect(res.status, res.text).toBe(200);
      const page = JSON.parse(res.text) as { data: { name: string }[]; nextCursor: string | null };
      seen.push(...page.data.map((r) => r.name));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...names].reverse());
  });
});
