// Issue 20 item 6, scope step-up: an MCP server that answers 403 with
// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` makes the gateway (both
// endpoints) or a check mark the connection that was used, tell the agent where to authorize
// again (-32042 with the connect link), and the next authorization asks for the union of the
// scopes held and demanded; after one futile re-authorization the refusal is final.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closer, listen } from "./helpers/mcp-peers.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

/**
 * A small authorization server and the MCP server it protects. tools/list needs `mcp:basic`,
 * tools/call `mcp:write`. The AS redirects at once (no consent page) and grants what is asked,
 * less what `withhold` names; each token carries its owner (`login_hint`) and its scopes.
 */
async function stepUpPeer() {
  const asked: string[] = [];
  const withhold = new Set<string>();
  const tokens = new Map<string, { scopes: string[]; who: string }>();
  const codes = new Map<string, { scopes: string[]; who: string }>();
  const mcpCalls: { method: string; who: string | null }[] = [];
  const http = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/authorize") {
      const scope = url.searchParams.get("scope") ?? "";
      asked.push(scope);
      const code = randomBytes(8).toString("hex");
      codes.set(code, { scopes: scope.split(" ").filter((s) => s && !withhold.has(s)), who: url.searchParams.get("login_hint") ?? "someone" });
      const back = new URL(url.searchParams.get("redirect_uri")!);
      back.searchParams.set("code", code);
      back.searchParams.set("state", url.searchParams.get("state")!);
      return void res.writeHead(302, { location: back.toString() }).end();
    }
    if (url.pathname === "/token") {
      const form = new URLSearchParams(body);
      const grant = codes.get(form.get("code") ?? "");
      if (!grant) return void res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "invalid_grant" }));
      codes.delete(form.get("code")!);
      const access = `at_${randomBytes(8).toString("hex")}`;
      tokens.set(access, grant);
      return void res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ access_token: access, token_type: "Bearer", expires_in: 3600, scope: grant.scopes.join(" ") }));
    }
    if (url.pathname !== "/mcp" || req.method !== "POST") return void res.writeHead(404).end();
    const msg = JSON.parse(body) as { id?: number; method: string };
    const token = tokens.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
    mcpCalls.push({ method: msg.method, who: token?.who ?? null });
    if (!token) return void res.writeHead(401, { "www-authenticate": 'Bearer scope="mcp:basic"' }).end();
    const needs = msg.method === "tools/call" ? "mcp:write" : "mcp:basic";
    if (!token.scopes.includes(needs)) {
      return void res.writeHead(403, { "www-authenticate": `Bearer error="insufficient_scope", scope="${needs}", error_description="needs ${needs}"` }).end();
    }
    if (msg.id === undefined) return void res.writeHead(202).end();
    const result =
      msg.method === "initialize"
        ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "step-up", version: "1.0.0" } }
        : msg.method === "tools/list"
          ? { tools: [{ name: "write", inputSchema: { type: "object" } }] }
          : msg.method === "tools/call"
            ? { content: [{ type: "text", text: `written by ${token.who}` }] }
            : {};
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }));
  });
  const port = await listen(http);
  const base = `http://127.0.0.1:${port}`;
  return { base, mcpUrl: `${base}/mcp`, asked, withhold, mcpCalls, close: closer(http) };
}

let srv: TestServer;
let peer: Awaited<ReturnType<typeof stepUpPeer>>;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  peer = await stepUpPeer();
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

const ACCEPT = { accept: "application/json, text/event-stream" };
const rpc = (method: string, params: unknown = {}, id = 1) => JSON.stringify({ jsonrpc: "2.0", id, method, params });
const cookieOf = (setCookie: string | null) => /^(mcp_session=[^;]*)/.exec(setCookie ?? "")?.[1] ?? "";
/** A JSON-RPC answer, whether sent as JSON or as one SSE event. */
const answerOf = (res: { json: any; text: string }) => res.json ?? JSON.parse(/^data: (.*)$/m.exec(res.text)![1]);
const scopeOf = (authorizationUrl: string) => new URL(authorizationUrl).searchParams.get("scope");

async function person(ws: string, name: string) {
  const userId = `usr_${name}_${randomBytes(3).toString("hex")}`;
  const token = await srv.token([ws], userId);
  const cookie = cookieOf((await raw(srv.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie"));
  return { userId, token, cookie };
}

async function record(token: string, ws: string, connectionScope: "workspace" | "user") {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token,
    body: JSON.stringify({
      workspaceId: ws,
      name: `Tracker ${randomBytes(3).toString("hex")}`,
      url: peer.mcpUrl,
      authType: "oauth",
      connectionScope,
      oauthClientId: "step-up-client",
      oauthAuthorizationEndpoint: `${peer.base}/authorize`,
      oauthTokenEndpoint: `${peer.base}/token`,
      oauthScopes: "mcp:basic",
    }),
  });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; name: string };
}

