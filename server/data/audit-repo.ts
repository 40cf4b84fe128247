// The audit trail: append-only events, written in the same transaction as the change.
import type { Knex } from "knex";
import type { McpServerEvent, ToolCallHour, ToolStat } from "../wire.js";
import { statementsOf, type Statement } from "./db.js";
import { newUlidFactory } from "./ids.js";

export type AuditEventInput = Omit<McpServerEvent, "id" | "serverId" | "workspaceId" | "at"> & { tokenId: string | null };

export interface EventRow {
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
  tool_change: string | null;
  subject_user_id: string | null;
}

// Every field of an event is bounded on the way in (issue 18): the columns' widths, and a tool
// name at MCP's 128 characters, cut as the gateway cuts it in the agent's message.
const BOUNDS = { type: 32, actor: 100, tokenId: 40, requestId: 128, fieldName: 100, fields: 100, tool: 128, outcome: 32 } as const;
const cut = (text: string, max: number) => (text.length <= max ? text : text.slice(0, max));
const cutOrNull = (text: string | null | undefined, max: number) => (text == null ? null : cut(text, max));

function boundedToolCall(call: NonNullable<AuditEventInput["toolCall"]>): NonNullable<AuditEventInput["toolCall"]> {
  return {
    tool: cut(call.tool, BOUNDS.tool),
    outcome: cut(call.outcome, BOUNDS.outcome) as typeof call.outcome,
    durationMs: Number.isFinite(call.durationMs) ? Math.max(0, Math.round(call.durationMs)) : 0,
    tokenId: cut(call.tokenId, BOUNDS.tokenId),
  };
}

/** The columns of an event row, in the order statements written past Knex list them. */
export const EVENT_COLUMNS = ["id", "server_id", "workspace_id", "type", "actor", "token_id", "request_id", "at", "fields", "tool_call", "tool_change", "subject_user_id"] as const satisfies readonly (keyof EventRow)[];

export function eventRow(id: string, server: { id: string; workspaceId: string }, event: AuditEventInput, at: string): EventRow {
  return {
    id,
    server_id: server.id,
    workspace_id: server.workspaceId,
    type: cut(event.type, BOUNDS.type),
    actor: cut(event.actor, BOUNDS.actor),
    token_id: cutOrNull(event.tokenId, BOUNDS.tokenId),
    request_id: cutOrNull(event.requestId, BOUNDS.requestId),
    at,
    fields: JSON.stringify(event.fields.slice(0, BOUNDS.fields).map((f) => ({ ...f, name: cut(f.name, BOUNDS.fieldName) }))),
    tool_call: event.toolCall ? JSON.stringify(boundedToolCall(event.toolCall)) : null,
    tool_change: event.toolChange ? JSON.stringify({ tool: cut(event.toolChange.tool, BOUNDS.tool), parts: event.toolChange.parts.slice(0, 5) }) : null,
    subject_user_id: event.subjectUserId ?? null,
  };
}

export async function insertEvent(
  db: Knex | Knex.Transaction,
  id: string,
  server: { id: string; workspaceId: string },
  event: AuditEventInput,
  at: string,
): Promise<void> {
  await db<EventRow>("audit_events").insert(eventRow(id, server, event, at));
}

/** One event of a batch appended together. */
export interface AppendedEvent {
  /** From newEventId() when the event happened, so ids keep the events' order. */
  id: string;
  server: { id: string; workspaceId: string };
  event: AuditEventInput;
  at: string;
}

// 12 columns a row: 100 rows stay far below both stores' limits on bound parameters.
const BATCH_ROWS = 100;

/** One multi-row INSERT of `rows`, in the store's placeholders; SQLite's names the ids it wrote, so that every step of a write runs. */
function insertRows(rows: readonly EventRow[], postgres: boolean): Statement {
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (const row of rows) {
    const marks: string[] = [];
    for (const column of EVENT_COLUMNS) {
      values.push(row[column]);
      marks.push(postgres ? `$${values.length}` : "?");
    }
    tuples.push(`(${marks.join(", ")})`);
  }
  const sql = `insert into audit_events (${EVENT_COLUMNS.join(", ")}) values ${tuples.join(", ")}`;
  return { sql: postgres ? sql : `${sql} returning id`, values };
}

