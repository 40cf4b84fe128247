// Issue 20 item 5 and issue 23's GET /api/me: who a token is, tokens people mint themselves,
// and (item 4) browser sessions exchanged for a token.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv?.stop();
});

// Each test its own user, so that one test's tokens never show in another's list.
const someUser = () => `usr_${randomBytes(5).toString("hex")}`;

async function admin(workspaces: string[], userId = someUser(), extra: { expiresAt?: string; scope?: string } = {}) {
  const { token, record } = await srv.services.tokens.mint({ userId, workspaces, ...extra });
  return { token, id: record.id, userId };
}

const cookieOf = (setCookie: string | null) => /^mcp_session=([^;]*)/.exec(setCookie ?? "")?.[1] ?? "";

describe("GET /api/me", () => {
  test("when an admin token asks, then it learns its user, id, scope, workspaces and expiry", async () => {
    const ws = uniqueWorkspace();
    const { token, id, userId } = await admin([ws, `${ws}_b`]);
    const { data, response } = await srv.client(token).GET("/api/me");
    expect(response.status).toBe(200);
    expect(data).toEqual({ userId, tokenId: id, scope: "admin", workspaces: [ws, `${ws}_b`], expiresAt: null });
  });

  test("when the request carries a query parameter, then 400 naming it", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    const res = await raw(srv.baseUrl, "GET", "/api/me?who=1", { token });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/query/who", message: "is not a known parameter" }]);
  });

  test("when a gateway token asks, then it is answered too (an agent learns which person it acts for)", async () => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws], "usr_bob", { scope: "gateway" });
    const res = await raw(srv.baseUrl, "GET", "/api/me", { token });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ userId: "usr_bob", scope: "gateway", workspaces: [ws] });
  });

  test("when the token has expired, then 401 worded exactly like an unknown token's", async () => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws], someUser(), { expiresAt: new Date(Date.now() - 1000).toISOString() });
    const expired = await raw(srv.baseUrl, "GET", "/api/me", { token });
    const unknown = await raw(srv.baseUrl, "GET", "/api/me", { token: `mcpk_${"B".repeat(43)}` });
    expect(expired.status).toBe(401);
    expect({ ...expired.json, requestId: undefined }).toEqual({ ...unknown.json, requestId: undefined });
    expect(expired.headers.get("www-authenticate")).toBe(unknown.headers.get("www-authenticate"));
    // An expired token mints nothing either.
    expect((await raw(srv.baseUrl, "POST", "/api/tokens", { token, body: JSON.stringify({ name: "x" }) })).status).toBe(401);
    expect((await raw(srv.baseUrl, "GET", "/api/tokens", { token })).status).toBe(401);
    expect((await raw(srv.baseUrl, "DELETE", "/api/tokens/tok_01JDQ4N8ZK3V7W0XG5T2H9RBCE", { token })).status).toBe(401);
    expect((await raw(srv.baseUrl, "POST", "/api/session", { token })).status).toBe(401);
  });
});

