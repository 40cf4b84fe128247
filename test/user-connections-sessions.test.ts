// Issue 20 on a user-scope record: a sealed gateway session is bound to the person's own
// connection as it was when it was sealed (a reconnect ends it, as issue 18 item 7 does for a
// record's own connection), and the gateway's 1 s record cache never serves one person's
// credential to another, however their calls interleave.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closer, listen } from "./helpers/mcp-peers.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

/** A stateful MCP upstream (it opens a session at initialize) that records who called with what. */
async function statefulUpstream() {
  const calls: { method: string; authorization: string | undefined; who: string | undefined }[] = [];
  let sessions = 0;
  const http = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== "POST") return void res.writeHead(405).end();
    const m = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: number; method: string; params?: { arguments?: { who?: string } } };
    calls.push({ method: m.method, authorization: req.headers.authorization, who: m.params?.arguments?.who });
    if (m.id === undefined) return void res.writeHead(202).end();
    const result =
      m.method === "initialize"
        ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "stateful", version: "1" } }
        : m.method === "tools/call"
          ? { content: [{ type: "text", text: `called by ${m.params?.arguments?.who}` }] }
          : { tools: [] };
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (m.method === "initialize") headers["mcp-session-id"] = `up-${++sessions}`;
    res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: "2.0", id: m.id, result }));
  });
  const port = await listen(http);
  return { url: `http://127.0.0.1:${port}/mcp`, calls, close: closer(http) };
}

let srv: TestServer;
let upstream: Awaited<ReturnType<typeof statefulUpstream>>;
let as: OAuthPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  upstream = await statefulUpstream();
  as = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback`, accessTokenTtlSeconds: 600, extraResources: [upstream.url] });
});
afterAll(async () => {
  await as?.close();
  await upstream?.close();
  await srv?.stop();
});

const ACCEPT = { accept: "application/json, text/event-stream" };
const rpc = (method: string, params: unknown = {}, id = 1) => JSON.stringify({ jsonrpc: "2.0", id, method, params });
const cookieOf = (setCookie: string | null) => /^(mcp_session=[^;]*)/.exec(setCookie ?? "")?.[1] ?? "";

async function person(ws: string, name: string) {
  const userId = `usr_${name}_${randomBytes(3).toString("hex")}`;
  const token = await srv.token([ws], userId);
  const cookie = cookieOf((await raw(srv.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie"));
  return { userId, token, cookie };
}

async function create(token: string, body: Record<string, unknown>) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ name: `personal ${randomBytes(3).toString("hex")}`, url: upstream.url, connectionScope: "user", ...body }) });
  expect(res.status, res.text).toBe(201);
  return res.json.id as string;
}

/** The connect page in the person's signed-in browser, through oidc-provider's login and consent, back to the callback. */
async function connect(id: string, p: { userId: string; cookie: string }) {
  const page = await fetch(`${srv.baseUrl}/connect/${id}`, { headers: { cookie: p.cookie }, redirect: "manual" });
  expect(page.status).toBe(302);
  const back = await as.login(page.headers.get("location")!, { account: p.userId });
  const done = await fetch(back, { headers: { cookie: p.cookie }, redirect: "manual" });
  expect(done.status, await done.text()).toBe(200);
}

const post = (id: string, token: string, body: string, session?: string) =>
  raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token, headers: { ...ACCEPT, ...(session ? { "mcp-session-id": session } : {}) }, body });

async function openSession(id: string, token: string) {
  const init = await post(id, token, rpc("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }));
  expect(init.status, init.text).toBe(200);
  return init.headers.get("mcp-session-id")!;
}

describe("sealed sessions on a user-scope record", () => {
  test("when the person connects their OAuth account again, then a session sealed before is refused with 'start a new session'; a new one works", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const id = await create(alice.token, {
      workspaceId: ws,
      authType: "oauth",
      oauthClientId: as.clientId,
      oauthClientSecret: as.clientSecret,
      oauthAuthorizationEndpoint: as.authorizationEndpoint,
      oauthTokenEndpoint: as.tokenEndpoint,
      oauthScopes: "openid offline_access mcp:tools",
    });
    await connect(id, alice);
    const session = await openSession(id, alice.token);
    expect(session).toBeTruthy();
    expect((await post(id, alice.token, rpc("tools/list"), session)).status).toBe(200);

    // The same person, a new grant (perhaps another account at the authorization server): a new connection.
    await connect(id, alice);
    const old = await post(id, alice.token, rpc("tools/list"), session);
    expect(old.status, old.text).toBe(400);
    expect(old.json.detail).toMatch(/start a new session/);
    const fresh = await openSession(id, alice.token);
    expect((await post(id, alice.token, rpc("tools/list"), fresh)).status).toBe(200);

    // Disconnected: the link to connect, not the upstream, whatever session is sent.
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`, { token: alice.token })).status).toBe(200);
    const gone = await post(id, alice.token, rpc("tools/list"), fresh);
    expect(gone.json.error.code).toBe(-32042);
  });

  test("when the person replaces their own API key, then a session sealed with the old one is refused", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const id = await create(alice.token, { workspaceId: ws, authType: "api_key" });
    const setKey = (apiKey: string) => raw(srv.baseUrl, "PUT", `/api/mcp-servers/${id}/connections/me`, { token: alice.token, body: JSON.stringify({ apiKey }) });
    expect((await setKey("sk_alice_1")).status).toBe(200);
    const session = await openSession(id, alice.token);
    expect((await post(id, alice.token, rpc("tools/list"), session)).status).toBe(200);
    expect((await setKey("sk_alice_2")).status).toBe(200);
    const old = await post(id, alice.token, rpc("tools/list"), session);
    expect(old.status).toBe(400);
    expect(old.json.detail).toMatch(/start a new session/);
  });
});

