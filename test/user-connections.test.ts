// Issue 20 items 1-4: connectionScope, each person's own connection, the connections API, the
// gateway acting as the calling person on both endpoints, and the connect page.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startRecordingUpstream, type RecordingUpstream } from "./helpers/recording-upstream.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
let upstream: RecordingUpstream;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  upstream = await startRecordingUpstream();
});
afterAll(async () => {
  await upstream?.close();
  await srv?.stop();
});

const ACCEPT = { accept: "application/json, text/event-stream" };
const rpc = (method: string, params: unknown = {}, id: number | null = 1) => JSON.stringify(id === null ? { jsonrpc: "2.0", method, params } : { jsonrpc: "2.0", id, method, params });

async function people(ws = uniqueWorkspace()) {
  const tag = randomBytes(4).toString("hex");
  const alice = { userId: `usr_alice_${tag}`, token: await srv.token([ws], `usr_alice_${tag}`) };
  const bob = { userId: `usr_bob_${tag}`, token: await srv.token([ws], `usr_bob_${tag}`) };
  const carol = { userId: `usr_carol_${tag}`, token: await srv.token([ws], `usr_carol_${tag}`) };
  return { ws, alice, bob, carol };
}

async function userScoped(token: string, ws: string, extra: Record<string, unknown> = {}) {
  const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
    token,
    body: JSON.stringify({ workspaceId: ws, name: `personal ${randomBytes(3).toString("hex")}`, url: upstream.url, authType: "api_key", connectionScope: "user", headers: { "X-Team": "shared" }, ...extra }),
  });
  expect(res.status, res.text).toBe(201);
  return res.json.id as string;
}

const putMine = (token: string, id: string, body: unknown) => raw(srv.baseUrl, "PUT", `/api/mcp-servers/${id}/connections/me`, { token, body: JSON.stringify(body) });

describe("connectionScope on records", () => {
  test("when a user-scope api_key server is created without a key, then 201 with connectionScope user; the default stays workspace", async () => {
    const { ws, alice } = await people();
    const id = await userScoped(alice.token, ws);
    const got = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: alice.token });
    expect(got.json).toMatchObject({ connectionScope: "user", hasApiKey: false, connectorStatus: "disconnected", oauthExpiresAt: null });
    const plain = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: alice.token, body: JSON.stringify({ workspaceId: ws, name: "shared", url: upstream.url }) });
    expect(plain.json.connectionScope).toBe("workspace");
  });

  test("when a user-scope record is given a record-wide apiKey, then 400 naming apiKey and nothing is created", async () => {
    const { ws, alice } = await people();
    const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: alice.token, body: JSON.stringify({ workspaceId: ws, name: "x", url: upstream.url, authType: "api_key", apiKey: "sk_shared", connectionScope: "user" }) });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/apiKey", message: expect.stringContaining("connections/me") }]);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token: alice.token })).json.data).toEqual([]);
  });

  test("when a workspace record becomes user-scope, then its shared key is dropped and each caller sees their own status", async () => {
    const { ws, alice, bob } = await people();
    const made = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: alice.token, body: JSON.stringify({ workspaceId: ws, name: "switch", url: upstream.url, authType: "api_key", apiKey: "sk_shared" }) });
    const id = made.json.id;
    const patched = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token: alice.token, body: JSON.stringify({ connectionScope: "user" }) });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json).toMatchObject({ connectionScope: "user", hasApiKey: false });
    expect((await putMine(alice.token, id, { apiKey: "sk_alice" })).status).toBe(200);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: alice.token })).json.connectorStatus).toBe("connected");
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: bob.token })).json.connectorStatus).toBe("disconnected");
    const list = await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token: bob.token });
    expect(list.json.data[0].connectorStatus).toBe("disconnected");
  });
});

