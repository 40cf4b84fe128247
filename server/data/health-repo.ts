// Upstream health: each server of a workspace with its tool calls of a recent window,
// aggregated by the database; the servers the background checks visit; and leases.
import type { Knex } from "knex";
import type { ServerHealth } from "../wire.js";
import { isUniqueViolation } from "./db.js";

interface HealthRow {
  id: string;
  name: string;
  enabled: boolean | number;
  connector_status: string;
  last_checked_at: string | null;
  last_error: string | null;
  calls: number | string | null;
  failures: number | string | null;
}

export function createHealthRepo(knex: Knex) {
  const pg = knex.client.config.client === "pg";
  const outcome = pg ? `(tool_call::jsonb ->> 'outcome')` : `json_extract(tool_call, '$.outcome')`;
  return {
    /** Every server of the workspace, oldest first, with its calls since `since` (audit_events_workspace_type_at_idx). */
    async workspace(workspaceId: string, since: string): Promise<ServerHealth[]> {
      const calls = knex("audit_events")
        .select("server_id", knex.raw("count(*) as calls"), knex.raw(`sum(case when ${outcome} in ('error', 'timeout', 'upstream_error') then 1 else 0 end) as failures`))
        .where({ workspace_id: workspaceId, type: "tool_called" })
        .andWhere("at", ">=", since)
        .whereNotNull("tool_call")
        .andWhereRaw(`${outcome} <> 'denied'`)
        .groupBy("server_id")
        .as("c");
      const rows: HealthRow[] = await knex("mcp_servers as s")
        .leftJoin(calls, "c.server_id", "s.id")
        .where("s.workspace_id", workspaceId)
        .select("s.id", "s.name", "s.enabled", "s.connector_status", "s.last_checked_at", "s.last_error", "c.calls", "c.failures")
        .orderBy("s.id", "asc");
      return rows.map((r) => ({
        serverId: r.id,
        name: r.name,
        enabled: Boolean(r.enabled),
        status: r.connector_status as ServerHealth["status"],
        lastCheckedAt: r.last_checked_at,
        lastErrorClass: r.last_error === null ? null : ((JSON.parse(r.last_error) as { class: ServerHealth["lastErrorClass"] }).class ?? null),
        calls15m: Number(r.calls ?? 0),
        failures15m: Number(r.failures ?? 0),
      }));
    },

    /** Every enabled server, oldest first: what the background checks visit. */
    async enabledServers(): Promise<{ id: string; workspaceId: string }[]> {
      const rows: { id: string; workspace_id: string }[] = await knex("mcp_servers").select("id", "workspace_id").where({ enabled: true }).orderBy("id", "asc");
      return rows.map((r) => ({ id: r.id, workspaceId: r.workspace_id }));
    },

    /**
     * Takes or renews the lease `name` for `holder` until `expiresAt`; true when `holder` has it.
     * One statement decides, so two processes asking at once cannot both win.
     */
    async acquire(name: string, holder: string, now: string, expiresAt: string): Promise<boolean> {
      const taken = await knex("leases")
        .where({ name })
        .andWhere((q) => q.where({ holder }).orWhere("expires_at", "<", now))
        .update({ holder, expires_at: expiresAt });
      if (taken > 0) return true;
      try {
        await knex("leases").insert({ name, holder, expires_at: expiresAt });
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false; // another process holds it
        throw err;
      }
    },

    /** Gives the lease up (at shutdown), so another process takes over at once. */
    async release(name: string, holder: string): Promise<void> {
      await knex("leases").where({ name, holder }).delete();
    },
  };
}

export type HealthRepo = ReturnType<typeof createHealthRepo>;
