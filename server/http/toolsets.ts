// HTTP adapters for toolsets: request in, use case, reply out; ETags as MCP server records have them.
import type { ToolsetService, VersionedToolset } from "../domain/toolsets.js";
import type { Handler } from "./handler-types.js";
import { etagOf, parseIfMatch } from "./mcp-servers.js";

export function toolsetHandlers(toolsets: ToolsetService) {
  const single = (v: VersionedToolset) => ({ body: v.toolset, headers: { ETag: etagOf(v.version) } });

  const createToolset: Handler<"createToolset"> = async (req) => {
    const created = await toolsets.create(req.actor(), req.params.workspaceId, req.body);
    return { status: 201, body: created.toolset, headers: { Location: `/api/toolsets/${created.toolset.id}`, ETag: etagOf(created.version) } };
  };
  const listToolsets: Handler<"listToolsets"> = async (req) => ({ status: 200, body: await toolsets.list(req.actor(), req.params.workspaceId, req.query) });
  const getToolset: Handler<"getToolset"> = async (req) => ({ status: 200, ...single(await toolsets.get(req.actor(), req.params.toolsetId)) });
  const updateToolset: Handler<"updateToolset"> = async (req) => ({
    status: 200,
    ...single(await toolsets.update(req.actor(), req.params.toolsetId, req.body, parseIfMatch(req.headers["if-match"]))),
  });
  const deleteToolset: Handler<"deleteToolset"> = async (req) => {
    await toolsets.remove(req.actor(), req.params.toolsetId, parseIfMatch(req.headers["if-match"]));
    return { status: 204, body: undefined };
  };
  const listToolsetEvents: Handler<"listToolsetEvents"> = async (req) => ({ status: 200, body: await toolsets.listEvents(req.actor(), req.params.toolsetId, req.query) });
  return { createToolset, listToolsets, getToolset, updateToolset, deleteToolset, listToolsetEvents };
}