function toEvent(r: EventRow): McpServerEvent {
  return {
    id: r.id,
    serverId: r.server_id,
    workspaceId: r.workspace_id,
    type: r.type as McpServerEvent["type"],
    actor: r.actor,
    requestId: r.request_id,
    at: r.at,
    fields: JSON.parse(r.fields) as McpServerEvent["fields"],
    ...(r.tool_call ? { toolCall: JSON.parse(r.tool_call) as NonNullable<McpServerEvent["toolCall"]> } : {}),
    ...(r.tool_change ? { toolChange: JSON.parse(r.tool_change) as NonNullable<McpServerEvent["toolChange"]> } : {}),
    ...(r.subject_user_id ? { subjectUserId: r.subject_user_id } : {}),
  };
}

// The order of ToolCall.outcome's enum in openapi.yaml, which the hourly counts follow within an hour.
const TOOL_CALL_OUTCOMES: readonly ToolCallHour["outcome"][] = ["ok", "tool_error", "error", "denied", "timeout", "upstream_error", "cancelled"];

export interface WorkspaceEventFilter {
  type?: string;
  serverId?: string;
  /** ISO-8601 UTC, as `at` is stored: text order is time order. */
  since?: string;
}

export function createAuditRepo(knex: Knex) {
  const newId = newUlidFactory();
  const pg = knex.client.config.client === "pg";
  // tool_call is JSON text; each store reads a field of it its own way.
  const field = (name: string) => (pg ? `(tool_call::jsonb ->> '${name}')` : `json_extract(tool_call, '$.${name}')`);
  const duration = pg ? `(${field("durationMs")})::integer` : field("durationMs");
  const statements = statementsOf(knex);
  return {
    /** An event that changes no record (a tool call through the gateway). */
    async append(server: { id: string; workspaceId: string }, event: AuditEventInput, at: string): Promise<void> {
      await insertEvent(knex, `evt_${newId()}`, server, event, at);
    },
    newEventId: () => `evt_${newId()}`,
    /**
     * Several such events in one transaction, a multi-row INSERT per 100, past Knex's builder
     * and transaction (statementsOf): each row count's statement is prepared once per connection.
     * A PostgreSQL write is one statement, so more than 100 rows there (a backlog) go through Knex.
     */
    async appendMany(events: readonly AppendedEvent[]): Promise<void> {
      if (events.length === 0) return;
      const rows = events.map((e) => eventRow(e.id, e.server, e.event, e.at));
      if (!pg || rows.length <= BATCH_ROWS) {
        const steps: Statement[] = [];
        for (let i = 0; i < rows.length; i += BATCH_ROWS) steps.push(insertRows(rows.slice(i, i + BATCH_ROWS), pg));
        await statements.write(steps);
        return;
      }
      await knex.transaction(async (trx) => {
        for (let i = 0; i < rows.length; i += BATCH_ROWS) await trx<EventRow>("audit_events").insert(rows.slice(i, i + BATCH_ROWS));
      });
    },
    /**
     * Deletes up to `batch` events recorded before `cutoff` (ISO-8601 UTC), of any server,
     * deleted ones included; returns how many. One short statement, so requests wait at most for one batch.
     */
    async deleteOlderThan(cutoff: string, batch: number): Promise<number> {
      const ids = knex<EventRow>("audit_events").select("id").where("at", "<", cutoff).orderBy("at").limit(batch);
      return knex<EventRow>("audit_events").whereIn("id", ids).delete();
    },
    /** Newest first; only events of the given workspaces. */
    async list(workspaces: readonly string[], serverId: string, limit: number, beforeId: string | null): Promise<McpServerEvent[]> {
      const q = knex<EventRow>("audit_events").where({ server_id: serverId }).whereIn("workspace_id", [...workspaces]);
      if (beforeId) q.andWhere("id", "<", beforeId);
      const rows = await q.orderBy("id", "desc").limit(limit);
      return rows.map(toEvent);
    },
    /** Every server's events of one workspace, newest first (audit_events_workspace_idx). */
    async listWorkspace(workspaceId: string, filter: WorkspaceEventFilter, limit: number, beforeId: string | null): Promise<McpServerEvent[]> {
      const q = knex<EventRow>("audit_events").where({ workspace_id: workspaceId });
      if (filter.type) q.andWhere("type", filter.type);
      if (filter.serverId) q.andWhere("server_id", filter.serverId);
      if (filter.since) q.andWhere("at", ">=", filter.since);
      if (beforeId) q.andWhere("id", "<", beforeId);
      const rows = await q.orderBy("id", "desc").limit(limit);
      return rows.map(toEvent);
    },
    /**
     * Calls, failures and nearest-rank p50/p95 per (server, tool), all computed by the database
     * (window functions, on both stores) over audit_events_workspace_type_at_idx.
     */
    async toolStats(workspaceId: string, since: string): Promise<ToolStat[]> {
      // Nearest rank k = ceil(p·n), in integer arithmetic: (p·n + 99) / 100.
      const rows: Array<{ server_id: string; tool: string; calls: number | string; errors: number | string; p50: number | string; p95: number | string }> = await knex
        .with("calls", (qb) =>
          qb
            .from("audit_events")
            .select("server_id", knex.raw(`${field("tool")} as tool`), knex.raw(`${field("outcome")} as outcome`), knex.raw(`${duration} as dur`))
            .where({ workspace_id: workspaceId, type: "tool_called" })
            .andWhere("at", ">=", since)
            .whereNotNull("tool_call"),
        )
        .with("ranked", (qb) =>
          qb.from("calls").select("server_id", "tool", "outcome", "dur", knex.raw("row_number() over (partition by server_id, tool order by dur) as rn"), knex.raw("count(*) over (partition by server_id, tool) as n")),
        )
        .from("ranked")
        .select(
          "server_id",
          "tool",
          knex.raw("count(*) as calls"),
          knex.raw("sum(case when outcome = 'ok' then 0 else 1 end) as errors"),
          knex.raw("max(case when rn = (50 * n + 99) / 100 then dur end) as p50"),
          knex.raw("max(case when rn = (95 * n + 99) / 100 then dur end) as p95"),
        )
        .groupBy("server_id", "tool")
        .orderBy([{ column: "calls", order: "desc" }, { column: "server_id" }, { column: "tool" }]);
      return rows.map((r) => ({ serverId: r.server_id, tool: r.tool, calls: Number(r.calls), errors: Number(r.errors), p50Ms: Number(r.p50), p95Ms: Number(r.p95) }));
    },
    /**
     * Calls per (UTC hour, outcome), counted by the database over audit_events_workspace_type_at_idx.
     * `at` is toISOString() text, so its first 13 characters name the hour on both stores.
     */
    async toolCallHours(workspaceId: string, since: string): Promise<ToolCallHour[]> {
      const rows: Array<{ hour: string; outcome: string; calls: number | string }> = await knex
        .from("audit_events")
        .select(knex.raw("substr(at, 1, 13) as hour"), knex.raw(`${field("outcome")} as outcome`), knex.raw("count(*) as calls"))
        .where({ workspace_id: workspaceId, type: "tool_called" })
        .andWhere("at", ">=", since)
        .whereNotNull("tool_call")
        .groupByRaw(`substr(at, 1, 13), ${field("outcome")}`);
      const order = new Map(TOOL_CALL_OUTCOMES.map((o, i) => [o, i]));
      return rows
        .map((r) => ({ hour: `${r.hour}:00:00.000Z`, outcome: r.outcome as ToolCallHour["outcome"], calls: Number(r.calls) }))
        .sort((a, b) => (a.hour < b.hour ? -1 : a.hour > b.hour ? 1 : (order.get(a.outcome) ?? 99) - (order.get(b.outcome) ?? 99)));
    },
  };
}

export type AuditRepo = ReturnType<typeof createAuditRepo>;
