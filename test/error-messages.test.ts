// Error messages a person can read (issue 13): every 400 names each offending field once, in
// plain words; every 401 is worded the same whatever the cause.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv?.stop();
});

const ID = "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE";
type Case = [label: string, method: string, path: (ws: string) => string, body: ((ws: string) => unknown) | null, errors: { path: string; message: string }[], headers?: Record<string, string>];
const valid = (ws: string) => ({ workspaceId: ws, name: "GitHub", url: "https://mcp.example.com/mcp" });

const CASES: Case[] = [
  ["a URL without a scheme", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), url: "mcp.example.com/mcp" }), [{ path: "/url", message: "must start with http:// or https://" }]],
  ["an ftp URL", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), url: "ftp://example.com/mcp" }), [{ path: "/url", message: "must start with http:// or https://" }]],
  ["a relative URL", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), url: "/mcp" }), [{ path: "/url", message: "must start with http:// or https://" }]],
  ["an http URL with a space in the host", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), url: "https://exa mple.com/" }), [{ path: "/url", message: "must be a valid URL" }]],
  ["an empty name", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), name: "" }), [{ path: "/name", message: "must not be empty" }]],
  ["a blank name", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), name: "   " }), [{ path: "/name", message: "must not be blank or contain control characters" }]],
  ["a name over 100 characters", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), name: "x".repeat(101) }), [{ path: "/name", message: "must be at most 100 characters long" }]],
  ["a numeric name", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), name: 5 }), [{ path: "/name", message: "must be a string" }]],
  ["a missing name", "POST", () => "/api/mcp-servers", (ws) => ({ workspaceId: ws, url: "https://mcp.example.com/mcp" }), [{ path: "/name", message: "is required" }]],
  ["an unknown field", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), apikey: "k" }), [{ path: "/apikey", message: "is not a known field" }]],
  ["a header value with a line break", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), headers: { "X-A": "a\r\nX-Injected: 1" } }), [{ path: "/headers/X-A", message: "must not contain line breaks" }]],
  ["an invalid header name", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), headers: { "Bad Name": "x" } }), [{ path: "/headers", message: "must have valid HTTP header names, such as X-Team (no spaces, colons or quotes)" }]],
  ["an empty workspaceId", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), workspaceId: "" }), [{ path: "/workspaceId", message: "must not be empty" }]],
  ["a workspaceId with a space", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), workspaceId: "ws acme" }), [{ path: "/workspaceId", message: "must start with a letter or digit and hold only letters, digits, '_', '.', ':' and '-'" }]],
  ["an unknown authType", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), authType: "basic" }), [{ path: "/authType", message: "must be one of: none, api_key, oauth" }]],
  ["an empty apiKey", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), authType: "api_key", apiKey: "" }), [{ path: "/apiKey", message: "must not be empty" }]],
  ["a numeric apiKey (nullable field)", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), authType: "api_key", apiKey: 5 }), [{ path: "/apiKey", message: "must be a string" }]],
  ["a token endpoint without a scheme", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), authType: "oauth", oauthClientId: "c", oauthTokenEndpoint: "auth.example.com/token" }), [{ path: "/oauthTokenEndpoint", message: "must start with http:// or https://" }]],
  ["a connectorConfig that is a list", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), connectorConfig: [1] }), [{ path: "/connectorConfig", message: "must be an object" }]],
  ["an Idempotency-Key with a space", "POST", () => "/api/mcp-servers", valid, [{ path: "/headers/idempotency-key", message: "must be printable ASCII characters without spaces" }], { "idempotency-key": "a b" }],
  [
    "a bad URL, an empty name and a line break at once",
    "POST",
    () => "/api/mcp-servers",
    (ws) => ({ ...valid(ws), url: "example.com", name: "", headers: { "X-A": "a\nb" } }),
    [
      { path: "/name", message: "must not be empty" },
      { path: "/url", message: "must start with http:// or https://" },
      { path: "/headers/X-A", message: "must not contain line breaks" },
    ],
  ],
  ["a duplicated header (domain rule)", "POST", () => "/api/mcp-servers", (ws) => ({ ...valid(ws), headers: { "x-a": "1", "X-A": "2" } }), [{ path: "/headers/X-A", message: "is given twice (header names are case-insensitive)" }]],
  ["an id without the mcp_ prefix", "GET", () => "/api/mcp-servers/01JDQ4N8ZK3V7W0XG5T2H9RBCE", null, [{ path: "/params/id", message: "must be an MCP server id (mcp_…)" }]],
  ["an id without the mcp_ prefix (DELETE)", "DELETE", () => "/api/mcp-servers/srv_1", null, [{ path: "/params/id", message: "must be an MCP server id (mcp_…)" }]],
  ["a patch with a line break in a header", "PATCH", () => `/api/mcp-servers/${ID}`, () => ({ headers: { "X-A": "a\nb" } }), [{ path: "/headers/X-A", message: "must not contain line breaks" }]],
  ["a patch clearing the url", "PATCH", () => `/api/mcp-servers/${ID}`, () => ({ url: null }), [{ path: "/url", message: "must be a string" }]],
  ["a limit of 0", "GET", (ws) => `/api/mcp-servers?workspaceId=${ws}&limit=0`, null, [{ path: "/query/limit", message: "must be at least 1" }]],
  ["a limit of 101", "GET", (ws) => `/api/mcp-servers?workspaceId=${ws}&limit=101`, null, [{ path: "/query/limit", message: "must be at most 100" }]],
  ["a limit that is not a number", "GET", (ws) => `/api/mcp-servers?workspaceId=${ws}&limit=ten`, null, [{ path: "/query/limit", message: "must be a whole number" }]],
  ["an empty cursor", "GET", (ws) => `/api/mcp-servers?workspaceId=${ws}&cursor=`, null, [{ path: "/query/cursor", message: "must not be empty" }]],
  ["no workspaceId", "GET", () => "/api/mcp-servers", null, [{ path: "/query/workspaceId", message: "is required" }]],
  ["an unknown query parameter", "GET", (ws) => `/api/mcp-servers?workspaceId=${ws}&sort=name`, null, [{ path: "/query/sort", message: "is not a known parameter" }]],
];

