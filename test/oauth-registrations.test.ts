// Issue 18 item 1: dynamic registrations no record can steer. Workspace B tries to reach the
// secret of a client workspace A registered, by repointing its own record while the product
// works; a collector on loopback records whatever reaches it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { json, slowDrip, startHostilePeer, type HostilePeer } from "./helpers/hostile-peer.js";
import { startOAuthPeer, type OAuthPeer, type OAuthPeerOptions } from "./helpers/oauth-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "5000" } });
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});
afterAll(async () => {
  await srv?.stop();
});

async function peer(options: Partial<OAuthPeerOptions> = {}): Promise<OAuthPeer> {
  const p = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback`, ...options });
  cleanups.push(p.close);
  return p;
}
async function hostile(): Promise<HostilePeer> {
  const p = await startHostilePeer();
  cleanups.push(p.close);
  return p;
}
async function workspace(user: string) {
  const ws = uniqueWorkspace();
  return { ws, token: await srv.token([ws], user) };
}
async function create(token: string, body: Record<string, unknown>) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ name: `r-${Math.random()}`, authType: "oauth", ...body }) });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string };
}
const get = (token: string, id: string) => raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token });
const patch = (token: string, id: string, body: Record<string, unknown>) =>
  raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify(body) });
const authorize = (token: string, id: string) => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token });
const callback = (url: string) => fetch(url.replace(/^http:\/\/localhost:/, "http://127.0.0.1:"), { redirect: "manual" });
const stateOf = (authorizationUrl: string) => new URL(authorizationUrl).searchParams.get("state")!;
// B plays the authorization server's redirect itself; the issuer (RFC 9207 iss) is public.
const forged = (authorizationUrl: string, issuer: string) =>
  `${srv.baseUrl}/api/oauth/callback?state=${stateOf(authorizationUrl)}&code=x&iss=${encodeURIComponent(issuer)}`;

/** Workspace A authorizes at `p` with a dynamically registered client; returns its client id. */
async function registerForA(p: OAuthPeer) {
  const a = await workspace("usr_a");
  const { id } = await create(a.token, { workspaceId: a.ws, url: p.mcpUrl, oauthScopes: "mcp:tools" });
  const started = await authorize(a.token, id);
  expect(started.status, started.text).toBe(200);
  expect(p.registrations).toHaveLength(1);
  const res = await callback(await p.login(started.json.authorizationUrl));
  expect(res.status).toBe(200);
  return { ...a, id, clientId: new URL(started.json.authorizationUrl).searchParams.get("client_id")! };
}

/** B's own MCP server: points at A's authorization server, and can hold the discovery probe. */
async function bServer(p: OAuthPeer) {
  const mcp = await hostile();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let stall = false;
  let probed!: () => void;
  const probe = new Promise<void>((r) => (probed = r));
  mcp.handle(async (req, res) => {
    if (req.path.startsWith("/.well-known/oauth-protected-resource")) {
      return json(res, 200, { resource: `${mcp.origin}/mcp`, authorization_servers: [p.issuer] });
    }
    if (req.method === "POST" && req.path === "/mcp" && stall) {
      probed();
      await released;
    }
    res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${mcp.origin}/.well-known/oauth-protected-resource/mcp"` }).end();
  });
  return { mcp, url: `${mcp.origin}/mcp`, stallNextProbe: () => (stall = true), probe, release };
}

function collector() {
  return hostile().then((c) => {
    c.handle((_req, res) => json(res, 200, { access_token: "collected", token_type: "Bearer", expires_in: 3600 }));
    return c;
  });
}