describe("the connections API", () => {
  test("when people set, list and remove their own connections, then no secret is ever shown and each change is an event naming the person", async () => {
    const { ws, alice, bob } = await people();
    const id = await userScoped(alice.token, ws);
    const set = await putMine(alice.token, id, { apiKey: "sk_alice_secret", secretHeaders: { "X-Personal": "alice-hdr-secret" } });
    expect(set.status, set.text).toBe(200);
    expect(set.json).toMatchObject({ userId: alice.userId, status: "connected", hasApiKey: true, secretHeaderNames: ["X-Personal"], oauthExpiresAt: null, lastUsedAt: null });
    expect((await putMine(bob.token, id, { apiKey: "sk_bob_secret" })).status).toBe(200);
    const list = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections?limit=1`, { token: bob.token });
    expect(list.status).toBe(200);
    expect(list.json.data.map((c: { userId: string }) => c.userId)).toEqual([alice.userId]);
    const next = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections?limit=1&cursor=${encodeURIComponent(list.json.nextCursor)}`, { token: bob.token });
    expect(next.json).toMatchObject({ data: [{ userId: bob.userId }], nextCursor: null });
    for (const text of [set.text, list.text, next.text]) expect(text).not.toMatch(/sk_alice_secret|sk_bob_secret|alice-hdr-secret/);

    // Bob removes Alice's connection (she left): recorded with the actor and the subject.
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/connections/${alice.userId}`, { token: bob.token })).status).toBe(204);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/connections/me`, { token: bob.token })).status).toBe(204);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/connections/me`, { token: bob.token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections`, { token: alice.token })).json.data).toEqual([]);
    const events = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token: alice.token });
    const mine = events.json.data.filter((e: { type: string }) => e.type.startsWith("connection_")).map((e: { type: string; actor: string; subjectUserId: string }) => [e.type, e.actor, e.subjectUserId]);
    expect(mine).toEqual([
      ["connection_removed", bob.userId, bob.userId],
      ["connection_removed", bob.userId, alice.userId],
      ["connection_set", bob.userId, bob.userId],
      ["connection_set", alice.userId, alice.userId],
    ]);
    expect(events.text).not.toMatch(/sk_alice_secret|sk_bob_secret|alice-hdr-secret/);
  });

  test("when the record is workspace-scope, then every connections operation is a 409 naming connectionScope", async () => {
    const { ws, alice } = await people();
    const id = (await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token: alice.token, body: JSON.stringify({ workspaceId: ws, name: "shared", url: upstream.url }) })).json.id;
    for (const [method, path, body] of [
      ["GET", `/api/mcp-servers/${id}/connections`, undefined],
      ["PUT", `/api/mcp-servers/${id}/connections/me`, JSON.stringify({ secretHeaders: { "X-K": "v" } })],
      ["DELETE", `/api/mcp-servers/${id}/connections/me`, undefined],
      ["DELETE", `/api/mcp-servers/${id}/connections/usr_x`, undefined],
    ] as const) {
      const res = await raw(srv.baseUrl, method, path, { token: alice.token, body });
      expect(res.status, `${method} ${path}`).toBe(409);
      expect(res.json.detail).toContain("connectionScope");
    }
  });

  test.each([
    ["an apiKey on an oauth server", { authType: "oauth", oauthClientId: "c", oauthAuthorizationEndpoint: "https://as.example.com/authorize", oauthTokenEndpoint: "https://as.example.com/token" }, { apiKey: "k" }, "/apiKey"],
    ["secret headers on an oauth server", { authType: "oauth", oauthClientId: "c", oauthAuthorizationEndpoint: "https://as.example.com/authorize", oauthTokenEndpoint: "https://as.example.com/token" }, { secretHeaders: { "X-K": "v" } }, "/secretHeaders"],
    ["an apiKey on a none server", { authType: "none" }, { apiKey: "k" }, "/apiKey"],
    ["only headers on an api_key server (no key yet)", {}, { secretHeaders: { "X-K": "v" } }, "/apiKey"],
    ["a secret header that is also a plain header", {}, { apiKey: "k", secretHeaders: { "X-Team": "v" } }, "/secretHeaders/X-Team"],
    ["an empty body", {}, {}, "/"],
    ["an unknown field", {}, { apiKey: "k", token: "t" }, "/token"],
  ])("when PUT …/connections/me has %s, then 400 naming it and nothing is stored", async (_label, record, body, path) => {
    const { ws, alice } = await people();
    const id = await userScoped(alice.token, ws, record);
    const res = await putMine(alice.token, id, body);
    expect(res.status, res.text).toBe(400);
    expect(res.json.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections`, { token: alice.token })).json.data).toEqual([]);
  });

  test("when the server is unknown, the ids malformed, the cursor forged, the body too large or not JSON, then 404, 400, 413 or 415", async () => {
    const { ws, alice } = await people();
    const id = await userScoped(alice.token, ws);
    const unknown = "mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE";
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${unknown}/connections`, { token: alice.token })).status).toBe(404);
    expect((await putMine(alice.token, unknown, { apiKey: "k" })).status).toBe(404);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${unknown}/connections/me`, { token: alice.token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${unknown}/connections/usr_x`, { token: alice.token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/connections/usr_nobody`, { token: alice.token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections?cursor=forged.x`, { token: alice.token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/bad/connections/me`, { token: alice.token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}/connections/bad%20user`, { token: alice.token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "PUT", `/api/mcp-servers/${id}/connections/me`, { token: alice.token, body: JSON.stringify({ apiKey: "k".repeat(2 * 1024 * 1024) }) })).status).toBe(413);
    expect((await raw(srv.baseUrl, "PUT", `/api/mcp-servers/${id}/connections/me`, { token: alice.token, body: "apiKey=k", contentType: "text/plain" })).status).toBe(415);
    for (const [method, path] of [
      ["GET", `/api/mcp-servers/${id}/connections`],
      ["PUT", `/api/mcp-servers/${id}/connections/me`],
      ["DELETE", `/api/mcp-servers/${id}/connections/me`],
      ["DELETE", `/api/mcp-servers/${id}/connections/usr_x`],
    ] as const) {
      expect((await raw(srv.baseUrl, method, path, { body: method === "PUT" ? "{}" : undefined })).status).toBe(401);
    }
  });
});

