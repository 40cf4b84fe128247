// The OAuth test peer, driven by the SDK's auth helpers the way the product drives it.
import { afterEach, describe, expect, test } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  discoverOAuthServerInfo,
  exchangeAuthorization,
  refreshAuthorization,
  startAuthorization,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { InvalidGrantError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import { startOAuthPeer, type OAuthPeer, type OAuthPeerOptions } from "./helpers/oauth-peer.js";

const redirectUri = "http://127.0.0.1:1/api/oauth/callback";
const peers: OAuthPeer[] = [];

afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function start(options: Partial<OAuthPeerOptions> = {}) {
  const peer = await startOAuthPeer({ redirectUri, ...options });
  peers.push(peer);
  return peer;
}

function clientInformation(peer: OAuthPeer) {
  return { client_id: peer.clientId, client_secret: peer.clientSecret };
}

/** Discovery, authorize, the user's consent, and the code exchange. */
async function authorize(peer: OAuthPeer) {
  const { authorizationServerUrl, authorizationServerMetadata: metadata } = await discoverOAuthServerInfo(peer.mcpUrl);
  const { authorizationUrl, codeVerifier } = await startAuthorization(authorizationServerUrl, {
    metadata,
    clientInformation: clientInformation(peer),
    redirectUrl: redirectUri,
    scope: "mcp:tools",
    state: "st-1",
    resource: new URL(peer.mcpUrl),
  });
  const callback = new URL(await peer.login(authorizationUrl));
  expect(callback.searchParams.get("state")).toBe("st-1");
  const tokens = await exchangeAuthorization(authorizationServerUrl, {
    metadata,
    clientInformation: clientInformation(peer),
    authorizationCode: callback.searchParams.get("code")!,
    codeVerifier,
    redirectUri,
    resource: new URL(peer.mcpUrl),
  });
  return { authorizationServerUrl, metadata, tokens };
}

async function listTools(peer: OAuthPeer, accessToken: string) {
  const client = new Client({ name: "test", version: "0.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(peer.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${accessToken}` } },
  });
  await client.connect(transport);
  try {
    return (await client.listTools()).tools.map((t) => t.name);
  } finally {
    await client.close();
  }
}

function mcpStatus(peer: OAuthPeer, authorization?: string) {
  return fetch(peer.mcpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
}

function clientCredentials(peer: OAuthPeer) {
  return fetch(peer.tokenEndpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${peer.clientId}:${peer.clientSecret}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", scope: "mcp:tools", resource: peer.mcpUrl }),
  });
}

describe("OAuth peer", () => {
  test("when the MCP server is called without a token, then 401 names its resource metadata, which names the AS", async () => {
    const peer = await start();
    const res = await mcpStatus(peer);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${peer.resourceMetadataUrl}"`);
    for (const url of [peer.resourceMetadataUrl, new URL("/.well-known/oauth-protected-resource", peer.mcpUrl).href]) {
      expect(await (await fetch(url)).json()).toMatchObject({ resource: peer.mcpUrl, authorization_servers: [peer.issuer] });
    }
    const info = await discoverOAuthServerInfo(peer.mcpUrl);
    expect(info.authorizationServerUrl).toBe(peer.issuer);
    expect(info.authorizationServerMetadata).toMatchObject({
      issuer: peer.issuer,
      token_endpoint: peer.tokenEndpoint,
      code_challenge_methods_supported: ["S256"],
    });
  });

  test("when the user consents, then the code exchange gives tokens bound to the MCP server, which accepts them", async () => {
    const peer = await start();
    const { tokens } = await authorize(peer);
    expect(tokens).toMatchObject({ token_type: "Bearer", scope: "mcp:tools" });
    expect(tokens.refresh_token).toBeTruthy();
    expect(await listTools(peer, tokens.access_token)).toEqual(["whoami"]);
    expect(peer.mcpRequests.at(-1)?.authorization).toBe(`Bearer ${tokens.access_token}`);
    expect(peer.tokenRequests).toEqual([
      expect.objectContaining({ grant_type: "authorization_code", authMethod: "basic", resource: peer.mcpUrl, code_verifier: true }),
    ]);
    expect((await mcpStatus(peer, "Bearer not-a-token")).status).toBe(401);
  });

  test("when refreshing with rotation, then a new access token and a new refresh token; the old one is spent", async () => {
    const peer = await start({ accessTokenTtlSeconds: 2 });
    const { authorizationServerUrl, metadata, tokens } = await authorize(peer);
    expect(tokens.expires_in).toBe(2);
    const refreshed = await refreshAuthorization(authorizationServerUrl, {
      metadata,
      clientInformation: clientInformation(peer),
      refreshToken: tokens.refresh_token!,
      resource: new URL(peer.mcpUrl),
    });
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(await listTools(peer, refreshed.access_token)).toEqual(["whoami"]);
    await expect(
      refreshAuthorization(authorizationServerUrl, { metadata, clientInformation: clientInformation(peer), refreshToken: tokens.refresh_token! }),
    ).rejects.toBeInstanceOf(InvalidGrantError);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await mcpStatus(peer, `Bearer ${refreshed.access_token}`)).status).toBe(401);
  });

  test("when rotation is off, then the refresh token is kept and works again", async () => {
    const peer = await start({ rotateRefreshTokens: false });
    const { authorizationServerUrl, metadata, tokens } = await authorize(peer);
    const args = { metadata, clientInformation: clientInformation(peer), refreshToken: tokens.refresh_token! };
    const first = await refreshAuthorization(authorizationServerUrl, args);
    // The SDK keeps the old refresh token when the response has none.
    expect(first.refresh_token).toBe(tokens.refresh_token);
    expect((await refreshAuthorization(authorizationServerUrl, args)).access_token).toBeTruthy();
  });

  test("when every grant is revoked, then refresh is rejected with invalid_grant and the access token goes inactive", async () => {
    const peer = await start();
    const { authorizationServerUrl, metadata, tokens } = await authorize(peer);
    await peer.revokeAllGrants();
    await expect(
      refreshAuthorization(authorizationServerUrl, { metadata, clientInformation: clientInformation(peer), refreshToken: tokens.refresh_token! }),
    ).rejects.toBeInstanceOf(InvalidGrantError);
    expect((await mcpStatus(peer, `Bearer ${tokens.access_token}`)).status).toBe(401);
  });

  test("when the user denies, then the callback gets error=access_denied and the state", async () => {
    const peer = await start();
    const { authorizationServerUrl, authorizationServerMetadata: metadata } = await discoverOAuthServerInfo(peer.mcpUrl);
    const { authorizationUrl } = await startAuthorization(authorizationServerUrl, {
      metadata,
      clientInformation: clientInformation(peer),
      redirectUrl: redirectUri,
      scope: "mcp:tools",
      state: "st-2",
      resource: new URL(peer.mcpUrl),
    });
    const callback = new URL(await peer.login(authorizationUrl, { deny: true }));
    expect(callback.origin + callback.pathname).toBe(redirectUri);
    expect(callback.searchParams.get("error")).toBe("access_denied");
    expect(callback.searchParams.get("state")).toBe("st-2");
    expect(callback.searchParams.has("code")).toBe(false);
  });

  test("when client credentials are used, then the token is accepted until it is revoked", async () => {
    const peer = await start();
    const res = await clientCredentials(peer);
    expect(res.status).toBe(200);
    const { access_token: token, refresh_token: refresh } = (await res.json()) as { access_token: string; refresh_token?: string };
    expect(refresh).toBeUndefined();
    expect(await listTools(peer, token)).toEqual(["whoami"]);
    expect(peer.tokenRequests).toEqual([expect.objectContaining({ grant_type: "client_credentials", authMethod: "basic", resource: peer.mcpUrl })]);

    const revoke = await fetch(peer.revocationEndpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${peer.clientId}:${peer.clientSecret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ token, token_type_hint: "access_token" }),
    });
    expect(revoke.status).toBe(200);
    expect(peer.revocations).toEqual(["access_token"]);
    expect((await mcpStatus(peer, `Bearer ${token}`)).status).toBe(401);
  });

  test("when the client is registered for client_secret_post, then the metadata says so and the SDK posts the secret", async () => {
    const peer = await start({ tokenEndpointAuthMethod: "client_secret_post" });
    const { metadata, tokens } = await authorize(peer);
    expect(metadata?.token_endpoint_auth_methods_supported?.[0]).toBe("client_secret_post");
    expect(metadata?.token_endpoint_auth_methods_supported).not.toContain("client_secret_basic");
    expect(await listTools(peer, tokens.access_token)).toEqual(["whoami"]);
    expect(peer.tokenRequests.map((r) => r.authMethod)).toEqual(["post"]);
    // Basic is refused for a client registered with client_secret_post.
    expect((await clientCredentials(peer)).status).toBe(401);
    expect(peer.tokenRequests.map((r) => r.authMethod)).toEqual(["post", "basic"]);
  });

  test("when the metadata advertises only plain PKCE, then the SDK refuses to start authorization", async () => {
    const peer = await start({ pkceMethods: ["plain"] });
    const { authorizationServerUrl, authorizationServerMetadata: metadata } = await discoverOAuthServerInfo(peer.mcpUrl);
    expect(metadata?.code_challenge_methods_supported).toEqual(["plain"]);
    await expect(
      startAuthorization(authorizationServerUrl, { metadata, clientInformation: clientInformation(peer), redirectUrl: redirectUri }),
    ).rejects.toThrow(/S256/);
  });
});
