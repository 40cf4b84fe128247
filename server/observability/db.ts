// Database statements as spans (their kind and table, never the SQL's values), from Knex's
// query events, and the connection pool as metrics.
import type { Knex } from "knex";
import { telemetry, type SpanHandle } from "./hooks.js";

const TABLE = /\b(?:from|into|update|join|table)\s+[`"]?([A-Za-z_][A-Za-z0-9_]*)/i;
const VERB = /^\s*([A-Za-z]+)/;
const MAX_OPEN = 10_000;

/** "select mcp_servers": the statement's verb and first table, as db.query.summary. */
export function statementSummary(sql: string): { operation: string; table: string | null; summary: string } {
  const operation = (VERB.exec(sql)?.[1] ?? "query").toLowerCase();
  const table = TABLE.exec(sql)?.[1] ?? null;
  return { operation, table, summary: table ? `${operation} ${table}` : operation };
}

type QueryEvent = { __knexQueryUid?: string; sql?: string };

export function traceStatements(knex: Knex, system: "sqlite" | "postgresql") {
  const open = new Map<string, SpanHandle>();
  knex.on("query", (q: QueryEvent) => {
    const tracing = telemetry.tracing;
    if (!tracing || !q.__knexQueryUid || typeof q.sql !== "string" || open.size >= MAX_OPEN) return;
    const { operation, table, summary } = statementSummary(q.sql);
    const attributes: Record<string, string> = { "db.system.name": system, "db.operation.name": operation, "db.query.summary": summary };
    if (table) attributes["db.collection.name"] = table;
    open.set(q.__knexQueryUid, tracing.start(summary, "client", attributes));
  });
  const end = (failed: boolean) => (_result: unknown, q: QueryEvent) => {
    const uid = q?.__knexQueryUid;
    const span = uid ? open.get(uid) : undefined;
    if (!span) return;
    open.delete(uid!);
    if (failed) span.fail("db_error");
    span.end();
  };
  knex.on("query-response", end(false));
  knex.on("query-error", end(true));
}