/** The browser: from an authorization URL through the AS (as `who`) to the product's callback, with the session cookie. */
async function consent(authorizationUrl: string, who: string, cookie?: string) {
  const url = new URL(authorizationUrl);
  url.searchParams.set("login_hint", who);
  const atAs = await fetch(url, { redirect: "manual" });
  const back = await fetch(atAs.headers.get("location")!, { headers: cookie ? { cookie } : {}, redirect: "manual" });
  expect(back.status, await back.text()).toBe(200);
}

/** The connect link in a signed-in browser: its redirect to the AS (whose scope the test reads), then consent. */
async function openLink(link: string, p: { userId: string; cookie: string }) {
  const page = await fetch(link, { headers: { cookie: p.cookie }, redirect: "manual" });
  expect(page.status, await page.clone().text()).toBe(302);
  const location = page.headers.get("location")!;
  await consent(location, p.userId, p.cookie);
  return scopeOf(location);
}

const callTool = (token: string, id: string) => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token, headers: ACCEPT, body: rpc("tools/call", { name: "write", arguments: {} }) });

describe("POST /api/mcp-servers/{id}/mcp when the upstream answers 403 insufficient_scope", () => {
  test("when the record's connection lacks the scope, then -32042 with the connect link, the record names the scope, and the link's authorization asks for the union; then the call goes through", async () => {
    const ws = uniqueWorkspace();
    const admin = await person(ws, "admin");
    const server = await record(admin.token, ws, "workspace");
    const started = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/oauth/authorize`, { token: admin.token, body: "{}" });
    expect(scopeOf(started.json.authorizationUrl)).toBe("mcp:basic");
    await consent(started.json.authorizationUrl, admin.userId);
    // tools/list is within the scope held.
    const list = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/mcp`, { token: admin.token, headers: ACCEPT, body: rpc("tools/list") });
    expect(list.json.result.tools[0].name).toBe("write");

    const refused = await callTool(admin.token, server.id);
    expect(refused.status).toBe(200);
    expect(refused.json.error.code).toBe(-32042);
    const elicitation = refused.json.error.data.elicitations[0];
    expect(elicitation).toMatchObject({ mode: "url", url: `${srv.baseUrl}/connect/${server.id}` });
    expect(elicitation.message).toContain("mcp:write");
    expect(elicitation.message).toContain(server.name);
    const marked = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${server.id}`, { token: admin.token });
    expect(marked.json.connectorStatus).toBe("error");
    expect(marked.json.lastError.message).toContain("mcp:write");

    // An administrator opens the link: the authorization asks for what was held and what was demanded.
    expect(await openLink(elicitation.url, admin)).toBe("mcp:basic mcp:write");
    const done = await callTool(admin.token, server.id);
    expect(done.json.result.content[0].text).toBe(`written by ${admin.userId}`);
    const healed = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${server.id}`, { token: admin.token });
    expect(healed.json.connectorStatus).toBe("connected");
    // Later authorizations keep asking for the scope the server demanded.
    const later = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/oauth/authorize`, { token: admin.token, body: "{}" });
    expect(scopeOf(later.json.authorizationUrl)).toBe("mcp:basic mcp:write");
  });

  test("when re-authorizing never yields the scope, then one more link, and after that a final error naming the retry limit; disconnecting starts over", async () => {
    const ws = uniqueWorkspace();
    const admin = await person(ws, "admin");
    const server = await record(admin.token, ws, "workspace");
    peer.withhold.add("mcp:write");
    try {
      const before = peer.asked.length;
      const started = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/oauth/authorize`, { token: admin.token, body: "{}" });
      await consent(started.json.authorizationUrl, admin.userId);
      const answers: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await callTool(admin.token, server.id);
        answers.push(res.json.error.code);
        if (res.json.error.code !== -32042) {
          expect(res.json.error.message).toContain("retry limit");
          expect(res.json.error.message).toContain("mcp:write");
          break;
        }
        await openLink(res.json.error.data.elicitations[0].url, admin);
      }
      // First demand: a link; the scope asked for and still refused: one more link; then final.
      expect(answers).toEqual([-32042, -32042, -32004]);
      expect(peer.asked.length - before).toBe(3);
      const final = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${server.id}`, { token: admin.token });
      expect(final.json.lastError.message).toContain("retry limit");

      expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${server.id}/oauth`, { token: admin.token })).status).toBe(200);
      const again = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/oauth/authorize`, { token: admin.token, body: "{}" });
      expect(scopeOf(again.json.authorizationUrl)).toBe("mcp:basic");
    } finally {
      peer.withhold.delete("mcp:write");
    }
  });
});

describe("Step-up on a user-scope record", () => {
  test("when one person's call is refused for scope, then only that person's connection is marked and their link asks for the union; another person's is untouched", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const bob = await person(ws, "bob");
    const server = await record(alice.token, ws, "user");
    for (const p of [alice, bob]) expect(await openLink(`${srv.baseUrl}/connect/${server.id}`, p)).toBe("mcp:basic");
    const refused = await callTool(alice.token, server.id);
    expect(refused.json.error.code).toBe(-32042);
    expect(refused.json.error.data.elicitations[0].message).toContain("your connection");
    const rows = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${server.id}/connections`, { token: alice.token })).json.data as { userId: string; status: string }[];
    expect(rows.find((r) => r.userId === alice.userId)?.status).toBe("error");
    expect(rows.find((r) => r.userId === bob.userId)?.status).toBe("connected");
    // Bob's next authorization asks only for what his own connection needs.
    const bobStart = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/oauth/authorize`, { token: bob.token, body: "{}" });
    expect(scopeOf(bobStart.json.authorizationUrl)).toBe("mcp:basic");
    expect(await openLink(refused.json.error.data.elicitations[0].url, alice)).toBe("mcp:basic mcp:write");
    const done = await callTool(alice.token, server.id);
    expect(done.json.result.content[0].text).toBe(`written by ${alice.userId}`);
    expect(peer.mcpCalls.filter((c) => c.method === "tools/call" && c.who === bob.userId)).toEqual([]);
  });

  test("when the workspace endpoint's call is refused for scope, then -32042 with the connect link", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const server = await record(alice.token, ws, "user");
    await openLink(`${srv.baseUrl}/connect/${server.id}`, alice);
    const list = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: alice.token, headers: ACCEPT, body: rpc("tools/list") });
    const name = (answerOf(list).result.tools as { name: string }[]).find((t) => t.name.endsWith("__write"))!.name;
    const refused = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: alice.token, headers: ACCEPT, body: rpc("tools/call", { name, arguments: {} }) });
    const error = answerOf(refused).error;
    expect(error.code).toBe(-32042);
    expect(error.data.elicitations[0].url).toBe(`${srv.baseUrl}/connect/${server.id}`);
    expect(await openLink(error.data.elicitations[0].url, alice)).toBe("mcp:basic mcp:write");
    const done = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: alice.token, headers: ACCEPT, body: rpc("tools/call", { name, arguments: {} }) });
    expect(answerOf(done).result.content[0].text).toBe(`written by ${alice.userId}`);
  });
});

describe("POST /api/mcp-servers/{id}/test when the upstream answers 403 insufficient_scope", () => {
  test("when the check is refused for scope, then its error names the scope and the next authorization asks for the union", async () => {
    const ws = uniqueWorkspace();
    const admin = await person(ws, "admin");
    // Asks for nothing at first, so even tools/list is refused for scope.
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
      token: admin.token,
      body: JSON.stringify({
        workspaceId: ws,
        name: `Narrow ${randomBytes(3).toString("hex")}`,
        url: peer.mcpUrl,
        authType: "oauth",
        oauthClientId: "step-up-client",
        oauthAuthorizationEndpoint: `${peer.base}/authorize`,
        oauthTokenEndpoint: `${peer.base}/token`,
        oauthScopes: "profile",
      }),
    });
    const id = created.json.id;
    const started = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token: admin.token, body: "{}" });
    await consent(started.json.authorizationUrl, admin.userId);
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token: admin.token });
    expect(check.json.connectorStatus).toBe("error");
    expect(check.json.error.class).toBe("auth");
    expect(check.json.error.message).toContain("mcp:basic");
    const next = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token: admin.token, body: "{}" });
    expect(scopeOf(next.json.authorizationUrl)).toBe("profile mcp:basic");
    await consent(next.json.authorizationUrl, admin.userId);
    const healed = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token: admin.token });
    expect(healed.json.connectorStatus, healed.text).toBe("connected");
  });
});
