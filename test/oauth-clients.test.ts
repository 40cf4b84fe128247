// Issue 11: how the product identifies itself to an authorization server (pre-registered,
// client ID metadata document, dynamic registration), with oidc-provider as the real AS.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { readConfig } from "../server/config.js";
import { json, startHostilePeer, type HostilePeer } from "./helpers/hostile-peer.js";
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

async function peer(options: Partial<OAuthPeerOptions> = {}) {
  const p = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback`, ...options });
  cleanups.push(p.close);
  return p;
}
async function hostile() {
  const p: HostilePeer = await startHostilePeer();
  cleanups.push(p.close);
  return p;
}
async function workspace() {
  const ws = uniqueWorkspace();
  return { ws, token: await srv.token([ws], "usr_clients") };
}
async function create(token: string, body: Record<string, unknown>) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ name: `c-${Math.random()}`, authType: "oauth", ...body }) });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; oauthClientRegistration: string | null };
}
const get = (token: string, id: string) => raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token });
const authorize = (token: string, id: string) => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token });
const callback = (url: string) => fetch(url.replace(/^http:\/\/localhost:/, "http://127.0.0.1:"), { redirect: "manual" });

describe("client identity", () => {
  test("when the authorization server offers dynamic registration and no client id is given, then the product registers once and reuses it in that workspace", async () => {
    const p = await peer({ dynamicRegistration: true });
    const first = await workspace();
    const { id, oauthClientRegistration } = await create(first.token, { workspaceId: first.ws, url: p.mcpUrl, oauthScopes: "mcp:tools" });
    expect(oauthClientRegistration).toBeNull();

    const started = await authorize(first.token, id);
    expect(started.status, started.text).toBe(200);
    expect(p.registrations).toHaveLength(1);
    expect(p.registrations[0]).toMatchObject({ redirect_uris: [`${srv.baseUrl}/api/oauth/callback`], application_type: "web" });
    const clientId = new URL(started.json.authorizationUrl).searchParams.get("client_id");
    expect(clientId).not.toBe(p.clientId);
    const res = await callback(await p.login(started.json.authorizationUrl));
    expect(res.status, await res.text()).toBe(200);
    expect((await get(first.token, id)).json).toMatchObject({ oauthClientRegistration: "dynamic", connectorStatus: "connected" });
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token: first.token })).json).toMatchObject({ connectorStatus: "connected" });

    // Another record of the same workspace at the same authorization server reuses the registration
    // (another workspace's gets its own: test/oauth-registrations.test.ts).
    const other = await create(first.token, { workspaceId: first.ws, url: p.mcpUrl, oauthScopes: "mcp:tools" });
    const again = await authorize(first.token, other.id);
    expect(new URL(again.json.authorizationUrl).searchParams.get("client_id")).toBe(clientId);
    expect(p.registrations).toHaveLength(1);

    // The registered client's secret is kept encrypted and shown nowhere.
    const rows = await srv.services.db.knex("oauth_dynamic_clients").where({ client_id: clientId });
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row.client_secret_enc === null || String(row.client_secret_enc).startsWith("v2:")).toBe(true);
    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token: first.token });
    const shown = [started.text, again.text, events.text, (await get(first.token, id)).text, ...srv.logs].join("\n");
    if (row.client_secret_enc) {
      const { createOAuthRegistrationRepo } = await import("../server/data/oauth-registration-repo.js");
      const key = { workspaceId: row.workspace_id, issuer: row.issuer, registrationEndpoint: row.registration_endpoint, redirectUri: row.redirect_uri };
      const secret = (await createOAuthRegistrationRepo(srv.services.db.knex, srv.services.box).find(key))!.clientSecret!;
      expect(shown).not.toContain(secret);
    }
  });

  test("when neither a metadata document nor registration is offered and no client id is given, then 400 names oauthClientId and the redirect URI, and nothing changes", async () => {
    const p = await peer({ dynamicRegistration: false });
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl });
    const before = (await get(token, id)).headers.get("etag");
    const res = await authorize(token, id);
    expect(res.status).toBe(400);
    expect(res.json.errors[0].path).toBe("/oauthClientId");
    expect(res.json.errors[0].message).toContain(`${srv.baseUrl}/api/oauth/callback`);
    expect((await get(token, id)).headers.get("etag")).toBe(before);
  });

  test("when registration is off and a client id is given, then that client is used", async () => {
    const p = await peer({ dynamicRegistration: false });
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl, oauthClientId: p.clientId, oauthClientSecret: p.clientSecret, oauthScopes: "mcp:tools" });
    const started = await authorize(token, id);
    expect(new URL(started.json.authorizationUrl).searchParams.get("client_id")).toBe(p.clientId);
    expect((await callback(await p.login(started.json.authorizationUrl))).status).toBe(200);
    expect((await get(token, id)).json).toMatchObject({ oauthClientRegistration: "pre_registered", connectorStatus: "connected" });
  });

  test("when the authorization server supports client ID metadata documents, then the client id is the document's URL, which the product serves", async () => {
    const mcp = await hostile();
    const as = await hostile();
    mcp.handle((req, res) => {
      if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource: `${mcp.origin}/mcp`, authorization_servers: [as.origin] });
      res.writeHead(401, { "www-authenticate": "Bearer" }).end();
    });
    as.handle((_req, res) =>
      json(res, 200, {
        issuer: as.origin,
        authorization_endpoint: `${as.origin}/authorize`,
        token_endpoint: `${as.origin}/token`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
        client_id_metadata_document_supported: true,
        token_endpoint_auth_methods_supported: ["none"],
      }),
    );
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: `${mcp.origin}/mcp` });
    const started = await authorize(token, id);
    expect(started.status, started.text).toBe(200);
    const clientId = new URL(started.json.authorizationUrl).searchParams.get("client_id")!;
    expect(clientId).toBe(`${srv.baseUrl}/client-metadata.json`);
    expect((await get(token, id)).json.oauthClientRegistration).toBe("metadata_document");

    const doc = await fetch(clientId);
    expect(doc.status).toBe(200);
    expect(await doc.json()).toMatchObject({ client_id: clientId, redirect_uris: [`${srv.baseUrl}/api/oauth/callback`], token_endpoint_auth_method: "none" });
  });

  test("when the callback's iss is not the issuer, then the page refuses it and the record is unchanged", async () => {
    const p = await peer({ dynamicRegistration: true });
    const { ws, token } = await workspace();
    const { id } = await create(token, { workspaceId: ws, url: p.mcpUrl, oauthScopes: "mcp:tools" });
    const started = await authorize(token, id);
    const back = new URL(await p.login(started.json.authorizationUrl));
    const before = (await get(token, id)).headers.get("etag");
    back.searchParams.set("iss", "https://evil.example.com");
    const res = await callback(back.toString());
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("iss mismatch");
    expect((await get(token, id)).headers.get("etag")).toBe(before);
    expect(p.tokenRequests.filter((r) => r.grant_type === "authorization_code")).toHaveLength(0);
  });

  test("when oauthGrantType is client_credentials, then endpoints are discovered and the product gets a token itself", async () => {
    const p = await peer();
    const { ws, token } = await workspace();
    const { id } = await create(token, {
      workspaceId: ws,
      url: p.mcpUrl,
      oauthClientId: p.clientId,
      oauthClientSecret: p.clientSecret,
      oauthScopes: "mcp:tools",
      oauthGrantType: "client_credentials",
    });
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    expect(check.json, check.text).toMatchObject({ connectorStatus: "connected" });
    expect(p.tokenRequests.map((r) => r.grant_type)).toEqual(["client_credentials"]);
    expect((await authorize(token, id)).status).toBe(400);
  });
});

describe("MCP_API_PUBLIC_URL", () => {
  test.each([
    ["https://mcp-api.example.com", true],
    ["http://localhost:8080", true],
    ["http://127.0.0.1:9000/base", true],
    ["http://mcp-api.example.com", false],
    ["ftp://mcp-api.example.com", false],
    ["https://user:pw@mcp-api.example.com", false],
    ["not a url", false],
  ])("when it is %s, then start-up %s", (value, ok) => {
    const read = () => readConfig({ MCP_API_PUBLIC_URL: value });
    if (ok) expect(read().publicUrl).toBe(value.replace(/\/$/, ""));
    else expect(read).toThrow(/MCP_API_PUBLIC_URL must be an https URL/);
  });
});
