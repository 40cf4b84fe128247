// HTTP adapters for MCP server records: request in, use case, reply out.
import type { McpServerService } from "../domain/mcp-servers.js";
import type { Handler } from "./handler-types.js";

export function mcpServerHandlers(servers: McpServerService) {
  const createMcpServer: Handler<"createMcpServer"> = async (req) => {
    const body = await servers.create(req.actor(), req.body);
    return { status: 201, body, headers: { Location: `/api/mcp-servers/${body.id}` } };
  };
  const listMcpServers: Handler<"listMcpServers"> = async (req) => ({
    status: 200,
    body: await servers.list(req.actor(), req.query),
  });
  const getMcpServer: Handler<"getMcpServer"> = async (req) => ({
    status: 200,
    body: await servers.get(req.actor(), req.params.id),
  });
  const updateMcpServer: Handler<"updateMcpServer"> = async (req) => ({
    status: 200,
    body: await servers.update(req.actor(), req.params.id, req.body),
  });
  const deleteMcpServer: Handler<"deleteMcpServer"> = async (req) => {
    await servers.remove(req.actor(), req.params.id);
    return { status: 204, body: undefined };
  };
  return { createMcpServer, listMcpServers, getMcpServer, updateMcpServer, deleteMcpServer };
}