describe("POST /api/tokens", () => {
  test("when the caller gives only a name, then a gateway token for the caller's workspaces, without expiry, that works once and is shown once", async () => {
    const ws = uniqueWorkspace();
    const { token, userId } = await admin([ws, `${ws}_b`]);
    const { data, response } = await srv.client(token).POST("/api/tokens", { body: { name: "my agent" } });
    expect(response.status).toBe(201);
    expect(response.headers.get("location")).toBe(`/api/tokens/${data!.id}`);
    expect(data).toMatchObject({ name: "my agent", userId, workspaces: [ws, `${ws}_b`], scope: "gateway", expiresAt: null });
    expect(data!.token).toMatch(/^mcpk_[A-Za-z0-9_-]{43}$/);
    const me = await raw(srv.baseUrl, "GET", "/api/me", { token: data!.token });
    expect(me.json).toMatchObject({ userId, tokenId: data!.id, scope: "gateway" });
    // A gateway token may not use the API.
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token: data!.token })).status).toBe(403);
    const list = await srv.client(token).GET("/api/tokens");
    expect(JSON.stringify(list.data)).not.toContain(data!.token);
  });

  test("when the caller asks for a subset of workspaces, admin scope and an expiry, then the token has them", async () => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws, `${ws}_b`]);
    const before = Date.now();
    const { data } = await srv.client(token).POST("/api/tokens", { body: { name: "ci", workspaces: [`${ws}_b`], scope: "admin", expiresInDays: 30 } });
    expect(data).toMatchObject({ workspaces: [`${ws}_b`], scope: "admin" });
    const expires = Date.parse(data!.expiresAt!);
    expect(expires).toBeGreaterThanOrEqual(before + 30 * 86_400_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000);
    const me = await srv.client(data!.token).GET("/api/me");
    expect(me.data).toMatchObject({ workspaces: [`${ws}_b`], scope: "admin", expiresAt: data!.expiresAt });
  });

  test("when the calling token expires, then a token it mints expires no later", async () => {
    const ws = uniqueWorkspace();
    const until = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const { token } = await admin([ws], someUser(), { expiresAt: until });
    const forever = await srv.client(token).POST("/api/tokens", { body: { name: "forever" } });
    expect(forever.data!.expiresAt).toBe(until);
    const long = await srv.client(token).POST("/api/tokens", { body: { name: "long", expiresInDays: 365 } });
    expect(long.data!.expiresAt).toBe(until);
    const short = await srv.client(token).POST("/api/tokens", { body: { name: "short", expiresInDays: 1 } });
    expect(Date.parse(short.data!.expiresAt!)).toBeLessThan(Date.parse(until));
  });

  test("when the caller asks for a workspace its token does not cover, then 403 naming it, and nothing is minted", async () => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws]);
    const res = await raw(srv.baseUrl, "POST", "/api/tokens", { token, body: JSON.stringify({ name: "x", workspaces: [ws, "ws_other"] }) });
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ type: "/problems/forbidden", status: 403, errors: [{ path: "/workspaces/1" }] });
    expect(res.json.detail).toContain("ws_other");
    expect((await srv.client(token).GET("/api/tokens")).data!.data.map((t) => t.name)).toEqual([null]);
  });

  test("when a gateway token calls the tokens operations or asks for a session, then 403", async () => {
    const ws = uniqueWorkspace();
    const { token, id } = await admin([ws], someUser(), { scope: "gateway" });
    for (const [method, path, body] of [
      ["POST", "/api/tokens", JSON.stringify({ name: "x", scope: "gateway" })],
      ["GET", "/api/tokens", undefined],
      ["DELETE", `/api/tokens/${id}`, undefined],
      ["POST", "/api/session", undefined],
    ] as const) {
      const res = await raw(srv.baseUrl, method, path, { token, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.json.detail).toContain("scope gateway");
    }
    expect((await raw(srv.baseUrl, "GET", "/api/me", { token })).status).toBe(200);
  });

  test.each([
    ["no name", {}, "/name", "is required"],
    ["an empty name", { name: "" }, "/name", "must not be empty"],
    ["an unknown scope", { name: "x", scope: "root" }, "/scope", "must be one of: admin, gateway"],
    ["zero days", { name: "x", expiresInDays: 0 }, "/expiresInDays", "must be at least 1"],
    ["366 days", { name: "x", expiresInDays: 366 }, "/expiresInDays", "must be at most 365"],
    ["a fractional day", { name: "x", expiresInDays: 1.5 }, "/expiresInDays", "must be a whole number"],
    ["no workspaces", { name: "x", workspaces: [] }, "/workspaces", "must hold at least 1 item"],
    ["a malformed workspace", { name: "x", workspaces: ["bad ws"] }, "/workspaces/0", "must start with a letter or digit"],
    ["an unknown field", { name: "x", owner: "usr_other" }, "/owner", "is not a known field"],
  ])("when the body has %s, then 400 naming the field, and nothing is minted", async (_label, body, path, message) => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws]);
    const res = await raw(srv.baseUrl, "POST", "/api/tokens", { token, body: JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([expect.objectContaining({ path })]);
    expect(res.json.errors[0].message).toContain(message);
    expect((await srv.client(token).GET("/api/tokens")).data!.data).toHaveLength(1);
  });

  test("when the body is too large or not JSON, then 413 or 415", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    expect((await raw(srv.baseUrl, "POST", "/api/tokens", { token, body: JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) }) })).status).toBe(413);
    expect((await raw(srv.baseUrl, "POST", "/api/tokens", { token, body: "name=x", contentType: "text/plain" })).status).toBe(415);
  });
});

