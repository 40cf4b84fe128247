// Issue 20 item 6, authorization-server migration noticed after the connection was made: an MCP
// server whose protected resource metadata switches from one authorization server (a real
// oidc-provider) to another refuses the old token with 401; the gateway (both endpoints) or a
// check then finds the move, drops the record's tokens (nothing of the old server's goes to the
// new one), tells the agent where to authorize again (-32042), and the next authorization goes
// to the new server. Pinned endpoints never move.
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closer, listen } from "./helpers/mcp-peers.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let as1: OAuthPeer;
let as2: OAuthPeer;
/** Issues 2-second access tokens, so the next call refreshes first. */
let shortLived: OAuthPeer;
/** The authorization server the MCP server's metadata names, and whose tokens it accepts. */
let current: OAuthPeer;
let mcpUrl: string;
let closeMcp: () => Promise<void>;
const bearers: string[] = [];

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  // The MCP server: its RFC 9728 document names `current`; a token is good when `current` says it is active for this URL.
  const http = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path.startsWith("/.well-known/oauth-protected-resource")) {
      return void res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ resource: mcpUrl, authorization_servers: [current.issuer], scopes_supported: ["mcp:tools"] }));
    }
    if (path !== "/mcp" || req.method !== "POST") return void res.writeHead(404).end();
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (token) bearers.push(token);
    const info = token ? await current.introspect(token) : { active: false, aud: [] as string[], sub: undefined };
    if (!info.active || !info.aud.includes(mcpUrl)) {
      return void res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${new URL(mcpUrl).origin}/.well-known/oauth-protected-resource/mcp"` }).end();
    }
    const msg = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id?: number; method: string };
    if (msg.id === undefined) return void res.writeHead(202).end();
    const result =
      msg.method === "initialize"
        ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "moving", version: "1.0.0" } }
        : msg.method === "tools/list"
          ? { tools: [{ name: "whoami", inputSchema: { type: "object" } }] }
          : msg.method === "tools/call"
            ? { content: [{ type: "text", text: `issued by ${current.issuer}` }] }
            : {};
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }));
  });
  mcpUrl = `http://127.0.0.1:${await listen(http)}/mcp`;
  closeMcp = closer(http);
  const options = { redirectUri: `${srv.baseUrl}/api/oauth/callback`, dynamicRegistration: true, extraResources: [mcpUrl] };
  as1 = await startOAuthPeer(options);
  as2 = await startOAuthPeer(options);
  shortLived = await startOAuthPeer({ ...options, accessTokenTtlSeconds: 2 });
});
afterAll(async () => {
  await closeMcp?.();
  await as1?.close();
  await as2?.close();
  await shortLived?.close();
  await srv?.stop();
});

const ACCEPT = { accept: "application/json, text/event-stream" };
const rpc = (method: string, params: unknown = {}, id = 1) => JSON.stringify({ jsonrpc: "2.0", id, method, params });
const callback = (url: string) => fetch(url.replace(/^http:\/\/localhost:/, "http://127.0.0.1:"), { redirect: "manual" });
const callTool = (token: string, id: string) => raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token, headers: ACCEPT, body: rpc("tools/call", { name: "whoami", arguments: {} }) });
const get = (token: string, id: string) => raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token });

async function admin() {
  const ws = uniqueWorkspace();
  return { ws, token: await srv.token([ws], "usr_asmig") };
}

async function create(token: string, ws: string, extra: Record<string, unknown> = {}) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token,
    body: JSON.stringify({ workspaceId: ws, name: `Moving ${Math.random().toString(36).slice(2, 8)}`, url: mcpUrl, authType: "oauth", oauthScopes: "mcp:tools", ...extra }),
  });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; name: string };
}

/** POST /oauth/authorize, then the person consents at whichever AS it leads to; returns that authorization URL. */
async function authorize(token: string, id: string, at: OAuthPeer): Promise<string> {
  const started = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token, body: "{}" });
  expect(started.status, started.text).toBe(200);
  const url: string = started.json.authorizationUrl;
  expect(url.startsWith(at.authorizationEndpoint), url).toBe(true);
  const back = await callback(await at.login(url));
  expect(back.status, await back.text()).toBe(200);
  return url;
}