describe("400 problems", () => {
  test.each(CASES)("when the request has %s, then each offending field is named once in plain words", async (_label, method, path, body, errors, headers) => {
    const ws = uniqueWorkspace();
    const token = await srv.token([ws]);
    const res = await raw(srv.baseUrl, method, path(ws), { token, body: body ? JSON.stringify(body(ws)) : undefined, headers });
    expect(res.status).toBe(400);
    expect(res.json.type).toBe("/problems/validation-error");
    expect(res.json.errors).toEqual(errors);
    expect(res.json.detail).toBe(errors.length === 1 ? "1 field is not valid." : `${errors.length} fields are not valid.`);
    // No regular expression and no schema jargon reaches the person reading it.
    for (const e of res.json.errors) expect(e.message).not.toMatch(/pattern|\^|\$|oneOf|schema|NOT have|format "/);
    if (method !== "GET") {
      const list = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token });
      expect(list.json.data).toHaveLength(0);
    }
  });
});

describe("the spec's messages", () => {
  test("when a schema has a pattern, then it carries the x-pattern-message a 400 shows", () => {
    const spec = parse(readFileSync(new URL("../openapi.yaml", import.meta.url), "utf8"));
    const missing: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${at}/${i}`));
      else if (node && typeof node === "object") {
        const o = node as Record<string, unknown>;
        if (typeof o.pattern === "string" && typeof o["x-pattern-message"] !== "string") missing.push(at);
        for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
      }
    };
    walk(spec, "#");
    expect(missing).toEqual([]);
  });

  test("when a pattern appears in several schemas, then it carries the same message in each (the validator reports only the pattern)", () => {
    const spec = parse(readFileSync(new URL("../openapi.yaml", import.meta.url), "utf8"));
    const messages = new Map<string, Set<string>>();
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        const o = node as Record<string, unknown>;
        if (typeof o.pattern === "string") messages.set(o.pattern, (messages.get(o.pattern) ?? new Set()).add(String(o["x-pattern-message"])));
        Object.values(o).forEach(walk);
      }
    };
    walk(spec);
    expect([...messages].filter(([, m]) => m.size > 1).map(([p, m]) => [p, [...m]])).toEqual([]);
  });
});

describe("401 problems", () => {
  test("when the token is missing, of another scheme, malformed, unknown or revoked, then every 401 is worded the same and carries WWW-Authenticate", async () => {
    const ws = uniqueWorkspace();
    const revoked = await srv.services.tokens.mint({ userId: "usr_gone", workspaces: [ws] });
    await srv.services.tokens.revoke(revoked.record.id);
    const variants: [string, Record<string, string>][] = [
      ["missing", {}],
      ["another scheme", { authorization: "Basic dXNlcjpwdw==" }],
      ["no token after Bearer", { authorization: "Bearer" }],
      ["malformed", { authorization: "Bearer not-a-token" }],
      ["unknown", { authorization: `Bearer mcpk_${"A".repeat(43)}` }],
      ["revoked", { authorization: `Bearer ${revoked.token}` }],
    ];
    const bodies = new Set<string>();
    for (const [label, headers] of variants) {
      const res = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { headers });
      expect(res.status, label).toBe(401);
      expect(res.headers.get("www-authenticate"), label).toMatch(/^Bearer realm="mcp-servers-api"/);
      const { requestId: _requestId, ...rest } = res.json;
      bodies.add(JSON.stringify(rest));
    }
    expect([...bodies]).toEqual([
      JSON.stringify({ type: "/problems/unauthorized", title: "Authentication is required.", status: 401, detail: "Send a valid token as 'Authorization: Bearer <token>'.", instance: "/api/mcp-servers" }),
    ]);
  });
});
