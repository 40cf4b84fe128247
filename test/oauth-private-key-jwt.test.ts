// Issue 20 item 6: private_key_jwt (RFC 7523) client authentication, for client credentials
// and for the code grant, against an authorization server on loopback that checks the assertion.
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { json, startHostilePeer, type HostilePeer } from "./helpers/hostile-peer.js";
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
async function hostile(): Promise<HostilePeer> {
  const p = await startHostilePeer();
  cleanups.push(p.close);
  return p;
}

const ec = () => generateKeyPairSync("ec", { namedCurve: "P-256" });
const pem = (k: KeyObject) => k.export({ format: "pem", type: "pkcs8" }).toString();

/** Checks an RFC 7523 assertion: signature (ES256), iss = sub = client id, aud, expiry. */
function assertionOf(body: string, publicKey: KeyObject) {
  const params = new URLSearchParams(body);
  const jwt = params.get("client_assertion") ?? "";
  const [h, p, sig] = jwt.split(".");
  const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(sig ?? "", "base64url"));
  return {
    params,
    ok,
    header: JSON.parse(Buffer.from(h ?? "", "base64url").toString() || "{}"),
    claims: JSON.parse(Buffer.from(p ?? "", "base64url").toString() || "{}"),
  };
}

/** An MCP server and its authorization server; the AS accepts only a valid assertion. */
async function peers(publicKey: KeyObject) {
  const mcp = await hostile();
  const as = await hostile();
  mcp.handle((req, res) => {
    if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource: `${mcp.origin}/mcp`, authorization_servers: [as.origin] });
    if (req.headers.authorization === "Bearer issued") {
      const body = JSON.parse(req.body || "{}");
      if (body.method === "initialize") return json(res, 200, { jsonrpc: "2.0", id: body.id, result: { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "p", version: "1" } } });
      if (body.id === undefined) return void res.writeHead(202).end();
      return json(res, 200, { jsonrpc: "2.0", id: body.id, result: body.method === "tools/list" ? { tools: [] } : {} });
    }
    res.writeHead(401, { "www-authenticate": "Bearer" }).end();
  });
  as.handle((req, res) => {
    if (req.path.startsWith("/.well-known/")) {
      return json(res, 200, {
        issuer: as.origin,
        authorization_endpoint: `${as.origin}/authorize`,
        token_endpoint: `${as.origin}/token`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported: ["ES256"],
      });
    }
    const a = assertionOf(req.body, publicKey);
    const valid =
      a.ok &&
      a.params.get("client_assertion_type") === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
      a.claims.iss === "jwt-client" &&
      a.claims.sub === "jwt-client" &&
      a.claims.aud === as.origin &&
      a.claims.exp > Date.now() / 1000;
    if (!valid) return json(res, 401, { error: "invalid_client" });
    json(res, 200, { access_token: "issued", token_type: "Bearer", expires_in: 3600 });
  });
  return { mcp, as, url: `${mcp.origin}/mcp` };
}

async function workspace() {
  const ws = uniqueWorkspace();
  return { ws, token: await srv.token([ws], "usr_jwt") };
}
const create = (token: string, body: Record<string, unknown>) =>
  raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ name: `j-${Math.random()}`, authType: "oauth", ...body }) });

describe("private_key_jwt", () => {
  test("when a client-credentials record has a private key, then the token request carries a signed assertion and no secret, and the key is never shown", async () => {
    const { privateKey, publicKey } = ec();
    const p = await peers(publicKey);
    const { ws, token } = await workspace();
    const key = pem(privateKey);
    const created = await create(token, {
      workspaceId: ws,
      url: p.url,
      oauthClientId: "jwt-client",
      oauthGrantType: "client_credentials",
      oauthClientAuthMethod: "private_key_jwt",
      oauthClientPrivateKey: key,
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ oauthClientAuthMethod: "private_key_jwt", hasOauthClientPrivateKey: true });
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${created.json.id}/test`, { token });
    expect(check.json.connectorStatus, check.text).toBe("connected");
    const tokenRequests = p.as.received.filter((r) => r.path === "/token");
    expect(tokenRequests).toHaveLength(1);
    const a = assertionOf(tokenRequests[0]!.body, publicKey);
    expect(a.ok).toBe(true);
    expect(a.header.alg).toBe("ES256");
    expect(a.params.get("grant_type")).toBe("client_credentials");
    expect(a.params.has("client_secret")).toBe(false);
    expect(tokenRequests[0]!.headers.authorization).toBeUndefined();

    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}/events`, { token });
    const shown = [created.text, check.text, events.text, (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token })).text, ...srv.logs].join("\n");
    const body = key.split("\n")[1]!;
    expect(shown).not.toContain(body);
    const row = await srv.services.db.knex("mcp_servers").where({ id: created.json.id }).first();
    expect(String(row.oauth_client_private_key_enc)).toMatch(/^v2:/);
    expect(String(row.oauth_client_private_key_enc)).not.toContain(body);
  });

  test("when the code grant uses private_key_jwt, then the code exchange carries a signed assertion", async () => {
    const { privateKey, publicKey } = ec();
    const p = await peers(publicKey);
    const { ws, token } = await workspace();
    const created = await create(token, { workspaceId: ws, url: p.url, oauthClientId: "jwt-client", oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: pem(privateKey) });
    expect(created.status, created.text).toBe(201);
    const started = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${created.json.id}/oauth/authorize`, { token });
    expect(started.status, started.text).toBe(200);
    const state = new URL(started.json.authorizationUrl).searchParams.get("state");
    const res = await fetch(`${srv.baseUrl}/api/oauth/callback?state=${state}&code=c1`, { redirect: "manual" });
    expect(res.status, await res.text()).toBe(200);
    const exchange = p.as.received.filter((r) => r.path === "/token");
    expect(exchange).toHaveLength(1);
    const a = assertionOf(exchange[0]!.body, publicKey);
    expect(a.ok).toBe(true);
    expect(a.params.get("grant_type")).toBe("authorization_code");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token })).json.connectorStatus).toBe("connected");
  });

  test.each([
    ["a key that is not PEM", { oauthClientId: "c", oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: "not a key" }, "/oauthClientPrivateKey"],
    ["a public key", { oauthClientId: "c", oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: createPublicKey(ec().privateKey).export({ format: "pem", type: "spki" }).toString() }, "/oauthClientPrivateKey"],
    ["private_key_jwt without a key", { oauthClientId: "c", oauthClientAuthMethod: "private_key_jwt" }, "/oauthClientPrivateKey"],
    ["private_key_jwt without a client id", { oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: pem(ec().privateKey) }, "/oauthClientId"],
    ["an unknown method", { oauthClientId: "c", oauthClientAuthMethod: "tls_client_auth" }, "/oauthClientAuthMethod"],
  ])("when a create has %s, then 400 names the field and nothing is stored", async (_what, body, path) => {
    const { ws, token } = await workspace();
    const res = await create(token, { workspaceId: ws, url: "https://mcp.example.com/mcp", ...body });
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).json.data).toEqual([]);
  });

  test("when a PATCH clears the key of a private_key_jwt record, then 400 and the record is unchanged", async () => {
    const { ws, token } = await workspace();
    const created = await create(token, { workspaceId: ws, url: "https://mcp.example.com/mcp", oauthClientId: "c", oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: pem(ec().privateKey) });
    expect(created.status).toBe(201);
    const res = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${created.json.id}`, { token, body: JSON.stringify({ oauthClientPrivateKey: null }) });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].path).toBe("/oauthClientPrivateKey");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token })).json.hasOauthClientPrivateKey).toBe(true);
  });
});