describe("the gateway acts as the calling person", () => {
  test("when two people call one user-scope server, interleaved, on both endpoints, then each call carries only the caller's own credential", async () => {
    const { ws, alice, bob } = await people();
    const id = await userScoped(alice.token, ws);
    await putMine(alice.token, id, { apiKey: "sk_alice", secretHeaders: { "X-Personal": "alice-hdr" } });
    await putMine(bob.token, id, { apiKey: "sk_bob", secretHeaders: { "X-Personal": "bob-hdr" } });
    const before = upstream.calls.length;
    const callers = [alice, bob];
    const calls = Array.from({ length: 40 }, (_, i) => callers[i % 2]);
    await Promise.all(
      calls.map(async (who, i) => {
        const res = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: who.token, headers: ACCEPT, body: rpc("tools/call", { name: "whoami", arguments: { who: who.userId } }, i + 1) });
        expect(res.json.result.content[0].text).toBe(`called by ${who.userId}`);
      }),
    );
    const seen = upstream.calls.slice(before);
    expect(seen).toHaveLength(40);
    for (const c of seen) {
      const mine = c.who === alice.userId ? { key: "sk_alice", hdr: "alice-hdr" } : { key: "sk_bob", hdr: "bob-hdr" };
      expect(c.authorization).toBe(`Bearer ${mine.key}`);
      expect(c.headers["x-personal"]).toBe(mine.hdr);
      expect(c.headers["x-team"]).toBe("shared");
    }
    // The agent's own token never goes upstream.
    for (const c of seen) expect(JSON.stringify(c.headers)).not.toMatch(/mcpk_/);
  });

  test("when a person has no connection, then initialize, server/discover and tools/call answer -32042 with the connect link, and nothing reaches the upstream", async () => {
    const { ws, alice, carol } = await people();
    const id = await userScoped(alice.token, ws);
    await putMine(alice.token, id, { apiKey: "sk_alice" });
    const before = upstream.calls.length;
    for (const [method, params] of [
      ["initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "agent", version: "1" } }],
      ["server/discover", {}],
      ["tools/call", { name: "whoami", arguments: { who: carol.userId } }],
    ] as const) {
      const res = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: carol.token, headers: ACCEPT, body: rpc(method, params) });
      expect(res.status, method).toBe(200);
      expect(res.json.error.code).toBe(-32042);
      const e = res.json.error.data.elicitations[0];
      expect(e).toMatchObject({ mode: "url", url: `${srv.baseUrl}/connect/${id}`, elicitationId: expect.any(String) });
      expect(e.message).toContain("personal");
    }
    // 2026-07-28 gets the same error.
    const modern = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, {
      token: carol.token,
      headers: { ...ACCEPT, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" },
      body: rpc("tools/list"),
    });
    expect(modern.json.error?.code ?? modern.text).toBe(-32042);
    expect(upstream.calls.length).toBe(before);
  });

  test("when the workspace endpoint lists for a person not connected, then the server is left out with reason not_connected and its link, and a call in its namespace answers -32042", async () => {
    const { ws, alice, carol } = await people();
    const id = await userScoped(alice.token, ws, { name: "Personal Tools" });
    await putMine(alice.token, id, { apiKey: "sk_alice" });
    const before = upstream.calls.length;
    const list = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: carol.token, headers: ACCEPT, body: rpc("tools/list") });
    expect(list.status, list.text).toBe(200);
    const body = list.json ?? JSON.parse(/data: (.*)/.exec(list.text)![1]);
    expect(body.result.tools).toEqual([]);
    expect(body.result._meta["io.mcp-servers-api/left-out"]).toEqual([
      { serverId: id, name: "Personal Tools", reason: "not_connected", message: expect.stringContaining("Personal Tools"), connectUrl: `${srv.baseUrl}/connect/${id}` },
    ]);
    const call = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: carol.token, headers: ACCEPT, body: rpc("tools/call", { name: "personal_tools__whoami", arguments: {} }) });
    const answer = call.json ?? JSON.parse(/data: (.*)/.exec(call.text)![1]);
    expect(answer.error.code).toBe(-32042);
    expect(answer.error.data.elicitations[0].url).toBe(`${srv.baseUrl}/connect/${id}`);
    expect(upstream.calls.length).toBe(before);
    // Alice, connected, sees and calls it with her own key.
    const hers = await raw(srv.baseUrl, "POST", `/api/workspaces/${ws}/mcp`, { token: alice.token, headers: ACCEPT, body: rpc("tools/call", { name: "personal_tools__whoami", arguments: { who: alice.userId } }) });
    expect(hers.status).toBe(200);
    expect(upstream.calls.at(-1)!.authorization).toBe("Bearer sk_alice");
  });
});