describe("GET /api/tokens", () => {
  test("when a user has several tokens, then only theirs come back, newest first, in cursor pages, without secrets", async () => {
    const ws = uniqueWorkspace();
    const userId = `usr_${ws}`;
    const { token, id } = await admin([ws], userId);
    await admin([ws], `${userId}_other`);
    const minted = [];
    for (const name of ["a", "b", "c"]) minted.push((await srv.client(token).POST("/api/tokens", { body: { name } })).data!.id);
    const first = await srv.client(token).GET("/api/tokens", { params: { query: { limit: 2 } } });
    expect(first.data!.data.map((t) => t.id)).toEqual([minted[2], minted[1]]);
    const second = await srv.client(token).GET("/api/tokens", { params: { query: { limit: 2, cursor: first.data!.nextCursor! } } });
    expect(second.data!.data.map((t) => t.id)).toEqual([minted[0], id]);
    expect(second.data!.nextCursor).toBeNull();
    for (const t of [...first.data!.data, ...second.data!.data]) {
      expect(Object.keys(t).sort()).toEqual(["createdAt", "expiresAt", "id", "name", "scope", "toolsets", "userId", "workspaces"]);
      expect(t.userId).toBe(userId);
    }
  });

  test("when the cursor was not issued for this list, then 400", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    const res = await raw(srv.baseUrl, "GET", "/api/tokens?cursor=bogus.cursor", { token });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/query/cursor", message: expect.any(String) }]);
  });
});

describe("DELETE /api/tokens/{tokenId}", () => {
  test("when the owner revokes a token, then 204, it stops working, and a second revoke is 404", async () => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws]);
    const minted = (await srv.client(token).POST("/api/tokens", { body: { name: "agent" } })).data!;
    const del = await srv.client(token).DELETE("/api/tokens/{tokenId}", { params: { path: { tokenId: minted.id } } });
    expect(del.response.status).toBe(204);
    expect((await raw(srv.baseUrl, "GET", "/api/me", { token: minted.token })).status).toBe(401);
    expect((await srv.client(token).GET("/api/tokens")).data!.data.map((t) => t.id)).not.toContain(minted.id);
    expect((await raw(srv.baseUrl, "DELETE", `/api/tokens/${minted.id}`, { token })).status).toBe(404);
  });

  test("when another user's token is named, then 404 and it keeps working", async () => {
    const ws = uniqueWorkspace();
    const alice = await admin([ws], "usr_alice");
    const bob = await admin([ws], "usr_bob");
    const res = await raw(srv.baseUrl, "DELETE", `/api/tokens/${bob.id}`, { token: alice.token });
    expect(res.status).toBe(404);
    expect(res.json.type).toBe("/problems/not-found");
    expect((await raw(srv.baseUrl, "GET", "/api/me", { token: bob.token })).status).toBe(200);
  });

  test("when the id is malformed, then 400", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    const res = await raw(srv.baseUrl, "DELETE", "/api/tokens/mcp_123", { token });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([{ path: "/params/tokenId", message: "must be a token id (tok_…)" }]);
  });
});

