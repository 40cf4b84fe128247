// HTTP adapter for a workspace's upstream health.
import type { HealthService } from "../domain/health.js";
import type { Handler } from "./handler-types.js";

export function healthHandlers(health: HealthService) {
  const listWorkspaceHealth: Handler<"listWorkspaceHealth"> = async (req) => ({
    status: 200,
    body: await health.workspace(req.actor(), req.params.workspaceId),
  });
  return { listWorkspaceHealth };
}
