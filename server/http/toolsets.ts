// HTTP adapters for toolsets: request in, use case, reply out.
import type { Handler } from "./handler-types.js";

const pending = async (): Promise<never> => {
  throw new Error("toolsets are not served yet");
};

export function toolsetHandlers() {
  const createToolset: Handler<"createToolset"> = pending;
  const listToolsets: Handler<"listToolsets"> = pending;
  const getToolset: Handler<"getToolset"> = pending;
  const updateToolset: Handler<"updateToolset"> = pending;
  const deleteToolset: Handler<"deleteToolset"> = pending;
  const listToolsetEvents: Handler<"listToolsetEvents"> = pending;
  return { createToolset, listToolsets, getToolset, updateToolset, deleteToolset, listToolsetEvents };
}
