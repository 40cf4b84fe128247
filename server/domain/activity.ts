// A workspace's activity: every server's events, and tool-call statistics over a time window.
import type { AuditRepo } from "../data/audit-repo.js";
import type { McpServerEventList, ToolCallHourList, ToolStatList } from "../wire.js";
import type { CursorCodec } from "./cursor.js";
import { Forbidden, ValidationFailed } from "./errors.js";
import type { Actor } from "./tokens.js";

const DAY_MS = 24 * 60 * 60 * 1000;

export interface ActivityServiceDeps {
  audit: AuditRepo;
  cursors: CursorCodec;
  now?: () => Date;
}

function requireWorkspace(actor: Actor, workspaceId: string) {
  if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
}

// Stored `at` values are toISOString() text, so the bound must be in the same form to compare as text.
// A string can pass the date-time pattern and still name no instant (month 13): a 400, not a 500.
function normalised(instant: string): string {
  const at = new Date(instant);
  if (Number.isNaN(at.getTime())) throw new ValidationFailed([{ path: "/query/since", message: "must be an RFC 3339 date-time that exists (e.g. 2026-12-01T00:00:00Z)" }]);
  return at.toISOString();
}

export function createActivityService({ audit, cursors, now = () => new Date() }: ActivityServiceDeps) {
  return {
    async listEvents(actor: Actor, workspaceId: string, query: { type?: string; serverId?: string; since?: string; limit?: number; cursor?: string }): Promise<McpServerEventList> {
      requireWorkspace(actor, workspaceId);
      const limit = query.limit ?? 20;
      const filter = { type: query.type, serverId: query.serverId, since: query.since ? normalised(query.since) : undefined };
      // A cursor continues only the list (workspace and filters) that issued it.
      const scope = `workspace-events:${JSON.stringify([workspaceId, filter.type ?? null, filter.serverId ?? null, filter.since ?? null])}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await audit.listWorkspace(workspaceId, filter, limit + 1, after);
      const page = rows.slice(0, limit);
      return { data: page, nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].id) : null };
    },

    async toolStats(actor: Actor, workspaceId: string, query: { since?: string }): Promise<ToolStatList> {
      requireWorkspace(actor, workspaceId);
      const since = query.since ? normalised(query.since) : new Date(now().getTime() - DAY_MS).toISOString();
      return { data: await audit.toolStats(workspaceId, since) };
    },

    async toolCallHours(actor: Actor, workspaceId: string, query: { since?: string }): Promise<ToolCallHourList> {
      requireWorkspace(actor, workspaceId);
      const since = query.since ? normalised(query.since) : new Date(now().getTime() - DAY_MS).toISOString();
      return { data: await audit.toolCallHours(workspaceId, since) };
    },
  };
}

export type ActivityService = ReturnType<typeof createActivityService>;
