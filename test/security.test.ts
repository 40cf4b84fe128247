// Issue 15: credentials stay bound to where they were given, and hostile servers can neither
// steer nor exhaust the product. Each test has a hostile peer on loopback that records what
// it receives.
import { createHash } from "node:crypto";
import { statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { endlessJson, json, slowDrip, startHostilePeer, type HostilePeer } from "./helpers/hostile-peer.js";
import { startStreamablePeer, type Peer } from "./helpers/mcp-peers.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { sealLegacyToOrigins } from "../server/data/key-rotation.js";
import { createMcpServerRepo } from "../server/data/mcp-server-repo.js";
import { nameKey } from "../server/domain/rules.js";
import { namespaceOf } from "../server/domain/names.js";
import { raw, startServer, STORE, storeContents, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const TIMEOUT_MS = 1500;
const MAX_RESPONSE_BYTES = 256 * 1024;
let srv: TestServer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  srv = await startServer({
    env: {
      MCP_API_ALLOW_PRIVATE_NETWORK: "true",
      MCP_API_CONNECT_TIMEOUT_MS: String(TIMEOUT_MS),
      MCP_API_MAX_RESPONSE_BYTES: String(MAX_RESPONSE_BYTES),
      MCP_API_OAUTH_RETURN_URLS: "https://app.example.com,https://tools.example.org/back/",
    },
  });
});
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});
afterAll(async () => {
  await srv?.stop();
});