describe("POST /api/session and DELETE /api/session", () => {
  test("when a person signs in, then 204 and an HttpOnly, SameSite=Lax, Path=/ cookie of at most 8 hours, not Secure on loopback", async () => {
    const { token, userId } = await admin([uniqueWorkspace()]);
    const res = await raw(srv.baseUrl, "POST", "/api/session", { token });
    expect(res.status).toBe(204);
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^mcp_session=[A-Za-z0-9_-]{43}; Max-Age=(\d+); Path=\/; HttpOnly; SameSite=Lax$/);
    expect(Number(/Max-Age=(\d+)/.exec(cookie)![1])).toBeLessThanOrEqual(8 * 3600);
    expect(await srv.services.sessions.resolve(cookieOf(cookie))).toMatchObject({ userId });
  });

  test("when the public URL is not loopback, then the cookie is Secure", async () => {
    const other = await startServer({ env: { MCP_API_PUBLIC_URL: "https://mcp.example.com" } });
    try {
      const token = await other.token([uniqueWorkspace()]);
      const res = await raw(other.baseUrl, "POST", "/api/session", { token });
      expect(res.headers.get("set-cookie")).toMatch(/; Secure$/);
    } finally {
      await other.stop();
    }
  });

  test("when the token expires within 8 hours, then the session ends with it", async () => {
    const { token } = await admin([uniqueWorkspace()], someUser(), { expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    const res = await raw(srv.baseUrl, "POST", "/api/session", { token });
    expect(Number(/Max-Age=(\d+)/.exec(res.headers.get("set-cookie")!)![1])).toBeLessThanOrEqual(3600);
  });

  test("when either carries a query parameter, then 400 and the session is neither made nor ended", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    const signIn = await raw(srv.baseUrl, "POST", "/api/session?remember=1", { token });
    expect(signIn.status).toBe(400);
    expect(signIn.headers.get("set-cookie")).toBeNull();
    const cookie = cookieOf((await raw(srv.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie"));
    const out = await raw(srv.baseUrl, "DELETE", "/api/session?all=1", { headers: { cookie: `mcp_session=${cookie}` } });
    expect(out.status).toBe(400);
    expect(await srv.services.sessions.resolve(cookie)).not.toBeNull();
  });

  test("when the token is invalid, then 401 and no cookie", async () => {
    const res = await raw(srv.baseUrl, "POST", "/api/session", { token: `mcpk_${"C".repeat(43)}` });
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(res.json.type).toBe("/problems/unauthorized");
  });

  test("when the cookie signs out, then 204, the cookie is cleared, and the session is dead server-side (a copy of the cookie is refused)", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    const cookie = cookieOf((await raw(srv.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie"));
    const out = await raw(srv.baseUrl, "DELETE", "/api/session", { headers: { cookie: `other=1; mcp_session=${cookie}` } });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toBe("mcp_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax");
    expect(await srv.services.sessions.resolve(cookie)).toBeNull();
    const again = await raw(srv.baseUrl, "DELETE", "/api/session", { headers: { cookie: `mcp_session=${cookie}` } });
    expect(again.status).toBe(401);
  });

  test("when there is no cookie, or only a token, then DELETE is 401: the API does not take the cookie, nor the session the token", async () => {
    const { token } = await admin([uniqueWorkspace()]);
    expect((await raw(srv.baseUrl, "DELETE", "/api/session")).status).toBe(401);
    expect((await raw(srv.baseUrl, "DELETE", "/api/session", { token })).status).toBe(401);
    // The cookie alone authorizes no API operation.
    const cookie = cookieOf((await raw(srv.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie"));
    expect((await raw(srv.baseUrl, "GET", "/api/me", { headers: { cookie: `mcp_session=${cookie}` } })).status).toBe(401);
    expect((await raw(srv.baseUrl, "GET", "/api/tokens", { headers: { cookie: `mcp_session=${cookie}` } })).status).toBe(401);
  });

  test("when the token signed in with is revoked, then its session ends too", async () => {
    const ws = uniqueWorkspace();
    const { token } = await admin([ws]);
    const minted = (await srv.client(token).POST("/api/tokens", { body: { name: "browser", scope: "admin" } })).data!;
    const cookie = cookieOf((await raw(srv.baseUrl, "POST", "/api/session", { token: minted.token })).headers.get("set-cookie"));
    expect(await srv.services.sessions.resolve(cookie)).not.toBeNull();
    await srv.client(token).DELETE("/api/tokens/{tokenId}", { params: { path: { tokenId: minted.id } } });
    expect(await srv.services.sessions.resolve(cookie)).toBeNull();
    expect((await raw(srv.baseUrl, "DELETE", "/api/session", { headers: { cookie: `mcp_session=${cookie}` } })).status).toBe(401);
  });
});

describe("when the store fails", () => {
  test("when the database is gone, then signing out is a 500 problem, and 503 while it cannot be opened", async () => {
    const s = await startServer();
    const token = await s.token([uniqueWorkspace()]);
    const cookie = cookieOf((await raw(s.baseUrl, "POST", "/api/session", { token })).headers.get("set-cookie"));
    await s.services.db.knex.destroy();
    try {
      const res = await raw(s.baseUrl, "DELETE", "/api/session", { headers: { cookie: `mcp_session=${cookie}` } });
      expect(res.status).toBe(500);
      expect(res.json).toMatchObject({ type: "/problems/internal-error" });
    } finally {
      await s.stop().catch(() => undefined);
    }
    const down = await startServer({ reuse: { dataDir: "/tmp", databaseUrl: "sqlite:/dev/null/not-a-dir/mcp-api.sqlite" }, waitForDatabase: true });
    try {
      expect((await raw(down.baseUrl, "DELETE", "/api/session", { headers: { cookie: `mcp_session=${"A".repeat(43)}` } })).status).toBe(503);
    } finally {
      await down.stop({ keepData: true }).catch(() => undefined);
    }
  });

  test("when requests without a live session keep coming from one address, then they are limited", async () => {
    const s = await startServer({ env: { MCP_API_RATE_LIMIT: "2" } });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await raw(s.baseUrl, "DELETE", "/api/session", { headers: { cookie: `mcp_session=${"A".repeat(43)}` } })).status);
      expect(statuses.slice(0, 2)).toEqual([401, 401]);
      expect(statuses.slice(2)).toContain(429);
    } finally {
      await s.stop();
    }
  });
});

describe("npm run -s token -- create --expires-in-days", () => {
  const cli = (args: string[], env: Record<string, string>) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: process.cwd(), env: { ...process.env, ...env }, encoding: "utf8" });

  test("when given a number of days, then the token expires then; when given nonsense, then exit 2 and nothing minted", async () => {
    const env = { DATABASE_URL: srv.databaseUrl, MCP_API_ENCRYPTION_KEY: srv.config.encryptionKey! };
    const ws = uniqueWorkspace();
    const { stdout, stderr } = await cli(["create", "--user", "usr_cli", "--workspace", ws, "--expires-in-days", "7"], env);
    expect(stderr).toMatch(/expires 20\d\d-/);
    const me = await raw(srv.baseUrl, "GET", "/api/me", { token: stdout.trim() });
    const days = (Date.parse(me.json.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);
    for (const bad of ["0", "366", "seven", "1.5"]) {
      const failed = await cli(["create", "--user", "usr_cli", "--workspace", ws, "--expires-in-days", bad], env).catch((e) => e);
      expect(failed.code, bad).toBe(2);
      expect(failed.stderr).toContain("--expires-in-days must be a whole number of days from 1 to 365");
    }
  }, 180_000);
});
