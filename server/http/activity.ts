// HTTP adapters for a workspace's activity (events across servers, tool-call statistics and calls per hour).
import type { ActivityService } from "../domain/activity.js";
import type { Handler } from "./handler-types.js";

export function activityHandlers(activity: ActivityService) {
  const listWorkspaceEvents: Handler<"listWorkspaceEvents"> = async (req) => ({
    status: 200,
    body: await activity.listEvents(req.actor(), req.params.workspaceId, req.query),
  });
  const listWorkspaceToolStats: Handler<"listWorkspaceToolStats"> = async (req) => ({
    status: 200,
    body: await activity.toolStats(req.actor(), req.params.workspaceId, req.query),
  });
  const listWorkspaceToolCallHours: Handler<"listWorkspaceToolCallHours"> = async (req) => ({
    status: 200,
    body: await activity.toolCallHours(req.actor(), req.params.workspaceId, req.query),
  });
  return { listWorkspaceEvents, listWorkspaceToolStats, listWorkspaceToolCallHours };
}
