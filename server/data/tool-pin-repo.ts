// Pinned tool definitions (issue 22): one row per (server, tool). Every write that changes what
// a pin says is conditional on what the writer saw, so two processes seeing one change record it
// once, and an approval applies only to the definitions its approver read.
import type { Knex } from "knex";
import { insertEvent, type AuditEventInput } from "./audit-repo.js";
import { newUlidFactory } from "./ids.js";

interface PinRow {
  server_id: string;
  workspace_id: string;
  tool: string;
  pinned_definition: string;
  pinned_hash: string;
  pinned_at: string;
  current_definition: string | null;
  current_hash: string | null;
  changed_parts: string;
  missing: boolean | number;
  changed_at: string | null;
}

/** A pin as stored: definitions are canonical JSON text, parsed by the domain. */
export interface StoredPin {
  serverId: string;
  tool: string;
  pinnedDefinition: string;
  pinnedHash: string;
  pinnedAt: string;
  currentDefinition: string | null;
  currentHash: string | null;
  changedParts: string[];
  missing: boolean;
  changedAt: string | null;
}

type ServerRef = { id: string; workspaceId: string };

const toPin = (r: PinRow): StoredPin => ({
  serverId: r.server_id,
  tool: r.tool,
  pinnedDefinition: r.pinned_definition,
  pinnedHash: r.pinned_hash,
  pinnedAt: r.pinned_at,
  currentDefinition: r.current_definition,
  currentHash: r.current_hash,
  changedParts: JSON.parse(r.changed_parts) as string[],
  missing: Boolean(r.missing),
  changedAt: r.changed_at,
});

// SQLite's bound-parameter limit is far above this; a list holds at most 1000 tools anyway.
const IN_CHUNK = 500;

export function createToolPinRepo(knex: Knex) {
  const table = (db: Knex | Knex.Transaction = knex) => db<PinRow>("tool_pins");
  const eventId = newUlidFactory();
  const record = (db: Knex.Transaction, server: ServerRef, event: AuditEventInput, at: string) => insertEvent(db, `evt_${eventId()}`, server, event, at);

  return {
    /** Every pin of a server: what a process caches. */
    async all(serverId: string): Promise<StoredPin[]> {
      return (await table().where({ server_id: serverId })).map(toPin);
    },

    async find(serverId: string, tool: string): Promise<StoredPin | null> {
      const row = await table().where({ server_id: serverId, tool }).first();
      return row ? toPin(row) : null;
    },

    /** By tool name (byte order); `afterTool` is the last tool of the previous page. */
    async page(serverId: string, limit: number, afterTool: string | null): Promise<StoredPin[]> {
      const q = table().where({ server_id: serverId });
      if (afterTool !== null) q.andWhere("tool", ">", afterTool);
      return (await q.orderBy("tool").limit(limit)).map(toPin);
    },

    /** A first sight: pins the definition unless another process pinned the tool first (then false). */
    async pin(server: ServerRef, tool: string, definition: string, hash: string, at: string): Promise<boolean> {
      const rows = await table()
        .insert({ server_id: server.id, workspace_id: server.workspaceId, tool, pinned_definition: definition, pinned_hash: hash, pinned_at: at, changed_parts: "[]", missing: false })
        .onConflict(["server_id", "tool"])
        .ignore()
        .returning("tool");
      return rows.length > 0;
    },

    /**
     * A definition other than the pin, seen now: recorded (with `event`, in the same transaction)
     * unless this very definition is already recorded, so each change is one event whoever saw it.
     * Returns whether it was recorded.
     */
    async recordChange(server: ServerRef, tool: string, change: { definition: string; hash: string; parts: string[] }, at: string, event: AuditEventInput): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const n = await table(trx)
          .where({ server_id: server.id, tool })
          .andWhereNot("pinned_hash", change.hash)
          .andWhere((q) => q.whereNull("current_hash").orWhereNot("current_hash", change.hash))
          .update({
            current_definition: change.definition,
            current_hash: change.hash,
            changed_parts: JSON.stringify(change.parts),
            missing: false,
            changed_at: knex.raw("coalesce(changed_at, ?)", [at]) as never,
          });
        if (n > 0) {
          await record(trx, server, event, at);
          return true;
        }
        // The same change, seen again after the tool was missing: it is back, still held.
        await table(trx).where({ server_id: server.id, tool, current_hash: change.hash, missing: true }).update({ missing: false });
        return false;
      });
    },

    /** The pinned definition seen again: whatever differed (or was missing) is over. */
    async recordRestored(serverId: string, tool: string, pinnedHash: string): Promise<void> {
      await table()
        .where({ server_id: serverId, tool, pinned_hash: pinnedHash })
        .andWhere((q) => q.whereNotNull("current_hash").orWhere("missing", true))
        .update({ current_definition: null, current_hash: null, changed_parts: "[]", missing: false, changed_at: null });
    },

    /** Tools of a full list: every other pin of the server is missing. */
    async recordMissing(serverId: string, present: readonly string[], at: string): Promise<void> {
      const q = table().where({ server_id: serverId, missing: false });
      // Chunked NOT IN: a tool absent from every chunk is absent from the list.
      for (let i = 0; i < present.length; i += IN_CHUNK) q.whereNotIn("tool", present.slice(i, i + IN_CHUNK));
      await q.update({ missing: true, changed_at: knex.raw("coalesce(changed_at, ?)", [at]) as never });
    },

    /**
     * Pins the definition last seen, only if the pin still holds exactly the two hashes the
     * approver read; null when it moved on meanwhile.
     */
    async approve(server: ServerRef, tool: string, seen: { pinnedHash: string; currentHash: string }, at: string, event: AuditEventInput): Promise<StoredPin | null> {
      return knex.transaction(async (trx) => {
        const n = await table(trx)
          .where({ server_id: server.id, tool, pinned_hash: seen.pinnedHash, current_hash: seen.currentHash, missing: false })
          .update({
            pinned_definition: knex.ref("current_definition") as never,
            pinned_hash: seen.currentHash,
            pinned_at: at,
            current_definition: null,
            current_hash: null,
            changed_parts: "[]",
            changed_at: null,
          });
        if (n === 0) return null;
        await record(trx, server, event, at);
        const row = await table(trx).where({ server_id: server.id, tool }).first();
        return row ? toPin(row) : null;
      });
    },

    /** Forgets a pin; false when there was none. */
    async remove(server: ServerRef, tool: string, at: string, event: AuditEventInput): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const n = await table(trx).where({ server_id: server.id, tool }).delete();
        if (n > 0) await record(trx, server, event, at);
        return n > 0;
      });
    },
  };
}

export type ToolPinRepo = ReturnType<typeof createToolPinRepo>;
