// The audit trail's batched append (the buffer's flush: domain/audit-buffer.ts): one transaction
// of multi-row INSERTs, 100 rows each, written past Knex's builder. On both stores.
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createAuditRepo, type AppendedEvent } from "../server/data/audit-repo.js";
import { startServer } from "./helpers/server.js";

function events(repo: ReturnType<typeof createAuditRepo>, server: { id: string; workspaceId: string }, count: number): AppendedEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    id: repo.newEventId(),
    server,
    at: new Date(Date.UTC(2026, 11, 4, 1, 0, 0, i)).toISOString(),
    event: { type: "tool_called", actor: "usr_batch", tokenId: "tok_batch", requestId: `req-${i}`, fields: [], toolCall: { tool: `tool_${i}`, outcome: i % 2 ? "ok" : "tool_error", durationMs: i, tokenId: "tok_batch" } },
  }));
}

describe("audit appendMany", () => {
  test("when 1, 100 and 250 events are appended, then every one is listed back as it was given, newest first", async () => {
    const srv = await startServer();
    try {
      const repo = createAuditRepo(srv.services.db.knex);
      for (const count of [1, 100, 250]) {
        const server = { id: `mcp_batch_${randomBytes(4).toString("hex")}`, workspaceId: `ws_batch_${randomBytes(3).toString("hex")}` };
        const given = events(repo, server, count);
        await repo.appendMany(given);
        const listed = await repo.list([server.workspaceId], server.id, 500, null);
        expect(listed.map((e) => e.id)).toEqual(given.map((e) => e.id).reverse());
        expect(listed.at(-1)).toEqual({ id: given[0].id, serverId: server.id, workspaceId: server.workspaceId, type: "tool_called", actor: "usr_batch", requestId: "req-0", at: given[0].at, fields: [], toolCall: { tool: "tool_0", outcome: "tool_error", durationMs: 0, tokenId: "tok_batch" } });
        expect(listed[0].toolCall).toEqual({ tool: `tool_${count - 1}`, outcome: (count - 1) % 2 ? "ok" : "tool_error", durationMs: count - 1, tokenId: "tok_batch" });
      }
    } finally {
      await srv.stop();
    }
  }, 60_000);

  test("when one row of a batch of 250 cannot be written, then none of the batch is written", async () => {
    const srv = await startServer();
    try {
      const repo = createAuditRepo(srv.services.db.knex);
      const server = { id: `mcp_batch_${randomBytes(4).toString("hex")}`, workspaceId: `ws_batch_${randomBytes(3).toString("hex")}` };
      const first = events(repo, server, 1);
      await repo.appendMany(first);
      // The last row repeats an id already stored: the third INSERT of the batch fails.
      const batch = [...events(repo, server, 249), { ...first[0] }];
      await expect(repo.appendMany(batch)).rejects.toThrow();
      const listed = await repo.list([server.workspaceId], server.id, 500, null);
      expect(listed.map((e) => e.id)).toEqual([first[0].id]);
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
