// Toolsets and their own trail. A toolset's tools are kept as JSON on its row: they are read
// and written as a whole, and a workspace holds few toolsets.
import type { Knex } from "knex";
import type { FieldChange, ToolsetEvent } from "../wire.js";
import { newUlidFactory } from "./ids.js";

/** One tool of a toolset as stored: the server's own name for it, and the overrides (null: none). */
export interface StoredToolsetTool {
  serverId: string;
  tool: string;
  name: string | null;
  description: string | null;
}

export interface StoredToolset {
  id: string;
  workspaceId: string;
  name: string;
  description: string | null;
  tools: StoredToolsetTool[];
  version: number;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface ToolsetEventInput {
  type: ToolsetEvent["type"];
  actor: string;
  requestId: string | null;
  fields: FieldChange[];
  removedTools?: { serverId: string; tool: string }[];
}

interface ToolsetRow {
  id: string;
  workspace_id: string;
  name: string;
  description: string | null;
  tools: string;
  version: number;
  created_by: string;
  created_at: string;
  updated_at: string;
}

interface EventRow {
  id: string;
  toolset_id: string;
  workspace_id: string;
  type: string;
  actor: string;
  request_id: string | null;
  at: string;
  fields: string;
  removed_tools: string | null;
}

function toToolset(r: ToolsetRow): StoredToolset {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    name: r.name,
    description: r.description,
    tools: JSON.parse(r.tools) as StoredToolsetTool[],
    version: Number(r.version),
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toEvent(r: EventRow): ToolsetEvent {
  return {
    id: r.id,
    toolsetId: r.toolset_id,
    workspaceId: r.workspace_id,
    type: r.type as ToolsetEvent["type"],
    actor: r.actor,
    requestId: r.request_id,
    at: r.at,
    fields: JSON.parse(r.fields) as FieldChange[],
    ...(r.removed_tools ? { removedTools: JSON.parse(r.removed_tools) as { serverId: string; tool: string }[] } : {}),
  };
}

const cut = (text: string | null, max: number) => (text === null || text.length <= max ? text : text.slice(0, max));

export function createToolsetRepo(knex: Knex) {
  const newId = newUlidFactory();
  const newEventId = newUlidFactory();

  async function appendEvent(db: Knex | Knex.Transaction, toolset: { id: string; workspaceId: string }, event: ToolsetEventInput, at: string) {
    await db<EventRow>("toolset_events").insert({
      id: `evt_${newEventId()}`,
      toolset_id: toolset.id,
      workspace_id: toolset.workspaceId,
      type: event.type,
      actor: cut(event.actor, 100)!,
      request_id: cut(event.requestId, 128),
      at,
      fields: JSON.stringify(event.fields),
      removed_tools: event.removedTools ? JSON.stringify(event.removedTools) : null,
    });
  }

  return {
    async insert(input: Omit<StoredToolset, "id" | "version" | "createdAt" | "updatedAt">, at: string, event: ToolsetEventInput): Promise<StoredToolset> {
      const stored: StoredToolset = { ...input, id: `tls_${newId()}`, version: 1, createdAt: at, updatedAt: at };
      await knex.transaction(async (trx) => {
        await trx<ToolsetRow>("toolsets").insert({
          id: stored.id,
          workspace_id: stored.workspaceId,
          name: stored.name,
          description: stored.description,
          tools: JSON.stringify(stored.tools),
          version: 1,
          created_by: stored.createdBy,
          created_at: at,
          updated_at: at,
        });
        await appendEvent(trx, stored, event, at);
      });
      return stored;
    },

    /** One toolset, only if it is in one of `workspaces`. */
    async find(workspaces: readonly string[], id: string): Promise<StoredToolset | null> {
      const row = await knex<ToolsetRow>("toolsets").where({ id }).whereIn("workspace_id", [...workspaces]).first();
      return row ? toToolset(row) : null;
    },

    /** The workspace a toolset belongs to, or null. */
    async workspaceOf(id: string): Promise<string | null> {
      const row = await knex<ToolsetRow>("toolsets").select("workspace_id").where({ id }).first();
      return row ? row.workspace_id : null;
    },

    /** A workspace's toolsets, newest first, before `beforeId` when given. */
    async list(workspaceId: string, limit: number, beforeId: string | null): Promise<StoredToolset[]> {
      const q = knex<ToolsetRow>("toolsets").where({ workspace_id: workspaceId });
      if (beforeId) q.andWhere("id", "<", beforeId);
      return (await q.orderBy("id", "desc").limit(limit)).map(toToolset);
    },

    /** Writes only if the toolset is still at `current.version`; false tells the caller to re-read. */
    async update(current: StoredToolset, next: Pick<StoredToolset, "name" | "description" | "tools">, at: string, event: ToolsetEventInput): Promise<StoredToolset | null> {
      return knex.transaction(async (trx) => {
        const n = await trx<ToolsetRow>("toolsets")
          .where({ id: current.id, version: current.version })
          .update({ name: next.name, description: next.description, tools: JSON.stringify(next.tools), version: current.version + 1, updated_at: at });
        if (n === 0) return null;
        await appendEvent(trx, current, event, at);
        return { ...current, ...next, version: current.version + 1, updatedAt: at };
      });
    },

    /** Deletes the toolset if it is still at `version` (any version when null). */
    async remove(current: StoredToolset, version: number | null, at: string, event: ToolsetEventInput): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const q = trx<ToolsetRow>("toolsets").where({ id: current.id });
        if (version !== null) q.andWhere({ version });
        if ((await q.delete()) === 0) return false;
        await appendEvent(trx, current, event, at);
        return true;
      });
    },

    /** The workspace's toolsets that hold a tool of `serverId`. */
    async withServer(workspaceId: string, serverId: string): Promise<StoredToolset[]> {
      const rows = await knex<ToolsetRow>("toolsets").where({ workspace_id: workspaceId }).andWhere("tools", "like", `%${serverId}%`);
      return rows.map(toToolset).filter((t) => t.tools.some((x) => x.serverId === serverId));
    },

    /** One toolset's events, newest first, before `beforeId` when given; only in `workspaces`. */
    async listEvents(workspaces: readonly string[], toolsetId: string, limit: number, beforeId: string | null): Promise<ToolsetEvent[]> {
      const q = knex<EventRow>("toolset_events").where({ toolset_id: toolsetId }).whereIn("workspace_id", [...workspaces]);
      if (beforeId) q.andWhere("id", "<", beforeId);
      return (await q.orderBy("id", "desc").limit(limit)).map(toEvent);
    },
  };
}

export type ToolsetRepo = ReturnType<typeof createToolsetRepo>;
