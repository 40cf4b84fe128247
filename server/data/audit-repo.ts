// The audit trail: append-only events, written in the same transaction as the change.
import type { Knex } from "knex";
import type { McpServerEvent } from "../wire.js";
import { newUlidFactory } from "./ids.js";

export type AuditEventInput = Omit<McpServerEvent, "id" | "serverId" | "workspaceId" | "at"> & { tokenId: string | null };

interface EventRow {
  id: string;
  server_id: string;
  workspace_id: string;
  type: string;
  actor: string;
  token_id: string | null;
  request_id: string | null;
  at: string;
  fields: string;
  tool_call: string | null;
}

export async function insertEvent(
  db: Knex | Knex.Transaction,
  id: string,
  server: { id: string; workspaceId: string },
  event: AuditEventInput,
  at: string,
): Promise<void> {
  await db<EventRow>("audit_events").insert({
    id,
    server_id: server.id,
    workspace_id: server.workspaceId,
    type: event.type,
    actor: event.actor,
    token_id: event.tokenId,
    request_id: event.requestId,
    at,
    fields: JSON.stringify(event.fields),
    tool_call: event.toolCall ? JSON.stringify(event.toolCall) : null,
  });
}

export function createAuditRepo(knex: Knex) {
  const newId = newUlidFactory();
  return {
    /** An event that changes no record (a tool call through the gateway). */
    async append(server: { id: string; workspaceId: string }, event: AuditEventInput, at: string): Promise<void> {
      await insertEvent(knex, `evt_${newId()}`, server, event, at);
    },
    /** Newest first; only events of the given workspaces. */
    async list(workspaces: readonly string[], serverId: string, limit: number, beforeId: string | null): Promise<McpServerEvent[]> {
      const q = knex<EventRow>("audit_events").where({ server_id: serverId }).whereIn("workspace_id", [...workspaces]);
      if (beforeId) q.andWhere("id", "<", beforeId);
      const rows = await q.orderBy("id", "desc").limit(limit);
      return rows.map((r) => ({
        id: r.id,
        serverId: r.server_id,
        workspaceId: r.workspace_id,
        type: r.type as McpServerEvent["type"],
        actor: r.actor,
        requestId: r.request_id,
        at: r.at,
        fields: JSON.parse(r.fields) as McpServerEvent["fields"],
        ...(r.tool_call ? { toolCall: JSON.parse(r.tool_call) as NonNullable<McpServerEvent["toolCall"]> } : {}),
      }));
    },
  };
}

export type AuditRepo = ReturnType<typeof createAuditRepo>;