async function hostile(...args: Parameters<typeof startHostilePeer>) {
  const p = await startHostilePeer(...args);
  cleanups.push(p.close);
  return p;
}
async function oauthPeer() {
  const p = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback` });
  cleanups.push(p.close);
  return p;
}
async function mcpPeer(options: Parameters<typeof startStreamablePeer>[0] = {}) {
  const p: Peer = await startStreamablePeer(options);
  cleanups.push(p.close);
  return p;
}

async function workspace() {
  const ws = uniqueWorkspace();
  return { ws, token: await srv.token([ws], "usr_sec") };
}
async function create(token: string, body: Record<string, unknown>) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ name: `s-${Math.random()}`, ...body }) });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; workspaceId: string };
}
const patch = (token: string, id: string, body: unknown) => raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify(body) });
const check = (token: string, id: string) => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
const get = (token: string, id: string) => raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token });
const events = async (token: string, id: string) => (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token })).json.data as { type: string; fields: { name: string; change: string }[] }[];
const authorize = (token: string, id: string, body?: unknown) =>
  raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token, body: body === undefined ? undefined : JSON.stringify(body) });
const callback = (url: string) => fetch(url.replace(/^http:\/\/localhost:/, "http://127.0.0.1:"), { redirect: "manual" });
const everything = (p: HostilePeer) => p.received.map((r) => JSON.stringify(r)).join("\n");

async function connectOAuth(p: OAuthPeer, token: string, id: string) {
  const started = await authorize(token, id);
  expect(started.status, started.text).toBe(200);
  const res = await callback(await p.login(started.json.authorizationUrl));
  expect(res.status, await res.text()).toBe(200);
}

describe("credentials are bound to their destination origin", () => {
  test("when url moves to another origin without the key, then the key is cleared and the new origin never sees it", async () => {
    const { ws, token } = await workspace();
    const legit = await mcpPeer({ bearer: "sk_live_bound_1234" });
    const collector = await hostile();
    const { id } = await create(token, { workspaceId: ws, url: legit.url, authType: "api_key", apiKey: "sk_live_bound_1234" });

    const moved = await patch(token, id, { url: `${collector.origin}/mcp` });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.json.hasApiKey).toBe(false);
    const cleared = (await events(token, id)).find((e) => e.type === "credentials_cleared");
    expect(cleared?.fields).toEqual([{ name: "apiKey", change: "cleared" }]);

    await check(token, id);
    expect(collector.received.length).toBeGreaterThan(0);
    expect(everything(collector)).not.toContain("sk_live_bound_1234");
  });

  test("when url changes only its path, then the key is kept and still sent", async () => {
    const { ws, token } = await workspace();
    const legit = await mcpPeer({ bearer: "sk_live_same_origin" });
    const { id } = await create(token, { workspaceId: ws, url: `${new URL(legit.url).origin}/old`, authType: "api_key", apiKey: "sk_live_same_origin" });
    const moved = await patch(token, id, { url: legit.url });
    expect(moved.json.hasApiKey).toBe(true);
    expect((await check(token, id)).json).toMatchObject({ connectorStatus: "connected" });
  });

  test("when url moves with the key given again, then the new key is sent to the new origin", async () => {
    const { ws, token } = await workspace();
    const first = await mcpPeer({ bearer: "sk_first" });
    const second = await mcpPeer({ bearer: "sk_second" });
    const { id } = await create(token, { workspaceId: ws, url: first.url, authType: "api_key", apiKey: "sk_first" });
    const moved = await patch(token, id, { url: second.url, apiKey: "sk_second" });
    expect(moved.json.hasApiKey).toBe(true);
    expect((await check(token, id)).json).toMatchObject({ connectorStatus: "connected" });
    expect((await events(token, id)).some((e) => e.type === "credentials_cleared")).toBe(false);
  });

  test("when an OAuth server's url moves to another origin, then its tokens are dropped and never reach the new origin", async () => {
    const p = await oauthPeer();
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl, authType: "oauth", oauthClientId: p.clientId, oauthClientSecret: p.clientSecret, oauthScopes: "mcp:tools" });
    await connectOAuth(p, token, id);
    const secrets = await srv.services.servers.openSecrets(ws, id);
    expect(secrets.oauthAccessToken).toBeTruthy();

    const collector = await hostile();
    const moved = await patch(token, id, { url: `${collector.origin}/mcp` });
    expect(moved.json).toMatchObject({ connectorStatus: "disconnected", oauthExpiresAt: null });
    const cleared = (await events(token, id)).find((e) => e.type === "credentials_cleared");
    expect(cleared?.fields.map((f) => f.name).sort()).toEqual(["oauthAccessToken", "oauthRefreshToken"]);
    await check(token, id);
    for (const secret of [secrets.oauthAccessToken!, secrets.oauthRefreshToken!, p.clientSecret]) expect(everything(collector)).not.toContain(secret);
  });

  test("when the token endpoint moves to another origin, then the client secret is cleared and never reaches it", async () => {
    const p = await oauthPeer();
    const { ws, token } = await workspace();
    // Client credentials: a token endpoint and no authorization endpoint.
    const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl, authType: "oauth", oauthClientId: p.clientId, oauthClientSecret: p.clientSecret, oauthScopes: "mcp:tools", oauthTokenEndpoint: p.tokenEndpoint });
    const collector = await hostile((_req, res) => json(res, 400, { error: "invalid_client" }));
    const moved = await patch(token, id, { oauthTokenEndpoint: `${collector.origin}/token` });
    expect(moved.json.hasOauthClientSecret).toBe(false);
    expect((await events(token, id)).find((e) => e.type === "credentials_cleared")?.fields).toContainEqual({ name: "oauthClientSecret", change: "cleared" });
    await check(token, id);
    const basic = Buffer.from(`${p.clientId}:${p.clientSecret}`).toString("base64");
    expect(everything(collector)).not.toContain(p.clientSecret);
    expect(everything(collector)).not.toContain(basic);
  });

  test("when a row is repointed behind the product's back, then its sealed secrets no longer open", async () => {
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: "sk_sealed_to_origin" });
    expect((await srv.services.servers.openSecrets(ws, id)).apiKey).toBe("sk_sealed_to_origin");
    await srv.services.db.knex("mcp_servers").where({ id }).update({ url: "https://collector.example.net/mcp" });
    await expect(srv.services.servers.openSecrets(ws, id)).rejects.toThrow();
  });
});

describe("credentials sealed before origin binding", () => {
  test("when the product starts on a store with such credentials, then they are re-sealed to their record's origin", async () => {
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: "sk_from_before" });
    // What an earlier version wrote: associated data without the origin.
    const legacy = srv.services.box.seal("sk_from_before", { recordId: id, workspaceId: ws, field: "apiKey" });
    expect(legacy.startsWith("v1:")).toBe(true);
    await srv.services.db.knex("mcp_servers").where({ id }).update({ api_key_enc: legacy });
    await expect(srv.services.servers.openSecrets(ws, id)).rejects.toThrow(/predates origin binding/);

    const outcome = await sealLegacyToOrigins(srv.services.db.knex, srv.services.box);
    expect(outcome.rotated).toBeGreaterThanOrEqual(1);
    expect((await srv.services.db.knex("mcp_servers").where({ id }).first()).api_key_enc).toMatch(/^v2:/);
    expect((await srv.services.servers.openSecrets(ws, id)).apiKey).toBe("sk_from_before");
  });
});

describe("pinned endpoints win over discovery", () => {
  /** An MCP server whose 401 names protected resource metadata that points at `as` and claims `resource`. */
  function hostileMcp(mcp: HostilePeer, as: HostilePeer, resource: string) {
    mcp.handle((req, res) => {
      if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource, authorization_servers: [as.origin] });
      res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${mcp.origin}/.well-known/oauth-protected-resource/mcp"` }).end();
    });
    as.handle((req, res) =>
      json(res, 200, {
        issuer: as.origin,
        authorization_endpoint: `${as.origin}/authorize`,
        token_endpoint: `${as.origin}/token`,
        revocation_endpoint: `${as.origin}/revoke`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
      }),
    );
  }

  test("when the MCP server names a hostile authorization server, then nothing goes to it and the pinned endpoints are used", async () => {
    const p = await oauthPeer();
    const mcp = await hostile();
    const evil = await hostile();
    hostileMcp(mcp, evil, "https://victim.example/mcp");
    const { ws, token } = await workspace();
    const { id } = await create(token, {
      workspaceId: ws,
      url: `${mcp.origin}/mcp`,
      authType: "oauth",
      oauthClientId: p.clientId,
      oauthClientSecret: p.clientSecret,
      oauthScopes: "mcp:tools",
      oauthAuthorizationEndpoint: p.authorizationEndpoint,
      oauthTokenEndpoint: p.tokenEndpoint,
    });
    const started = await authorize(token, id);
    if (started.status === 200) {
      const url = new URL(started.json.authorizationUrl);
      expect(url.origin + url.pathname).toBe(p.authorizationEndpoint);
      expect(url.searchParams.get("resource")).not.toBe("https://victim.example/mcp");
    } else {
      expect(started.status).toBe(502);
      expect(started.json.detail).toMatch(/resource/);
    }
    await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/oauth`, { token });
    expect(evil.received).toEqual([]);
    expect(everything(mcp)).not.toContain(p.clientSecret);
  });

  test("when protected resource metadata names another resource, then authorization is refused with class auth", async () => {
    const mcp = await hostile();
    const as = await hostile();
    hostileMcp(mcp, as, "https://victim.example/mcp");
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: `${mcp.origin}/mcp`, authType: "oauth", oauthClientId: "product" });
    const res = await authorize(token, id);
    expect(res.status).toBe(502);
    expect(res.json.detail).toMatch(/^auth: .*resource/);
    expect(as.received.filter((r) => r.path.includes("token") || r.path.includes("authorize"))).toEqual([]);
  });
});

describe("outbound work is bounded", () => {
  test("when the authorization server drips its metadata a byte a second, then authorize answers within the deadline and no socket stays open", async () => {
    const mcp = await hostile();
    const as = await hostile();
    mcp.handle((req, res) => {
      if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource: `${mcp.origin}/mcp`, authorization_servers: [as.origin] });
      res.writeHead(401, { "www-authenticate": "Bearer" }).end();
    });
    as.handle((_req, res) => slowDrip(res));
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: `${mcp.origin}/mcp`, authType: "oauth", oauthClientId: "product" });
    const res = await authorize(token, id);
    expect([502, 504]).toContain(res.status);
    expect(as.received.length).toBeGreaterThan(0);
    expect(await as.settled()).toBe(0);
  });

  test("when the authorization server's metadata never ends, then the read stops at the cap and no socket stays open", async () => {
    const mcp = await hostile();
    const as = await hostile();
    mcp.handle((req, res) => {
      if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource: `${mcp.origin}/mcp`, authorization_servers: [as.origin] });
      res.writeHead(401, { "www-authenticate": "Bearer" }).end();
    });
    as.handle((_req, res) => endlessJson(res));
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: `${mcp.origin}/mcp`, authType: "oauth", oauthClientId: "product" });
    const res = await authorize(token, id);
    expect(res.status).toBe(502);
    expect(await as.settled()).toBe(0);
  });

  test("when an MCP server answers tools/list with more than the cap, then the check fails with a size error and /tools with 502", async () => {
    const mcp = await hostile((req, res) => {
      const message = JSON.parse(req.body || "{}");
      if (message.method === "initialize") {
        return json(res, 200, { jsonrpc: "2.0", id: message.id, result: { protocolVersion: message.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "big", version: "1" } } });
      }
      if (message.method === "tools/list") return endlessJson(res);
      // A 2025 server: unknown requests (server/discover) get "method not found"; notifications 202.
      if (message.id !== undefined) return json(res, 200, { jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } });
      res.writeHead(202).end();
    });
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: `${mcp.origin}/mcp` });
    const result = await check(token, id);
    expect(result.json).toMatchObject({ connectorStatus: "error", error: { class: "protocol" } });
    expect(result.json.error.message).toMatch(/larger than/);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/tools`, { token })).status).toBe(502);
    expect(await mcp.settled()).toBe(0);
  });

  test("when the caller of /test goes away, then the check stops and its socket to the MCP server is closed", async () => {
    // A deadline far away, so only the caller leaving can end the exchange.
    const patient = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "120000" } });
    cleanups.push(() => patient.stop());
    const mcp = await hostile(() => {
      /* accepts the request and never answers */
    });
    const ws = uniqueWorkspace();
    const token = await patient.token([ws]);
    const created = await raw(patient.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "silent", url: `${mcp.origin}/mcp` }) });
    const before = (await raw(patient.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token })).headers.get("etag");
    const leaving = new AbortController();
    const pending = fetch(`${patient.baseUrl}/api/mcp-servers/${created.json.id}/test`, { method: "POST", headers: { authorization: `Bearer ${token}` }, signal: leaving.signal }).catch(() => null);
    while (mcp.received.length === 0) await new Promise((r) => setTimeout(r, 20));
    expect(await mcp.openSockets()).toBeGreaterThan(0);
    leaving.abort();
    await pending;
    expect(await mcp.settled(10_000)).toBe(0);
    // The cut-short check is not recorded as the server's state.
    expect((await raw(patient.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token })).headers.get("etag")).toBe(before);
  });

  test("when an error message is huge, then what is stored and served is truncated", async () => {
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: "https://mcp.example.com/mcp" });
    const repo = createMcpServerRepo(srv.services.db.knex, srv.services.box, nameKey, namespaceOf);
    const stored = (await repo.find([ws], id))!;
    const huge = "y".repeat(3_700_000);
    await repo.recordCheck(stored, { connectorStatus: "error", checkedAt: new Date().toISOString(), error: { class: "protocol", message: huge, httpStatus: null } });
    const row = await srv.services.db.knex("mcp_servers").where({ id }).first();
    expect(row.last_error.length).toBeLessThan(1000);
    // A row written before the cap existed is served cut as well.
    await srv.services.db.knex("mcp_servers").where({ id }).update({ last_error: JSON.stringify({ class: "protocol", message: huge, httpStatus: null }) });
    const served = (await get(token, id)).json.lastError.message as string;
    expect(served.length).toBeLessThanOrEqual(500);
    const page = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token });
    expect(page.text.length).toBeLessThan(5000);
  });
});

