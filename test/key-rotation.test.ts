// Key rotation: re-encrypting every stored secret under a new key while a server keeps serving.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, test } from "vitest";
import { reencryptRow, rotateSecrets, secretKeyCounts, type SecretRow } from "../server/data/key-rotation.js";
import type { Secrets } from "../server/data/mcp-server-repo.js";
import { createSecretBox, keyIdFor, originOf } from "../server/data/secrets.js";
import { startRecordingUpstream } from "./helpers/recording-upstream.js";
import { dropStore, raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

// The records below point at this origin; their credentials are sealed to it.
const MCP_ORIGIN = originOf("https://mcp.example.com/mcp");

const root = join(import.meta.dirname, "..");
const newKey = () => randomBytes(32).toString("base64");
const idOf = (key: string) => keyIdFor(Buffer.from(key, "base64"));
const NO_SECRETS: Secrets = { apiKey: null, oauthClientSecret: null, oauthAccessToken: null, oauthRefreshToken: null, secretHeaders: null, connectorSecrets: null, oauthClientPrivateKey: null };

// Asynchronous, so that the in-process server keeps serving while the CLI runs.
async function keysCli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/keys.ts", ...args], {
      cwd: root,
      env: { ...process.env, MCP_API_ENCRYPTION_KEYS_PREVIOUS: "", LOG_LEVEL: "warn", ...env },
      encoding: "utf8",
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw err;
    return { code: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** `keys status` as { keyId: [count, role] }. */
function statusTable(stdout: string): Record<string, [number, string]> {
  return Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((line) => line.split("\t"))
      .map(([id, count, role]) => [id, [Number(count), role]]),
  );
}

// Several servers take turns on one store; whatever a test leaves running or stored goes afterwards.
const running = new Set<TestServer>();
const stores: TestServer[] = [];
async function start(store: TestServer | null, env: Record<string, string>): Promise<TestServer> {
  const srv = await startServer({ reuse: store ? { dataDir: store.dataDir, databaseUrl: store.databaseUrl } : undefined, env });
  running.add(srv);
  if (!store) stores.push(srv);
  return srv;
}
async function stop(srv: TestServer) {
  running.delete(srv);
  await srv.stop({ keepData: true });
}
afterEach(async () => {
  for (const srv of running) await stop(srv);
  for (const store of stores.splice(0)) {
    rmSync(store.dataDir, { recursive: true, force: true });
    await dropStore(store.databaseUrl);
  }
});

async function expectSecrets(srv: TestServer, ws: string, expected: Map<string, Secrets>) {
  for (const [id, secrets] of expected) expect(await srv.services.servers.openSecrets(ws, id), id).toEqual(secrets);
}

async function rowsById(srv: TestServer): Promise<Map<string, Record<string, unknown>>> {
  const rows = await srv.services.db.knex("mcp_servers").select();
  return new Map(rows.map((r: Record<string, unknown>) => [r.id as string, r]));
}

describe("keys rotate", () => {
  test("when a rotation is interrupted, then resumed while the server keeps writing, then every secret stays readable and ends under the new key", async () => {
    const OLD = newKey();
    const NEW = newKey();

    // Records written under the old key: api keys, OAuth client secrets, and (written as the
    // token exchange would) OAuth access and refresh tokens, so that every secret column is covered.
    const first = await start(null, { MCP_API_ENCRYPTION_KEY: OLD });
    const ws = uniqueWorkspace();
    const api = first.client(await first.token([ws]));
    const expected = new Map<string, Secrets>();
    for (let i = 0; i < 15; i++) {
      const { data } = await api.POST("/api/mcp-servers", {
        body: { workspaceId: ws, name: `key-${i}`, url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: `sk_old_${i}` },
      });
      expected.set(data!.id, { ...NO_SECRETS, apiKey: `sk_old_${i}` });
    }
    const oldBox = createSecretBox([Buffer.from(OLD, "base64")]);
    for (let i = 0; i < 10; i++) {
      const { data } = await api.POST("/api/mcp-servers", {
        body: {
          workspaceId: ws,
          name: `oauth-${i}`,
          url: "https://mcp.example.com/mcp",
          authType: "oauth",
          oauthClientId: `client-${i}`,
          oauthClientSecret: `cs_old_${i}`,
          oauthTokenEndpoint: "https://auth.example.com/token",
        },
      });
      const id = data!.id;
      const secrets: Secrets = { ...NO_SECRETS, oauthClientSecret: `cs_old_${i}` };
      if (i < 3) {
        secrets.oauthAccessToken = `at_old_${i}`;
        secrets.oauthRefreshToken = `rt_old_${i}`;
        await first.services.db.knex("mcp_servers").where({ id }).update({
          oauth_access_token_enc: oldBox.seal(secrets.oauthAccessToken, { recordId: id, workspaceId: ws, field: "oauthAccessToken", origin: MCP_ORIGIN }),
          oauth_refresh_token_enc: oldBox.seal(secrets.oauthRefreshToken, { recordId: id, workspaceId: ws, field: "oauthRefreshToken", origin: MCP_ORIGIN }),
        });
      }
      expected.set(id, secrets);
    }
    const total = 15 + 10 + 3 * 2;
    await stop(first);

    // Restarted with the new key current and the old one previous: everything still opens.
    const srv = await start(first, { MCP_API_ENCRYPTION_KEY: NEW, MCP_API_ENCRYPTION_KEYS_PREVIOUS: OLD });
    expect(srv.services.box.currentKeyId).toBe(idOf(NEW));
    await expectSecrets(srv, ws, expected);
    const before = await rowsById(srv);

    // Killed half-way: what was rewritten is under the new key, the rest under the old, all readable.
    const interrupted = await rotateSecrets(srv.services.db.knex, srv.services.box, { batchSize: 4, limit: 10 });
    expect(interrupted).toEqual({ rotated: 10, skipped: 0, failed: [], remaining: total - 10 });
    expect(await secretKeyCounts(srv.services.db.knex, srv.services.box)).toEqual({ [idOf(NEW)]: 10, [idOf(OLD)]: total - 10 });
    await expectSecrets(srv, ws, expected);

    // The server rewrites a secret after the rotation read it: the rotation's write must not land.
    const target = [...expected.keys()].filter((id) => expected.get(id)!.apiKey).at(-1)!;
    const stale = (await srv.services.db.knex("mcp_servers").where({ id: target }).first()) as SecretRow;
    expect(srv.services.box.keyIdOf(stale.api_key_enc!)).toBe(idOf(OLD));
    const patched = await srv.client(await srv.token([ws])).PATCH("/api/mcp-servers/{id}", { params: { path: { id: target } }, body: { apiKey: "sk_patched" } });
    expect(patched.response.status).toBe(200);
    expected.set(target, { ...expected.get(target)!, apiKey: "sk_patched" });
    expect(await reencryptRow(srv.services.db.knex, srv.services.box, stale)).toEqual({ rotated: 0, skipped: 1, failed: [] });
    await expectSecrets(srv, ws, expected);

    // The rest through the CLI, in another process, while this server keeps serving.
    const env = { DATABASE_URL: srv.databaseUrl, MCP_API_ENCRYPTION_KEY: NEW, MCP_API_ENCRYPTION_KEYS_PREVIOUS: OLD };
    const rotate = await keysCli(env, "rotate", "--batch-size", "7");
    expect(rotate, rotate.stderr).toMatchObject({ code: 0 });
    expect(rotate.stdout).toContain(`rotated ${total - 10 - 1} secrets to key ${idOf(NEW)}; 0 remain`);
    const status = await keysCli(env, "status");
    expect(status.code, status.stderr).toBe(0);
    expect(statusTable(status.stdout)).toEqual({ [idOf(NEW)]: [total, "current"], [idOf(OLD)]: [0, "previous"] });
    expect(await secretKeyCounts(srv.services.db.knex, srv.services.box)).toEqual({ [idOf(NEW)]: total });
    await expectSecrets(srv, ws, expected);

    // Rotation is not a change to the record: only the patched one moved.
    const after = await rowsById(srv);
    for (const [id, row] of before) {
      if (id === target) continue;
      expect({ version: after.get(id)!.version, updatedAt: after.get(id)!.updated_at }, id).toEqual({ version: row.version, updatedAt: row.updated_at });
    }
    await stop(srv);

    // The old key can go: the new one alone opens everything, the old one alone nothing.
    const newOnly = await start(first, { MCP_API_ENCRYPTION_KEY: NEW });
    await expectSecrets(newOnly, ws, expected);
    await stop(newOnly);
    const oldOnly = await start(first, { MCP_API_ENCRYPTION_KEY: OLD });
    for (const id of expected.keys()) await expect(oldOnly.services.servers.openSecrets(ws, id)).rejects.toThrow(/not configured/);
  }, 120_000);

  test("when a secret was sealed with a key that is not configured, then rotate reports it, rotates the rest, and exits 1", async () => {
    const OLD = newKey();
    const NEW = newKey();
    const STRANGER = newKey();
    const srv = await start(null, { MCP_API_ENCRYPTION_KEY: NEW, MCP_API_ENCRYPTION_KEYS_PREVIOUS: OLD });
    const ws = uniqueWorkspace();
    const api = srv.client(await srv.token([ws]));
    const ids: string[] = [];
    for (const name of ["lost", "old", "new"]) {
      const { data } = await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name, url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: `sk_${name}` } });
      ids.push(data!.id);
    }
    const [lost, old] = ids;
    const sealWith = (key: string, id: string, plaintext: string) =>
      createSecretBox([Buffer.from(key, "base64")]).seal(plaintext, { recordId: id, workspaceId: ws, field: "apiKey", origin: MCP_ORIGIN });
    const lostSealed = sealWith(STRANGER, lost, "sk_lost");
    await srv.services.db.knex("mcp_servers").where({ id: lost }).update({ api_key_enc: lostSealed });
    await srv.services.db.knex("mcp_servers").where({ id: old }).update({ api_key_enc: sealWith(OLD, old, "sk_old") });

    const rotate = await keysCli({ DATABASE_URL: srv.databaseUrl, MCP_API_ENCRYPTION_KEY: NEW, MCP_API_ENCRYPTION_KEYS_PREVIOUS: OLD }, "rotate");
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toContain(`failed\t${lost}\tapiKey\tstored secret was sealed with key ${idOf(STRANGER)}, which is not configured`);
    expect(rotate.stdout).toContain(`rotated 1 secrets to key ${idOf(NEW)}; 1 remain`);
    expect((await srv.services.db.knex("mcp_servers").where({ id: lost }).first()).api_key_enc).toBe(lostSealed);
    expect(await secretKeyCounts(srv.services.db.knex, srv.services.box)).toEqual({ [idOf(NEW)]: 2, [idOf(STRANGER)]: 1 });
    expect((await srv.services.servers.openSecrets(ws, old)).apiKey).toBe("sk_old");

    const status = await keysCli({ DATABASE_URL: srv.databaseUrl, MCP_API_ENCRYPTION_KEY: NEW, MCP_API_ENCRYPTION_KEYS_PREVIOUS: OLD }, "status");
    expect(statusTable(status.stdout)).toEqual({ [idOf(NEW)]: [2, "current"], [idOf(OLD)]: [0, "previous"], [idOf(STRANGER)]: [1, "not configured"] });
  }, 60_000);
  test("when people have their own connections, then rotation re-seals them too: each person's credential still works through the gateway and none is left under the old key", async () => {
    const OLD = newKey();
    const NEW = newKey();
    const upstream = await startRecordingUpstream();
    try {
      const env = { MCP_API_ALLOW_PRIVATE_NETWORK: "true" };
      const first = await start(null, { ...env, MCP_API_ENCRYPTION_KEY: OLD });
      const ws = uniqueWorkspace();
      const people = [`usr_alice_${randomBytes(3).toString("hex")}`, `usr_bob_${randomBytes(3).toString("hex")}`];
      const tokens = new Map<string, string>();
      for (const userId of people) tokens.set(userId, await first.token([ws], userId));
      const created = await raw(first.baseUrl, "POST", "/api/mcp-servers", {
        token: tokens.get(people[0]),
        body: JSON.stringify({ workspaceId: ws, name: "personal", url: upstream.url, authType: "api_key", connectionScope: "user" }),
      });
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;
      for (const userId of people) {
        const put = await raw(first.baseUrl, "PUT", `/api/mcp-servers/${id}/connections/me`, {
          token: tokens.get(userId),
          body: JSON.stringify({ apiKey: `sk_${userId}`, secretHeaders: { "X-Org": `org_${userId}` } }),
        });
        expect(put.status, put.text).toBe(200);
      }
      await stop(first);

      const srv = await start(first, { ...env, MCP_API_ENCRYPTION_KEY: NEW, MCP_API_ENCRYPTION_KEYS_PREVIOUS: OLD });
      // Two people, an API key and secret headers each; the record itself holds nothing sealed.
      expect(await secretKeyCounts(srv.services.db.knex, srv.services.box)).toEqual({ [idOf(OLD)]: 4 });
      expect(await rotateSecrets(srv.services.db.knex, srv.services.box, { batchSize: 1 })).toEqual({ rotated: 4, skipped: 0, failed: [], remaining: 0 });
      expect(await secretKeyCounts(srv.services.db.knex, srv.services.box)).toEqual({ [idOf(NEW)]: 4 });
      const rows = await srv.services.db.knex("user_connections").where({ server_id: id }).select();
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        for (const column of ["api_key_enc", "secret_headers_enc"]) expect(srv.services.box.keyIdOf(row[column]), `${row.user_id} ${column}`).toBe(idOf(NEW));
      }
      await stop(srv);

      // The old key gone: each person's own credential still goes upstream, for that person only.
      const newOnly = await start(first, { ...env, MCP_API_ENCRYPTION_KEY: NEW });
      for (const userId of people) {
        const call = await raw(newOnly.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, {
          token: await newOnly.token([ws], userId),
          headers: { accept: "application/json, text/event-stream" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "whoami", arguments: { who: userId } } }),
        });
        expect(call.json?.result?.content?.[0]?.text, call.text).toBe(`called by ${userId}`);
        const seen = upstream.calls.filter((c) => c.method === "tools/call" && c.who === userId);
        expect(seen.map((c) => [c.authorization, c.headers["x-org"]])).toEqual([[`Bearer sk_${userId}`, `org_${userId}`]]);
      }
    } finally {
      await upstream.close();
    }
  }, 120_000);
});
