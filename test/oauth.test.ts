import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { startOAuthPeer, type OAuthPeer, type OAuthPeerOptions } from "./helpers/oauth-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
const peers: OAuthPeer[] = [];
const CLIENT_SECRET_MARK = "never-in-a-response";

beforeAll(async () => {
  srv = await startServer({
    env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "5000", MCP_API_OAUTH_RETURN_URLS: "https://app.example.com/" },
  });
});
afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await srv?.stop();
});

async function peer(options: Partial<OAuthPeerOptions> = {}) {
  const p = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback`, ...options });
  peers.push(p);
  return p;
}

async function register(p: OAuthPeer, extra: Record<string, unknown> = {}) {
  const ws = uniqueWorkspace();
  const token = await srv.token([ws], "usr_oauth");
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token,
    body: JSON.stringify({ workspaceId: ws, name: "oauth peer", url: p.mcpUrl, authType: "oauth", oauthClientId: p.clientId, oauthClientSecret: p.clientSecret, oauthScopes: "mcp:tools", ...extra }),
  });
  expect(res.status, res.text).toBe(201);
  return { ws, token, id: res.json.id as string };
}

const get = (token: string, id: string) => raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token });
const authorize = (token: string, id: string, body?: unknown) =>
  raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token, body: body === undefined ? undefined : JSON.stringify(body) });
const callback = (url: string) => fetch(url.replace(/^http:\/\/localhost:/, "http://127.0.0.1:"), { redirect: "manual" });

/** authorize → the provider's login and consent → callback. */
async function connect(p: OAuthPeer, token: string, id: string) {
  const started = await authorize(token, id);
  expect(started.status, started.text).toBe(200);
  const back = await p.login(started.json.authorizationUrl);
  return { started, back, res: await callback(back) };
}

describe("authorization code flow", () => {
  test("when a user authorizes, then tokens are stored, the server connects with them, and nothing secret is shown", async () => {
    const p = await peer();
    const { token, id } = await register(p);
    const started = await authorize(token, id);
    expect(started.status).toBe(200);
    const url = new URL(started.json.authorizationUrl);
    expect(url.origin + url.pathname).toBe(p.authorizationEndpoint);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: "code",
      client_id: p.clientId,
      redirect_uri: `${srv.baseUrl}/api/oauth/callback`,
      // The AS lists offline_access, so it is asked for (a refresh token is wanted).
      scope: "mcp:tools offline_access",
      code_challenge_method: "S256",
      resource: p.mcpUrl,
    });
    expect(url.searchParams.get("state")).toMatch(/^[\w-]{40,}$/);
    expect(Date.parse(started.json.expiresAt) - Date.now()).toBeGreaterThan(9 * 60_000);
    // Discovery filled in the endpoints the record left out.
    expect((await get(token, id)).json).toMatchObject({ oauthAuthorizationEndpoint: p.authorizationEndpoint, oauthTokenEndpoint: p.tokenEndpoint });

    const back = await p.login(started.json.authorizationUrl);
    const res = await callback(back);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(await res.text()).toContain("Connected");
    const record = (await get(token, id)).json;
    expect(record.connectorStatus).toBe("connected");
    expect(Date.parse(record.oauthExpiresAt)).toBeGreaterThan(Date.now());
    const exchange = p.tokenRequests.find((r) => r.grant_type === "authorization_code")!;
    expect(exchange).toMatchObject({ authMethod: "basic", resource: p.mcpUrl, code_verifier: true });

    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    expect(check.json).toMatchObject({ connectorStatus: "connected", error: null });
    const secrets = await srv.services.servers.openSecrets(record.workspaceId, id);
    expect(p.mcpRequests.some((h) => h.authorization === `Bearer ${secrets.oauthAccessToken}`)).toBe(true);

    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token });
    expect(events.json.data.map((e: { type: string }) => e.type)).toContain("oauth_connected");
    const everything = [started.text, check.text, events.text, JSON.stringify(record), ...srv.logs].join("\n");
    for (const secret of [secrets.oauthAccessToken!, secrets.oauthRefreshToken!, p.clientSecret]) expect(everything).not.toContain(secret);
    expect(everything).not.toContain(new URL(back).searchParams.get("code")!);
  });

  test("when the callback is replayed, then 400 and nothing changes", async () => {
    const p = await peer();
    const { token, id } = await register(p);
    const { back, res } = await connect(p, token, id);
    expect(res.status).toBe(200);
    const before = await get(token, id);
    const again = await callback(back);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("already used");
    expect((await get(token, id)).headers.get("etag")).toBe(before.headers.get("etag"));
  });

  test("when the state is unknown, missing or expired, then 400 and no record changes", async () => {
    const p = await peer();
    const { token, id, ws } = await register(p);
    const started = await authorize(token, id);
    const before = (await get(token, id)).headers.get("etag");
    expect((await callback(`${srv.baseUrl}/api/oauth/callback?state=forged&code=x`)).status).toBe(400);
    expect((await callback(`${srv.baseUrl}/api/oauth/callback?code=x`)).status).toBe(400);
    await srv.services.db.knex("oauth_states").where({ workspace_id: ws }).update({ expires_at: new Date(Date.now() - 1000).toISOString() });
    const back = await p.login(started.json.authorizationUrl);
    const res = await callback(back);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("expired");
    expect((await get(token, id)).headers.get("etag")).toBe(before);
  });

  test("when the user who started the flow lost access to the workspace, then 403 and nothing changes", async () => {
    const p = await peer();
    const ws = uniqueWorkspace();
    const { token: starter, record } = await srv.services.tokens.mint({ userId: "usr_leaver", workspaces: [ws] });
    const admin = await srv.token([ws], "usr_admin");
    const id = (await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
      token: admin,
      body: JSON.stringify({ workspaceId: ws, name: "x", url: p.mcpUrl, authType: "oauth", oauthClientId: p.clientId, oauthClientSecret: p.clientSecret }),
    })).json.id;
    const started = await authorize(starter, id);
    await srv.services.tokens.revoke(record.id);
    const res = await callback(await p.login(started.json.authorizationUrl));
    expect(res.status).toBe(403);
    expect((await get(admin, id)).json).toMatchObject({ connectorStatus: "", oauthExpiresAt: null });
  });

  test("when the user denies access, then an error page, lastError is recorded and no token is stored", async () => {
    const p = await peer();
    const { token, id, ws } = await register(p);
    const started = await authorize(token, id);
    const back = await p.login(started.json.authorizationUrl, { deny: true });
    const res = await callback(back);
    expect(res.status, back + srv.logs.filter((l) => l.includes("callback")).slice(-2).join("")).toBe(400);
    const text = await res.text();
    expect(text, back).toContain("access_denied");
    expect((await get(token, id)).json).toMatchObject({ lastError: { class: "auth" }, oauthExpiresAt: null });
    expect((await srv.services.servers.openSecrets(ws, id)).oauthAccessToken).toBeNull();
  });

  test("when the code exchange fails at the token endpoint, then 502 page, lastError, and no token", async () => {
    const p = await peer();
    const { token, id, ws } = await register(p, { oauthClientSecret: "wrong-secret" });
    const { res } = await connect(p, token, id);
    expect(res.status).toBe(502);
    expect((await get(token, id)).json.lastError).toMatchObject({ class: "auth" });
    expect((await srv.services.servers.openSecrets(ws, id)).oauthAccessToken).toBeNull();
  });

  test("when the token endpoint answers garbage, then 502 and no token", async () => {
    const p = await peer();
    const garbage = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html>not json</html>"));
    await new Promise<void>((r) => garbage.listen(0, "127.0.0.1", r));
    try {
      const { token, id, ws } = await register(p, {
        oauthAuthorizationEndpoint: p.authorizationEndpoint,
        oauthTokenEndpoint: `http://127.0.0.1:${(garbage.address() as AddressInfo).port}/token`,
      });
      const { res } = await connect(p, token, id);
      expect(res.status).toBe(502);
      expect((await srv.services.servers.openSecrets(ws, id)).oauthAccessToken).toBeNull();
    } finally {
      garbage.close();
    }
  });

  test("when a returnUrl on the allowlist is given, then the callback redirects there; off the list, 400", async () => {
    const p = await peer();
    const { token, id } = await register(p);
    expect((await authorize(token, id, { returnUrl: "https://evil.example.net/x" })).status).toBe(400);
    const started = await authorize(token, id, { returnUrl: "https://app.example.com/settings" });
    const res = await callback(await p.login(started.json.authorizationUrl));
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(`https://app.example.com/settings?mcpServerId=${id}&status=connected`);
  });

  test("when the server metadata does not offer S256 PKCE, then the flow is refused with 502", async () => {
    const p = await peer({ pkceMethods: ["plain"] });
    const { token, id } = await register(p);
    const res = await authorize(token, id);
    expect(res.status).toBe(502);
    expect(res.json.connectionError.message).toContain("S256");
  });

  test("when the authorization server asks for client_secret_post, then the product uses it", async () => {
    const p = await peer({ tokenEndpointAuthMethod: "client_secret_post" });
    const { token, id } = await register(p);
    expect((await connect(p, token, id)).res.status).toBe(200);
    expect(p.tokenRequests.find((r) => r.grant_type === "authorization_code")!.authMethod).toBe("post");
  });

  test("when authorize is called on a server that is not oauth, or unknown, or with a bad body, then 400 / 404 / 415 / 413", async () => {
    const ws = uniqueWorkspace();
    const token = await srv.token([ws]);
    const id = (await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "plain", url: "http://127.0.0.1:9/mcp" }) })).json.id;
    expect((await authorize(token, id)).status).toBe(400);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`, { token })).status).toBe(400);
    expect((await authorize(token, "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE")).status).toBe(404);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE/oauth`, { token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token, body: "x", contentType: "text/plain" })).status).toBe(415);
    const big = JSON.stringify({ returnUrl: `https://app.example.com/${"x".repeat(1024 * 1024)}` });
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token, body: big })).status).toBe(413);
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`)).status).toBe(401);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`)).status).toBe(401);
  });
});