describe("dynamic registrations", () => {
  test("when B repoints its token endpoint while its server stalls discovery and then calls the callback itself, then the collector receives nothing and B's record is unchanged", async () => {
    const p = await peer({ dynamicRegistration: true });
    await registerForA(p);
    const sink = await collector();
    const b = await workspace("usr_b");
    const bs = await bServer(p);
    const { id } = await create(b.token, {
      workspaceId: b.ws,
      url: bs.url,
      oauthTokenEndpoint: p.tokenEndpoint,
      oauthAuthorizationEndpoint: p.authorizationEndpoint,
    });

    bs.stallNextProbe();
    const starting = authorize(b.token, id);
    await bs.probe;
    const repointed = await patch(b.token, id, { oauthTokenEndpoint: `${sink.origin}/token` });
    expect(repointed.status, repointed.text).toBe(200);
    const after = await get(b.token, id);
    bs.release();
    const started = await starting;

    if (started.status === 200) {
      const res = await callback(forged(started.json.authorizationUrl, p.issuer));
      await res.text();
    }
    expect(sink.received).toEqual([]);
    const now = await get(b.token, id);
    expect(now.headers.get("etag")).toBe(after.headers.get("etag"));
    expect(now.json).toEqual(after.json);
    // The flow itself says why it stopped, naming what changed.
    expect(started.status, started.text).toBe(409);
    expect(started.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(started.json.detail).toContain("oauthTokenEndpoint");
  });

  test("when B repoints its token endpoint after a completed start and calls the callback, then nothing reaches the collector", async () => {
    const p = await peer({ dynamicRegistration: true });
    await registerForA(p);
    const sink = await collector();
    const b = await workspace("usr_b");
    const bs = await bServer(p);
    const { id } = await create(b.token, { workspaceId: b.ws, url: bs.url, oauthTokenEndpoint: p.tokenEndpoint, oauthAuthorizationEndpoint: p.authorizationEndpoint });
    const started = await authorize(b.token, id);
    expect(started.status, started.text).toBe(200);
    expect((await patch(b.token, id, { oauthTokenEndpoint: `${sink.origin}/token` })).status).toBe(200);
    const res = await callback(forged(started.json.authorizationUrl, p.issuer));
    await res.text();
    expect(sink.received).toEqual([]);
    expect((await get(b.token, id)).json.connectorStatus).not.toBe("connected");
  });

  test("when two workspaces authorize at one authorization server, then each has its own client and neither learns of the other's", async () => {
    const p = await peer({ dynamicRegistration: true });
    const a = await registerForA(p);
    const b = await workspace("usr_b");
    const { id } = await create(b.token, { workspaceId: b.ws, url: p.mcpUrl, oauthScopes: "mcp:tools" });
    const started = await authorize(b.token, id);
    expect(started.status, started.text).toBe(200);
    expect(p.registrations).toHaveLength(2);
    expect(new URL(started.json.authorizationUrl).searchParams.get("client_id")).not.toBe(a.clientId);
    expect(started.text).not.toContain(a.clientId);
  });

  test("when a token endpoint other than the registration's answers invalid_client, then the registration is kept", async () => {
    const p = await peer({ dynamicRegistration: true });
    const a = await registerForA(p);
    const rejecting = await hostile();
    rejecting.handle((_req, res) => json(res, 401, { error: "invalid_client" }));
    // A's own record pins a token endpoint elsewhere after the registration was made.
    const moved = await patch(a.token, a.id, { oauthTokenEndpoint: `${rejecting.origin}/token` });
    expect(moved.status, moved.text).toBe(200);
    await raw(srv.baseUrl, "POST", `/api/mcp-servers/${a.id}/test`, { token: a.token });
    const rows = await srv.services.db.knex("oauth_dynamic_clients").select("client_id");
    expect(rows.map((r: { client_id: string }) => r.client_id)).toContain(a.clientId);
    // A registration's secret is never sent to an endpoint its metadata did not name.
    expect(rejecting.received.filter((r) => /basic/i.test(String(r.headers.authorization ?? "")) || r.body.includes("client_secret"))).toEqual([]);
  });

  test("when the registration's own token endpoint answers invalid_client, then the registration is forgotten and the next authorization registers again", async () => {
    const p = await peer({ dynamicRegistration: true });
    const a = await registerForA(p);
    // Drop A's client at the authorization server: its own token endpoint now answers invalid_client.
    await srv.services.db.knex("mcp_servers").where({ id: a.id }).update({ oauth_expires_at: new Date(Date.now() - 1000).toISOString() });
    await p.forgetClient(a.clientId);
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${a.id}/test`, { token: a.token });
    expect(check.json.connectorStatus).not.toBe("connected");
    expect(await srv.services.db.knex("oauth_dynamic_clients").where({ client_id: a.clientId }).first()).toBeUndefined();
    const again = await authorize(a.token, a.id);
    expect(again.status, again.text).toBe(200);
    expect(p.registrations).toHaveLength(2);
  });
});

/** An MCP server and its authorization server on loopback, whose token endpoint can be held. */
async function heldTokenEndpoint() {
  const mcp = await hostile();
  const as = await hostile();
  let hold: Promise<void> | null = null;
  let release!: () => void;
  let arrived!: () => void;
  let arrival = new Promise<void>((r) => (arrived = r));
  mcp.handle((req, res) => {
    if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource: `${mcp.origin}/mcp`, authorization_servers: [as.origin] });
    res.writeHead(401, { "www-authenticate": "Bearer" }).end();
  });
  as.handle(async (req, res) => {
    if (req.path.startsWith("/.well-known/")) {
      return json(res, 200, {
        issuer: as.origin,
        authorization_endpoint: `${as.origin}/authorize`,
        token_endpoint: `${as.origin}/token`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["none"],
      });
    }
    arrived();
    if (hold) await hold;
    json(res, 200, { access_token: `at-${Math.random()}`, token_type: "Bearer", expires_in: 3600, refresh_token: `rt-${Math.random()}` });
  });
  return {
    url: `${mcp.origin}/mcp`,
    as,
    holdNext() {
      hold = new Promise<void>((r) => (release = r));
      arrival = new Promise<void>((r) => (arrived = r));
    },
    arrived: () => arrival,
    release: () => release(),
  };
}

describe("OAuth writes after outbound work", () => {
  test("when the record's scopes change while the callback exchanges the code, then the page is a 409 naming oauthScopes and the tokens are not stored", async () => {
    const peers = await heldTokenEndpoint();
    const { ws, token } = await workspace("usr_c");
    const { id } = await create(token, { workspaceId: ws, url: peers.url, oauthClientId: "public-client", oauthScopes: "read" });
    const started = await authorize(token, id);
    expect(started.status, started.text).toBe(200);
    peers.holdNext();
    const exchanging = callback(`${srv.baseUrl}/api/oauth/callback?state=${stateOf(started.json.authorizationUrl)}&code=c1`);
    await peers.arrived();
    expect((await patch(token, id, { oauthScopes: "read write" })).status).toBe(200);
    const after = await get(token, id);
    peers.release();
    const res = await exchanging;
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("oauthScopes");
    const now = await get(token, id);
    expect(now.headers.get("etag")).toBe(after.headers.get("etag"));
    expect(now.json.connectorStatus).not.toBe("connected");
  });

  test("when the record's token endpoint changes while a refresh runs, then the refreshed tokens are not stored", async () => {
    const peers = await heldTokenEndpoint();
    const { ws, token } = await workspace("usr_d");
    const { id } = await create(token, { workspaceId: ws, url: peers.url, oauthClientId: "public-client", oauthScopes: "read" });
    const started = await authorize(token, id);
    const done = await callback(`${srv.baseUrl}/api/oauth/callback?state=${stateOf(started.json.authorizationUrl)}&code=c1`);
    expect(done.status, await done.text()).toBe(200);
    await srv.services.db.knex("mcp_servers").where({ id }).update({ oauth_expires_at: new Date(Date.now() - 1000).toISOString() });
    peers.holdNext();
    const checking = raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    await peers.arrived();
    const sink = await collector();
    expect((await patch(token, id, { oauthTokenEndpoint: `${sink.origin}/token` })).status).toBe(200);
    const before = await srv.services.db.knex("mcp_servers").where({ id }).first();
    peers.release();
    const check = await checking;
    expect(check.json.connectorStatus, check.text).not.toBe("connected");
    const row = await srv.services.db.knex("mcp_servers").where({ id }).first();
    expect(row.oauth_access_token_enc).toBe(before.oauth_access_token_enc);
    expect(row.oauth_refresh_token_enc).toBe(before.oauth_refresh_token_enc);
    expect(sink.received).toEqual([]);
  });
});

describe("discovery failures (issue 20)", () => {
  async function closedPort() {
    const p = await startHostilePeer();
    const origin = p.origin;
    await p.close();
    return origin;
  }

  test("when the server refuses connections, then 502 names the metadata URL and the reason, and the record is unchanged", async () => {
    const origin = await closedPort();
    const { ws, token } = await workspace("usr_e");
    const { id } = await create(token, { workspaceId: ws, url: `${origin}/mcp` });
    const before = await get(token, id);
    const res = await authorize(token, id);
    expect(res.status, res.text).toBe(502);
    expect(res.json.detail).toContain(`${origin}/.well-known/oauth-protected-resource`);
    expect(res.json.detail).toMatch(/refused|connect/i);
    const after = await get(token, id);
    expect(after.headers.get("etag")).toBe(before.headers.get("etag"));
    expect(after.json.oauthTokenEndpoint).toBeNull();
  });

  test("when the protected resource metadata drips past the deadline, then 502 names it and no guessed endpoints are stored", async () => {
    const mcp = await hostile();
    mcp.handle((req, res) => {
      if (req.path === "/prm") return slowDrip(res);
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${mcp.origin}/prm"` }).end();
    });
    const { ws, token } = await workspace("usr_e");
    const { id } = await create(token, { workspaceId: ws, url: `${mcp.origin}/mcp` });
    const before = await get(token, id);
    const res = await authorize(token, id);
    expect(res.status, res.text).toBe(502);
    expect(res.json.detail).toContain(`${mcp.origin}/prm`);
    const after = await get(token, id);
    expect(after.headers.get("etag")).toBe(before.headers.get("etag"));
    expect(after.json).toMatchObject({ oauthTokenEndpoint: null, oauthAuthorizationEndpoint: null });
    expect(mcp.received.some((r) => r.path === "/authorize" || r.path === "/.well-known/oauth-authorization-server")).toBe(false);
  });

  test("when the server's name does not resolve (injected resolver), then discovery fails naming the URL and the reason", async () => {
    const { createGuardedFetch } = await import("../server/outbound/guarded-fetch.js");
    const { createOAuthClient, DiscoveryFailed } = await import("../server/outbound/oauth-client.js");
    const lookup = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND mcp.linear.example"), { code: "ENOTFOUND", hostname: "mcp.linear.example" });
    };
    const client = createOAuthClient(createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2000, lookup }));
    const err = await client.discover("https://mcp.linear.example/mcp").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscoveryFailed);
    expect((err as Error).message).toContain("https://mcp.linear.example/.well-known/oauth-protected-resource");
    expect((err as Error).message).toMatch(/resolve|ENOTFOUND|dns/i);
  });

  test("when the server answers and offers no metadata at all, then the 2025-03-26 defaults at its origin are used", async () => {
    const mcp = await hostile();
    mcp.handle((req, res) => {
      if (req.path.startsWith("/.well-known/")) return void res.writeHead(404).end();
      res.writeHead(401).end();
    });
    const { createGuardedFetch } = await import("../server/outbound/guarded-fetch.js");
    const { createOAuthClient } = await import("../server/outbound/oauth-client.js");
    const client = createOAuthClient(createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2000 }));
    const found = await client.discover(`${mcp.origin}/mcp`);
    expect(found).toMatchObject({ authorizationEndpoint: `${mcp.origin}/authorize`, tokenEndpoint: `${mcp.origin}/token` });
  });
});
