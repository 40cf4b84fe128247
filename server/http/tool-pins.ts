// HTTP adapters for pinned tool definitions: the ETag names both definitions of a pin, and an
// approval needs it back as If-Match.
import type { ToolPinService } from "../domain/gateway/pins/service.js";
import type { Handler } from "./handler-types.js";

export function toolPinHandlers(pins: ToolPinService) {
  const listToolPins: Handler<"listToolPins"> = async (req) => ({
    status: 200,
    body: await pins.list(req.actor(), req.params.id, req.query),
  });
  const getToolPin: Handler<"getToolPin"> = async (req) => {
    const { pin, etag } = await pins.get(req.actor(), req.params.id, req.params.tool);
    return { status: 200, body: pin, headers: { ETag: etag } };
  };
  const createToolPinApproval: Handler<"createToolPinApproval"> = async (req) => {
    const { pin, etag } = await pins.approve(req.actor(), req.params.id, req.params.tool, req.headers["if-match"]);
    return { status: 200, body: pin, headers: { ETag: etag } };
  };
  const deleteToolPin: Handler<"deleteToolPin"> = async (req) => {
    await pins.remove(req.actor(), req.params.id, req.params.tool);
    return { status: 204, body: undefined };
  };
  return { listToolPins, getToolPin, createToolPinApproval, deleteToolPin };
}
