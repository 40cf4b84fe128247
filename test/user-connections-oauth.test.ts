// Issue 20 items 3-4 against a real authorization server (oidc-provider): each person connects
// their own account through the connect page in their own signed-in browser, the callback
// refuses anyone else's browser, and the gateway sends each caller's own token, also while
// tokens are being refreshed.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createServer } from "node:http";
import { closedPortUrl, closer, listen } from "./helpers/mcp-peers.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let peer: OAuthPeer;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  // Short-lived access tokens: the interleaved calls below run across several refreshes.
  peer = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback`, accessTokenTtlSeconds: 4 });
});
afterAll(async () => {
  await peer?.close();
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

async function oauthServer(token: string, ws: string) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token,
    body: JSON.stringify({
      workspaceId: ws,
      name: `Linear ${randomBytes(3).toString("hex")}`,
      url: peer.mcpUrl,
      authType: "oauth",
      connectionScope: "user",
      oauthClientId: peer.clientId,
      oauthClientSecret: peer.clientSecret,
      oauthAuthorizationEndpoint: peer.authorizationEndpoint,
      oauthTokenEndpoint: peer.tokenEndpoint,
    }),
  });
  expect(res.status, res.text).toBe(201);
  return res.json.id as string;
}

/** The connect page in a signed-in browser: on to the authorization server, consent as `account`, back to our callback URL. */
async function consentVia(id: string, cookie: string, account: string) {
  const page = await fetch(`${srv.baseUrl}/connect/${id}`, { headers: { cookie }, redirect: "manual" });
  expect(page.status).toBe(302);
  const location = page.headers.get("location")!;
  expect(location.startsWith(peer.authorizationEndpoint)).toBe(true);
  return peer.login(location, { account });
}

const callback = (url: string, cookie?: string) => fetch(url, { headers: cookie ? { cookie } : {}, redirect: "manual" }).then(async (r) => ({ status: r.status, text: await r.text() }));

describe("GET /connect/{serverId} and the callback of a user-scope flow", () => {
  test("when the browser is not signed in, then a 200 page saying how, linking to the console", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const id = await oauthServer(alice.token, ws);
    const res = await callback(`${srv.baseUrl}/connect/${id}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('href="/console"');
    expect(res.text).toMatch(/sign in/i);
  });

  test("when the link is finished in another person's browser, or one not signed in, then 403 saying why, the state is used up and nothing is connected", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const bob = await person(ws, "bob");
    const id = await oauthServer(alice.token, ws);
    const back = await consentVia(id, alice.cookie, alice.userId);
    const refused = await callback(back, bob.cookie);
    expect(refused.status).toBe(403);
    expect(refused.text).toContain("another person");
    // Used up: not even Alice's own browser can finish it now.
    expect((await callback(back, alice.cookie)).status).toBe(400);
    const again = await consentVia(id, alice.cookie, alice.userId);
    const anonymous = await callback(again);
    expect(anonymous.status).toBe(403);
    expect(anonymous.text).toContain("not signed in");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections`, { token: alice.token })).json.data).toEqual([]);
    // A -32042 link works in the signed-in browser of the person it is for.
    const call = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: alice.token, headers: ACCEPT, body: rpc("tools/list") });
    expect(call.json.error.code).toBe(-32042);
    const link = call.json.error.data.elicitations[0].url as string;
    expect(link).toBe(`${srv.baseUrl}/connect/${id}`);
    const done = await callback(await consentVia(id, alice.cookie, alice.userId), alice.cookie);
    expect(done.status, done.text).toBe(200);
    expect(done.text).toContain("Connected");
  });

  test("when the server is not user-scope OAuth, unknown, or the id malformed, then 400 or 404 pages", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const shared = (await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: alice.token, body: JSON.stringify({ workspaceId: ws, name: "shared", url: peer.mcpUrl }) })).json.id;
    const keyed = (await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: alice.token, body: JSON.stringify({ workspaceId: ws, name: "keyed", url: peer.mcpUrl, authType: "api_key", connectionScope: "user" }) })).json.id;
    for (const [path, status, text] of [
      [`/connect/${shared}`, 400, "connectionScope"],
      [`/connect/${keyed}`, 400, "connections/me"],
      ["/connect/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE", 404, "not found"],
      ["/connect/nope", 400, "mcp_"],
    ] as const) {
      const res = await fetch(`${srv.baseUrl}${path}`, { headers: { cookie: alice.cookie }, redirect: "manual" });
      expect(res.status, path).toBe(status);
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
      expect(await res.text()).toContain(text);
    }
  });

  test("when the authorization server cannot be reached, then a 502 page", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    // An MCP server whose protected resource metadata names an authorization server that refuses connections.
    const gone = await closedPortUrl();
    const mcp = createServer((req, res) => {
      if (req.url?.startsWith("/.well-known/oauth-protected-resource")) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ resource: `http://127.0.0.1:${port}/mcp`, authorization_servers: [new URL(gone).origin] }));
      } else res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp"` }).end();
    });
    const port = await listen(mcp);
    try {
      const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
        token: alice.token,
        body: JSON.stringify({ workspaceId: ws, name: "gone", url: `http://127.0.0.1:${port}/mcp`, authType: "oauth", connectionScope: "user", oauthClientId: "c" }),
      });
      const page = await fetch(`${srv.baseUrl}/connect/${res.json.id}`, { headers: { cookie: alice.cookie }, redirect: "manual" });
      expect(page.status).toBe(502);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
    } finally {
      await closer(mcp)();
    }
  });
});

