// HTTP adapters for live connection checks.
import type { ConnectionService } from "../domain/connections.js";
import type { Handler } from "./handler-types.js";

export function connectionHandlers(connections: ConnectionService) {
  const testMcpServer: Handler<"testMcpServer"> = async (req) => ({
    status: 200,
    body: await connections.test(req.actor(), req.params.id, req.signal),
  });
  const listMcpServerTools: Handler<"listMcpServerTools"> = async (req) => ({
    status: 200,
    body: { data: await connections.listTools(req.actor(), req.params.id, req.signal) },
  });
  return { testMcpServer, listMcpServerTools };
}