/** Ages the stored token: obtained `ageS` seconds ago, expiring in `leftS` seconds. */
const age = (id: string, ageS: number, leftS: number) =>
  srv.services.db
    .knex("mcp_servers")
    .where({ id })
    .update({ oauth_obtained_at: new Date(Date.now() - ageS * 1000).toISOString(), oauth_expires_at: new Date(Date.now() + leftS * 1000).toISOString() });

describe("keeping tokens fresh", () => {
  test("when a 30-second token is used several times while more than half its life remains, then it is not refreshed", async () => {
    const p = await peer({ accessTokenTtlSeconds: 30 });
    const { token, id } = await register(p);
    await connect(p, token, id);
    for (let i = 0; i < 3; i++) expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })).json.connectorStatus).toBe("connected");
    expect(p.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(0);
  });

  test.each([
    // [lifetime s, seconds left, refreshed?]: the margin is min(60 s, half the lifetime).
    [30, 16, false],
    [30, 14, true],
    [3600, 61, false],
    [3600, 59, true],
    [10, 6, false],
    [10, 4, true],
  ])("when a %i s token has %i s left, then refreshed is %s", async (lifetime, left, refreshed) => {
    const { needsRenewal } = await import("../server/domain/oauth/rules.js");
    const now = Date.parse("2026-12-01T12:00:00.000Z");
    const obtained = new Date(now - (lifetime - left) * 1000).toISOString();
    const expires = new Date(now + left * 1000).toISOString();
    expect(needsRenewal(expires, obtained, now)).toBe(refreshed);
  });

  test("when the lifetime is unknown (a token stored before issue 18), then the margin is 60 s", async () => {
    const { needsRenewal } = await import("../server/domain/oauth/rules.js");
    const now = Date.now();
    expect(needsRenewal(new Date(now + 59_000).toISOString(), null, now)).toBe(true);
    expect(needsRenewal(new Date(now + 61_000).toISOString(), null, now)).toBe(false);
    expect(needsRenewal(null, null, now)).toBe(false);
  });

  test("when the access token is about to expire, then it is refreshed before use and the rotated refresh token is kept", async () => {
    const p = await peer({ accessTokenTtlSeconds: 30 });
    const { token, id, ws } = await register(p);
    await connect(p, token, id);
    await age(id, 20, 10);
    const first = await srv.services.servers.openSecrets(ws, id);
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })).json.connectorStatus).toBe("connected");
    const second = await srv.services.servers.openSecrets(ws, id);
    expect(p.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(1);
    expect(second.oauthAccessToken).not.toBe(first.oauthAccessToken);
    expect(second.oauthRefreshToken).not.toBe(first.oauthRefreshToken);
    // The rotated refresh token works for the next refresh.
    await age(id, 20, 10);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/tools`, { token })).status).toBe(200);
    expect(p.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(2);
  });

  test("when several checks race on an expiring token, then only one refresh reaches the authorization server", async () => {
    const p = await peer({ accessTokenTtlSeconds: 600, rotateRefreshTokens: true });
    const { token, id } = await register(p);
    await connect(p, token, id);
    // Due in 30 s: inside the one-minute margin, so the next use refreshes it.
    await age(id, 570, 30);
    const results = await Promise.all(Array.from({ length: 4 }, () => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })));
    expect(results.map((r) => r.json.connectorStatus)).toEqual(["connected", "connected", "connected", "connected"]);
    expect(p.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(1);
  });

  test("when a refresh fails slowly while several calls wait on it, then the authorization server is asked once and the next call retries", async () => {
    const p = await peer({ accessTokenTtlSeconds: 600 });
    const { token, id } = await register(p);
    await connect(p, token, id);
    await age(id, 570, 30);
    // The token endpoint answers 503 after 300 ms: every waiter used to win the lock in turn and ask again.
    p.failTokenRequests(300);
    const results = await Promise.all(Array.from({ length: 3 }, () => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })));
    expect(results.map((r) => r.json.connectorStatus)).toEqual(["error", "error", "error"]);
    expect(p.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(1);
    // The failure is not remembered: once the authorization server is back, the next use refreshes.
    p.failTokenRequests(null);
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })).json.connectorStatus).toBe("connected");
    expect(p.tokenRequests.filter((r) => r.grant_type === "refresh_token")).toHaveLength(2);
  });

  test("when the authorization server rejects the refresh, then the server is disconnected with a re-authorize message", async () => {
    const p = await peer({ accessTokenTtlSeconds: 30 });
    const { token, id } = await register(p);
    await connect(p, token, id);
    await p.revokeAllGrants();
    await age(id, 20, 10);
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    expect(check.json.error).toMatchObject({ class: "auth" });
    const record = (await get(token, id)).json;
    expect(record.connectorStatus).toBe("disconnected");
    expect(record.lastError.message).toMatch(/re-authorize/);
    expect(record.oauthExpiresAt).toBeNull();
  });
});

describe("client credentials", () => {
  test("when a server has a token endpoint and no authorization endpoint, then the product gets tokens itself and connects", async () => {
    const p = await peer();
    const { token, id } = await register(p, { oauthTokenEndpoint: p.tokenEndpoint });
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    expect(check.json).toMatchObject({ connectorStatus: "connected", error: null });
    expect(p.tokenRequests.map((r) => r.grant_type)).toContain("client_credentials");
    expect((await get(token, id)).json.oauthExpiresAt).not.toBeNull();
    // Authorizing makes no sense for it.
    expect((await authorize(token, id)).status).toBe(400);
  });
});

describe("DELETE /api/mcp-servers/{id}/oauth", () => {
  test("when a connected server is disconnected, then its tokens are revoked and forgotten", async () => {
    const p = await peer();
    const { token, id, ws } = await register(p);
    await connect(p, token, id);
    const res = await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`, { token });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ connectorStatus: "disconnected", oauthExpiresAt: null, hasOauthClientSecret: true });
    expect(res.headers.get("etag")).toMatch(/^"v\d+"$/);
    expect(p.revocations.length).toBeGreaterThan(0);
    const secrets = await srv.services.servers.openSecrets(ws, id);
    expect([secrets.oauthAccessToken, secrets.oauthRefreshToken]).toEqual([null, null]);
    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token });
    expect(events.json.data[0].type).toBe("oauth_disconnected");
  });

  test("when the OAuth client settings change with PATCH, then stored tokens are dropped and the server is disconnected", async () => {
    const p = await peer();
    const { token, id, ws } = await register(p);
    await connect(p, token, id);
    const res = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify({ oauthScopes: "mcp:tools other" }) });
    expect(res.json).toMatchObject({ connectorStatus: "disconnected", oauthExpiresAt: null });
    expect((await srv.services.servers.openSecrets(ws, id)).oauthAccessToken).toBeNull();
  });
});

test("the client secret given at create is never echoed", async () => {
  const ws = uniqueWorkspace();
  const token = await srv.token([ws]);
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token,
    body: JSON.stringify({ workspaceId: ws, name: "s", url: "http://127.0.0.1:9/mcp", authType: "oauth", oauthClientId: "c", oauthClientSecret: CLIENT_SECRET_MARK }),
  });
  expect(res.text).not.toContain(CLIENT_SECRET_MARK);
});