describe("the gateway's record cache with per-user credentials", () => {
  test("when two people's calls interleave within the cache's second, and one replaces their key meanwhile, then every call carries its caller's own key", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const bob = await person(ws, "bob");
    const id = await create(alice.token, { workspaceId: ws, authType: "api_key" });
    const keys = new Map([
      [alice.userId, "sk_alice_a"],
      [bob.userId, "sk_bob_a"],
    ]);
    const setKey = (p: { token: string; userId: string }, apiKey: string) => {
      keys.set(p.userId, apiKey);
      return raw(srv.baseUrl, "PUT", `/api/mcp-servers/${id}/connections/me`, { token: p.token, body: JSON.stringify({ apiKey }) });
    };
    for (const p of [alice, bob]) expect((await setKey(p, keys.get(p.userId)!)).status).toBe(200);

    const before = upstream.calls.length;
    const expected: { who: string; authorization: string }[] = [];
    // Rounds of concurrent calls, alternating people; between rounds Alice replaces her key (well within 1 s).
    for (let round = 0; round < 5; round++) {
      const batch = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob));
      for (const p of batch) expected.push({ who: p.userId, authorization: `Bearer ${keys.get(p.userId)}` });
      const answers = await Promise.all(batch.map((p, i) => post(id, p.token, rpc("tools/call", { name: "whoami", arguments: { who: p.userId } }, i + 1))));
      for (const a of answers) expect(a.json?.result, a.text).toBeDefined();
      expect((await setKey(alice, `sk_alice_${round}`)).status).toBe(200);
    }
    const seen = upstream.calls.slice(before).filter((c) => c.method === "tools/call").map((c) => ({ who: c.who!, authorization: c.authorization! }));
    const sort = (list: { who: string; authorization: string }[]) => [...list].sort((a, b) => `${a.who}${a.authorization}`.localeCompare(`${b.who}${b.authorization}`));
    expect(sort(seen)).toEqual(sort(expected));
  });
});