describe("the gateway with per-user OAuth connections", () => {
  test("when two people connect their own accounts and 1,000 calls interleave across token refreshes, then every call carries its caller's own token (zero crossings)", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const bob = await person(ws, "bob");
    const id = await oauthServer(alice.token, ws);
    for (const p of [alice, bob]) expect((await callback(await consentVia(id, p.cookie, p.userId), p.cookie)).status).toBe(200);
    const connections = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections`, { token: bob.token })).json.data;
    expect(connections.map((c: { userId: string; status: string }) => [c.userId, c.status]).sort()).toEqual([[alice.userId, "connected"], [bob.userId, "connected"]].sort());
    expect(connections.every((c: { oauthExpiresAt: string | null }) => c.oauthExpiresAt !== null)).toBe(true);

    const before = peer.mcpRequests.length;
    const refreshesBefore = peer.tokenRequests.filter((r) => r.grant_type === "refresh_token").length;
    const order = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? alice : bob));
    let next = 0;
    const failures: string[] = [];
    // Bounded concurrency: 8 calls in flight, alternating people.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < order.length) {
          const i = next++;
          const who = order[i];
          const res = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: who.token, headers: ACCEPT, body: rpc("tools/call", { name: "whoami", arguments: { who: who.userId } }, i + 1) });
          if (!res.json?.result) failures.push(`${i}: ${res.status} ${res.text.slice(0, 200)}`);
        }
      }),
    );
    expect(failures).toEqual([]);
    const seen = peer.mcpRequests.slice(before).filter((r) => r.who !== undefined);
    expect(seen).toHaveLength(1000);
    const crossings = seen.filter((r) => r.sub !== r.who);
    expect(crossings).toEqual([]);
    expect(seen.filter((r) => r.who === alice.userId)).toHaveLength(500);
    // The tokens were renewed while the calls ran (each person's own refresh token).
    expect(peer.tokenRequests.filter((r) => r.grant_type === "refresh_token").length).toBeGreaterThan(refreshesBefore);
  }, 240_000);
});

describe("DELETE /api/mcp-servers/{id}/oauth on a user-scope record", () => {
  test("when a person disconnects, then only their own connection is revoked and forgotten, the answer describes it, and another person's keeps working", async () => {
    const ws = uniqueWorkspace();
    const alice = await person(ws, "alice");
    const bob = await person(ws, "bob");
    const id = await oauthServer(alice.token, ws);
    for (const p of [alice, bob]) expect((await callback(await consentVia(id, p.cookie, p.userId), p.cookie)).status).toBe(200);
    const revokedBefore = peer.revocations.length;

    const res = await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`, { token: alice.token });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ id, connectionScope: "user", connectorStatus: "disconnected", oauthExpiresAt: null });
    // Alice's refresh and access tokens were revoked at the authorization server (RFC 7009).
    expect(peer.revocations.length - revokedBefore).toBe(2);
    const rows = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections`, { token: bob.token })).json.data as { userId: string; status: string }[];
    expect(rows.map((r) => [r.userId, r.status])).toEqual([[bob.userId, "connected"]]);
    const events = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token: bob.token })).json.data as { type: string; actor: string; subjectUserId?: string }[];
    expect(events.filter((e) => e.type === "connection_removed").map((e) => [e.actor, e.subjectUserId])).toEqual([[alice.userId, alice.userId]]);

    const mine = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: alice.token, headers: ACCEPT, body: rpc("tools/call", { name: "whoami", arguments: { who: alice.userId } }) });
    expect(mine.json.error.code).toBe(-32042);
    const his = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: bob.token, headers: ACCEPT, body: rpc("tools/call", { name: "whoami", arguments: { who: bob.userId } }) });
    expect(his.json.result, his.text).toBeDefined();
    // Nothing left to disconnect: the same answer, and nothing more revoked or recorded.
    const again = await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`, { token: alice.token });
    expect(again.status).toBe(200);
    expect(again.json.connectorStatus).toBe("disconnected");
    expect(peer.revocations.length - revokedBefore).toBe(2);
  });
});