describe("authorization-server migration after the connection was made (issue 20 item 6)", () => {
  test("when the MCP server's metadata switches to another AS, then a gateway call gets -32042, the old tokens go nowhere, and the next authorization goes to the new AS", async () => {
    current = as1;
    const { ws, token } = await admin();
    const server = await create(token, ws);
    await authorize(token, server.id, as1);
    expect((await callTool(token, server.id)).json.result.content[0].text).toBe(`issued by ${as1.issuer}`);
    const as1Token = bearers.at(-1)!;

    current = as2;
    const as2Before = as2.tokenRequests.length;
    const refused = await callTool(token, server.id);
    expect(refused.status).toBe(200);
    expect(refused.json.error.code, refused.text).toBe(-32042);
    const elicitation = refused.json.error.data.elicitations[0];
    expect(elicitation).toMatchObject({ mode: "url", url: `${srv.baseUrl}/connect/${server.id}` });
    expect(elicitation.message).toContain("another authorization server");
    // The record's connection is dropped, and says why.
    const marked = await get(token, server.id);
    expect(marked.json.connectorStatus).toBe("disconnected");
    expect(marked.json.lastError.message).toContain(as2.issuer);
    expect(marked.json.oauthExpiresAt).toBeNull();
    // Nothing reached AS 2's token or revocation endpoints with AS 1's tokens (no refresh, no code).
    expect(as2.tokenRequests.length - as2Before).toBe(0);
    expect(as2.revocations).toHaveLength(0);
    // The next call sends no token of AS 1's upstream any more.
    const count = bearers.length;
    const again = await callTool(token, server.id);
    expect(again.json.error).toBeDefined();
    expect(bearers.slice(count)).not.toContain(as1Token);

    // The next authorization discovers again and goes to AS 2; then calls work.
    await authorize(token, server.id, as2);
    expect(as2.tokenRequests.slice(as2Before).map((r) => r.grant_type)).toEqual(["authorization_code"]);
    expect((await callTool(token, server.id)).json.result.content[0].text).toBe(`issued by ${as2.issuer}`);
    expect((await get(token, server.id)).json.connectorStatus).toBe("connected");
  });

  test("when the switch is met by the workspace endpoint, then its call gets -32042 too and the record is dropped", async () => {
    current = as1;
    const { ws, token } = await admin();
    const server = await create(token, ws);
    await authorize(token, server.id, as1);
    const answerOf = (res: { json: any; text: string }) => res.json ?? JSON.parse(/^data: (.*)$/m.exec(res.text)![1]);
    const list = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token, headers: ACCEPT, body: rpc("tools/list") });
    const name = (answerOf(list).result.tools as { name: string }[]).find((t) => t.name.endsWith("whoami"))!.name;
    current = as2;
    const res = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token, headers: ACCEPT, body: rpc("tools/call", { name, arguments: {} }) });
    const answer = answerOf(res);
    expect(answer.error?.code, res.text).toBe(-32042);
    expect(answer.error.data.elicitations[0].url).toBe(`${srv.baseUrl}/connect/${server.id}`);
    expect((await get(token, server.id)).json.connectorStatus).toBe("disconnected");
  });

  test("when a check meets the switch, then it reports the move with the connect link and the record is dropped", async () => {
    current = as1;
    const { ws, token } = await admin();
    const server = await create(token, ws);
    await authorize(token, server.id, as1);
    current = as2;
    const checked = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/test`, { token });
    expect(checked.status, checked.text).toBe(200);
    expect(checked.json.connectorStatus, checked.text).toBe("error");
    expect(checked.json.error.message).toContain("another authorization server");
    expect(checked.json.error.message).toContain(`/connect/${server.id}`);
    expect((await get(token, server.id)).json.connectorStatus).toBe("disconnected");
    await authorize(token, server.id, as2);
  });

  test("when the refresh fails after the switch, then the call gets -32042 and the refresh token never reaches the new AS", async () => {
    current = shortLived;
    const { ws, token } = await admin();
    const server = await create(token, ws);
    await authorize(token, server.id, shortLived);
    current = as2;
    // The old AS forgets the grant: the refresh the next call needs first is refused.
    await shortLived.revokeAllGrants();
    await new Promise((r) => setTimeout(r, 1100));
    const as2Before = as2.tokenRequests.length;
    const refreshesBefore = shortLived.tokenRequests.filter((r) => r.grant_type === "refresh_token").length;
    const refused = await callTool(token, server.id);
    expect(refused.json.error.code, refused.text).toBe(-32042);
    expect(shortLived.tokenRequests.filter((r) => r.grant_type === "refresh_token").length - refreshesBefore).toBe(1);
    expect(as2.tokenRequests.length - as2Before).toBe(0);
    const marked = await get(token, server.id);
    expect(marked.json.connectorStatus).toBe("disconnected");
    expect(marked.json.lastError.message).toContain(as2.issuer);
    await authorize(token, server.id, as2);
    expect((await callTool(token, server.id)).json.result.content[0].text).toBe(`issued by ${as2.issuer}`);
  });

  test("when the record pins its endpoints, then nothing migrates: the 401 is a plain failure, the tokens stay, and authorization stays at the pinned AS", async () => {
    current = as1;
    const { ws, token } = await admin();
    const server = await create(token, ws, {
      oauthClientId: as1.clientId,
      oauthClientSecret: as1.clientSecret,
      oauthAuthorizationEndpoint: as1.authorizationEndpoint,
      oauthTokenEndpoint: as1.tokenEndpoint,
    });
    await authorize(token, server.id, as1);
    current = as2;
    const refused = await callTool(token, server.id);
    expect(refused.json.error.code, refused.text).not.toBe(-32042);
    expect(refused.json.error.message).toContain("HTTP 401");
    const after = await get(token, server.id);
    expect(after.json.connectorStatus).toBe("error");
    expect(after.json.oauthExpiresAt).not.toBeNull();
    const started = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${server.id}/oauth/authorize`, { token, body: "{}" });
    expect(started.json.authorizationUrl.startsWith(as1.authorizationEndpoint)).toBe(true);
  });

  test("when one person's authorization moves a user-scope record to another AS, then every person's old tokens are dropped: nobody's refresh token reaches the new AS", async () => {
    current = shortLived;
    const ws = uniqueWorkspace();
    const person = async (name: string) => {
      const userId = `usr_${name}_${Math.random().toString(36).slice(2, 8)}`;
      const token = await srv.token([ws], userId);
      const set = (await raw(srv.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie") ?? "";
      return { userId, token, cookie: /^(mcp_session=[^;]*)/.exec(set)?.[1] ?? "" };
    };
    const alice = await person("alice");
    const bob = await person("bob");
    const server = await create(alice.token, ws, { connectionScope: "user" });
    /** The connect page in the person's signed-in browser, on to `at`'s consent; returns the callback URL. */
    const consent = async (p: { userId: string; cookie: string }, at: OAuthPeer) => {
      const page = await fetch(`${srv.baseUrl}/connect/${server.id}`, { headers: { cookie: p.cookie }, redirect: "manual" });
      expect(page.status).toBe(302);
      const location = page.headers.get("location")!;
      expect(location.startsWith(at.authorizationEndpoint), location).toBe(true);
      return (await at.login(location, { account: p.userId })).replace(/^http:\/\/localhost:/, "http://127.0.0.1:");
    };
    const finish = async (p: { cookie: string }, url: string) => {
      const back = await fetch(url, { headers: { cookie: p.cookie }, redirect: "manual" });
      expect(back.status, await back.text()).toBe(200);
    };
    for (const p of [alice, bob]) await finish(p, await consent(p, shortLived));
    for (const p of [alice, bob]) expect((await callTool(p.token, server.id)).json.result.content[0].text).toBe(`issued by ${shortLived.issuer}`);

    // The MCP server moves to AS 2; Alice's next authorization discovers it and moves the record.
    current = as2;
    const as2Before = as2.tokenRequests.length;
    const aliceAtAs2 = await consent(alice, as2);
    const connections = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${server.id}/connections`, { token: alice.token });
    const bobs = connections.json.data.find((c: { userId: string }) => c.userId === bob.userId);
    expect(bobs.status).toBe("disconnected");
    expect(bobs.oauthExpiresAt).toBeNull();
    // Bob's access token has expired meanwhile: with his refresh token kept, his call would renew it at AS 2.
    await new Promise((r) => setTimeout(r, 2100));
    const refused = await callTool(bob.token, server.id);
    expect(refused.json.error.code, refused.text).toBe(-32042);
    expect(as2.tokenRequests.slice(as2Before).filter((r) => r.grant_type === "refresh_token")).toHaveLength(0);
    // Each person connects again at AS 2, as themselves.
    await finish(alice, aliceAtAs2);
    await finish(bob, await consent(bob, as2));
    for (const p of [alice, bob]) expect((await callTool(p.token, server.id)).json.result.content[0].text).toBe(`issued by ${as2.issuer}`);
  });
});
