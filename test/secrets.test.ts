import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSecretBox } from "../server/data/secrets.js";
import { raw, startServer, storeContents, uniqueWorkspace, type TestServer } from "./helpers/server.js";
import { randomBytes } from "node:crypto";

const API_KEY = "sk_live_LEAKCHECK_a1b2c3d4e5";
const CLIENT_SECRET = "cs_LEAKCHECK_f6g7h8i9j0";
const NEW_KEY = "sk_live_LEAKCHECK_rotated_k1";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv?.stop();
});

describe("secrets", () => {
  test("when secrets are written, then no response, no log line and no database file contains them in plain text", async () => {
    const ws = uniqueWorkspace();
    const token = await srv.token([ws]);
    const bodies: string[] = [];
    const send = async (method: string, path: string, b?: unknown) => {
      const res = await raw(srv.baseUrl, method, path, { token, body: b === undefined ? undefined : JSON.stringify(b) });
      bodies.push(res.text, JSON.stringify([...res.headers]));
      return res;
    };
    const created = await send("POST", "/api/mcp-servers", {
      workspaceId: ws,
      name: "leaky?",
      url: "https://mcp.example.com/mcp",
      authType: "api_key",
      apiKey: API_KEY,
    });
    expect(created.status).toBe(201);
    const id = created.json.id;
    await send("GET", `/api/mcp-servers/${id}`);
    await send("GET", `/api/mcp-servers?workspaceId=${ws}`);
    await send("PATCH", `/api/mcp-servers/${id}`, { apiKey: NEW_KEY });
    // A bad request that carries a secret must not echo it either.
    const bad = await send("PATCH", `/api/mcp-servers/${id}`, { apiKey: NEW_KEY, bogus: API_KEY });
    expect(bad.status).toBe(400);
    const oauth = await send("POST", "/api/mcp-servers", {
      workspaceId: ws,
      name: "oauth",
      url: "https://mcp.example.com/mcp",
      authType: "oauth",
      oauthClientId: "client",
      oauthClientSecret: CLIENT_SECRET,
      oauthTokenEndpoint: "https://auth.example.com/token",
    });
    expect(oauth.status).toBe(201);
    await send("DELETE", `/api/mcp-servers/${oauth.json.id}`);

    for (const secret of [API_KEY, CLIENT_SECRET, NEW_KEY, token]) {
      for (const b of bodies) expect(b).not.toContain(secret);
      for (const line of srv.logs) expect(line).not.toContain(secret);
    }
    const stored = await storeContents(srv);
    expect(stored).toContain("leaky?");
    for (const secret of [API_KEY, CLIENT_SECRET, NEW_KEY, token]) expect(stored.includes(secret), `the store holds ${secret}`).toBe(false);
  });

  test("when a stored secret is opened, then it round-trips; copied to another record, it does not decrypt", async () => {
    const ws = uniqueWorkspace();
    const api = srv.client(await srv.token([ws]));
    const a = (await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name: "a", url: "https://a.example.com", authType: "api_key", apiKey: API_KEY } })).data!;
    const b = (await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name: "b", url: "https://b.example.com", authType: "api_key", apiKey: "other" } })).data!;
    const repo = srv.services.db.knex("mcp_servers");
    expect((await srv.services.servers.openSecrets(ws, a.id)).apiKey).toBe(API_KEY);
    const sealed = (await repo.clone().where({ id: a.id }).first()).api_key_enc as string;
    expect(sealed.startsWith("v2:")).toBe(true);
    await srv.services.db.knex("mcp_servers").where({ id: b.id }).update({ api_key_enc: sealed });
    await expect(srv.services.servers.openSecrets(ws, b.id)).rejects.toThrow();
  });
});

describe("secret box", () => {
  const binding = { recordId: "mcp_1", workspaceId: "ws_1", field: "apiKey" };
  test("when sealed twice, then the ciphertexts differ and both open", () => {
    const box = createSecretBox([randomBytes(32)]);
    const one = box.seal("hello", binding);
    const two = box.seal("hello", binding);
    expect(one).not.toBe(two);
    expect(box.open(one, binding)).toBe("hello");
  });
  test("when the binding or the key differs, or the ciphertext is tampered with, then it does not open", () => {
    const box = createSecretBox([randomBytes(32)]);
    const sealed = box.seal("hello", binding);
    expect(() => box.open(sealed, { ...binding, field: "oauthClientSecret" })).toThrow();
    expect(() => box.open(sealed, { ...binding, workspaceId: "ws_2" })).toThrow();
    expect(() => createSecretBox([randomBytes(32)]).open(sealed, binding)).toThrow(/not configured/);
    const parts = sealed.split(":");
    parts[4] = Buffer.from("hellx").toString("base64url");
    expect(() => box.open(parts.join(":"), binding)).toThrow();
  });
  test("when an older key is still configured, then what it sealed opens and new seals use the first key", () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealedOld = createSecretBox([oldKey]).seal("v", binding);
    const both = createSecretBox([newKey, oldKey]);
    expect(both.open(sealedOld, binding)).toBe("v");
    expect(both.keyIdOf(both.seal("v", binding))).toBe(both.currentKeyId);
    expect(both.keyIdOf(sealedOld)).not.toBe(both.currentKeyId);
  });
});