describe("return URLs are compared as parsed URLs", () => {
  test.each([
    "https://app.example.com.evil.example/x",
    "https://app.example.com@evil.example/x",
    "https://app.example.comevil.example/x",
    "https://user@app.example.com/x",
    "http://app.example.com/x",
    "https://tools.example.org/backdoor",
    "https://tools.example.org/",
  ])("when returnUrl is %s, then 400", async (returnUrl) => {
    const p = await oauthPeer();
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl, authType: "oauth", oauthClientId: p.clientId, oauthClientSecret: p.clientSecret, oauthScopes: "mcp:tools" });
    const res = await authorize(token, id, { returnUrl });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].path).toBe("/returnUrl");
  });

  test.each(["https://app.example.com/settings?tab=1", "https://tools.example.org/back/", "https://tools.example.org/back/done"])(
    "when returnUrl is %s, then it is accepted",
    async (returnUrl) => {
      const p = await oauthPeer();
      const { ws, token } = await workspace();
      const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl, authType: "oauth", oauthClientId: p.clientId, oauthClientSecret: p.clientSecret, oauthScopes: "mcp:tools" });
      expect((await authorize(token, id, { returnUrl })).status).toBe(200);
    },
  );
});

describe("secrets stay out of hashes and files", () => {
  test("when a create carries an Idempotency-Key, then the store holds no unsalted hash of its body", async () => {
    const { ws, token } = await workspace();
    const body = { workspaceId: ws, name: "idem", url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: "sk_guessable" };
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(body), headers: { "idempotency-key": "k-1" } });
    expect(res.status).toBe(201);
    const sorted = (v: Record<string, unknown>) => `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(v[k])}`).join(",")}}`;
    const unsalted = createHash("sha256").update(sorted(body)).digest("hex");
    const dump = await storeContents(srv);
    expect(dump).toContain("k-1");
    expect(dump).not.toContain(unsalted);
    expect(dump).not.toContain("sk_guessable");
  });

  test.skipIf(STORE !== "sqlite")("when the store is SQLite, then the database and its -wal and -shm files are readable by the owner only", async () => {
    const files = readdirSync(srv.dataDir).filter((f) => f.startsWith("mcp-api.sqlite"));
    expect(files).toEqual(expect.arrayContaining(["mcp-api.sqlite", "mcp-api.sqlite-wal", "mcp-api.sqlite-shm"]));
    for (const f of files) expect((statSync(join(srv.dataDir, f)).mode & 0o777).toString(8), f).toBe("600");
  });
});

describe("token-endpoint errors are classified", () => {
  test("when the token endpoint answers 503 during a refresh, then the connection and its refresh token are kept", async () => {
    const p = await oauthPeer();
    let failing = false;
    // A loopback proxy in front of the real token endpoint that can be made to fail.
    const proxy = await hostile(async (req, res) => {
      if (failing) return void res.writeHead(503, { "content-type": "text/html" }).end("<h1>down for maintenance</h1>");
      const upstream = await fetch(p.tokenEndpoint, {
        method: req.method,
        headers: { "content-type": String(req.headers["content-type"]), authorization: String(req.headers.authorization ?? "") },
        body: req.body,
      });
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" }).end(await upstream.text());
    });
    const { ws, token } = await workspace();
    const { id } = await create(token, {
      workspaceId: ws,
      url: p.mcpUrl,
      authType: "oauth",
      oauthClientId: p.clientId,
      oauthClientSecret: p.clientSecret,
      oauthScopes: "mcp:tools",
      oauthAuthorizationEndpoint: p.authorizationEndpoint,
      oauthTokenEndpoint: `${proxy.origin}/token`,
    });
    await connectOAuth(p, token, id);
    const before = await srv.services.servers.openSecrets(ws, id);
    expect(before.oauthRefreshToken).toBeTruthy();

    await srv.services.db.knex("mcp_servers").where({ id }).update({ oauth_expires_at: new Date(Date.now() - 1000).toISOString() });
    failing = true;
    const result = await check(token, id);
    expect(result.json.connectorStatus).toBe("error");
    expect(result.json.error.message).not.toContain("maintenance");
    expect((await get(token, id)).json.connectorStatus).not.toBe("disconnected");
    expect((await srv.services.servers.openSecrets(ws, id)).oauthRefreshToken).toBe(before.oauthRefreshToken);

    failing = false;
    expect((await check(token, id)).json).toMatchObject({ connectorStatus: "connected" });
  });
});
