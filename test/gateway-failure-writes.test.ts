// A member's failures are written once per failed attempt (164131b), and that must never leave a
// real failure unwritten: another process's success seen through this one's record cache, or a
// write that is not a status write moving the version on. Each gateway here is built as
// compose.ts builds it, over its own record cache: two of them are two processes on one store.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createMcpServerRepo, type StoredServer } from "../server/data/mcp-server-repo.js";
import { cacheRecordReads } from "../server/domain/gateway/record-cache.js";
import { createGatewayService } from "../server/domain/gateway/service.js";
import { createSessionCodec } from "../server/domain/gateway/session-codec.js";
import type { ConnectionError } from "../server/wire.js";
import { raw, startServer, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => srv?.stop());

const timeout: ConnectionError = { class: "timeout", message: "no answer within 3000 ms", httpStatus: null };

async function scenario(create: typeof createGatewayService) {
  const ws = `ws_fw_${randomBytes(3).toString("hex")}`;
  const token = await srv.token([ws], "usr_fw");
  const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "flaps", url: "https://mcp.example.com/mcp" }) });
  expect(created.status, created.text).toBe(201);
  const id = created.json.id as string;
  // "Process" 1 and 2: each its own record cache over the same store.
  const gatewayOf = () =>
    create({
      repo: cacheRecordReads(createMcpServerRepo(srv.services.db.knex, srv.services.box, (n) => n.toLowerCase(), (n) => n.toLowerCase())).cached,
      audit: { append: async () => {} } as never,
      oauthToken: async (stored: StoredServer) => ({ ok: false, stored, error: { class: "auth", message: "no", httpStatus: null } }) as never,
      sessions: createSessionCodec([Buffer.alloc(32, 1)]),
    });
  const p1 = gatewayOf();
  const p2 = gatewayOf();
  const actor = await srv.services.tokens.authenticate(`Bearer ${token}`);

  const a = await p1.open(actor, id, undefined); // a long exchange in process 1 (a tools/call waiting on its tool)
  await sleep(5);
  await (await p1.open(actor, id, undefined)).recordFailure(timeout); // another exchange of process 1 times out: error written
  await p1.open(actor, id, undefined); // process 1's next request reads the record (error) into its cache
  await (await p2.open(actor, id, undefined)).recordSuccess(); // process 2's exchange succeeds: connected written
  await a.recordFailure(timeout); // then the long exchange times out too, within RECORD_CACHE_MS
  return (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).json as { connectorStatus: string; lastError: unknown };
}

describe("a member's failure after another process recorded a success", () => {
  test("when a process's cached record still shows the failure, then a later failure after another process's success is still written", async () => {
    expect(await scenario(createGatewayService)).toMatchObject({ connectorStatus: "error", lastError: { class: "timeout" } });
  });
});

describe("a member's failure after a write that is not a status write", () => {
  test("when an OAuth write moved the version on after the exchange opened, then the exchange's own later failure is still written (lastCheckedAt moves on)", async () => {
    const ws = `ws_fwv_${randomBytes(3).toString("hex")}`;
    const token = await srv.token([ws], "usr_fw");
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "flaps", url: "https://mcp.example.com/mcp" }) });
    const id = created.json.id as string;
    const records = cacheRecordReads(createMcpServerRepo(srv.services.db.knex, srv.services.box, (n) => n.toLowerCase(), (n) => n.toLowerCase()));
    const gateway = createGatewayService({
      repo: records.cached,
      audit: { append: async () => {} } as never,
      oauthToken: async (stored: StoredServer) => ({ ok: false, stored, error: { class: "auth", message: "no", httpStatus: null } }) as never,
      sessions: createSessionCodec([Buffer.alloc(32, 1)]),
    });
    const actor = await srv.services.tokens.authenticate(`Bearer ${token}`);
    await (await gateway.open(actor, id, undefined)).recordFailure(timeout); // an earlier failure: v2
    const first = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).json;
    const a = await gateway.open(actor, id, undefined); // opened at v2, after that failure
    const now = (await records.repo.find([ws], id))!;
    expect(await records.repo.writeOAuth(now, { internals: { tokenObtainedAt: null } }, new Date().toISOString())).not.toBeNull(); // v3: not a status write
    await sleep(5);
    await a.recordFailure(timeout); // the exchange's own failure, after all that
    const after = (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).json;
    expect(Date.parse(after.lastCheckedAt)).toBeGreaterThan(Date.parse(first.lastCheckedAt));
  });
});