describe("GET /connect/{serverId} while the store is unavailable", () => {
  test("when a signed-in browser opens it, then a 503 page", async () => {
    const down = await startServer({ reuse: { dataDir: "/tmp", databaseUrl: "sqlite:/dev/null/not-a-dir/mcp-api.sqlite" }, waitForDatabase: true });
    try {
      const res = await fetch(`${down.baseUrl}/connect/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE`, { headers: { cookie: `mcp_session=${"A".repeat(43)}` }, redirect: "manual" });
      expect(res.status).toBe(503);
      expect(res.headers.get("content-type")).toMatch(/text\/html/);
    } finally {
      await down.stop({ keepData: true }).catch(() => undefined);
    }
  });
});

describe("DELETE /api/mcp-servers/{id} with per-user connections", () => {
  test("when the record is deleted, then every person's connection goes with it", async () => {
    const { ws, alice, bob } = await people();
    const id = await userScoped(alice.token, ws);
    await putMine(alice.token, id, { apiKey: "sk_alice" });
    await putMine(bob.token, id, { apiKey: "sk_bob" });
    expect((await raw(srv.baseUrl, "DELETE", `/api/mcp-servers/${id}`, { token: alice.token })).status).toBe(204);
    const left = await srv.services.db.knex("user_connections").where({ server_id: id }).count({ n: "*" }).first();
    expect(Number(left!.n)).toBe(0);
  });
});
