// The gateway's rules about JSON-RPC messages, as pure functions: what a valid message is,
// which methods are relayed, what a record's policy lets through, and how a tool call ended.
import type { McpServer } from "../../wire.js";

export type JsonRpcId = string | number;
export type JsonRpcMessage = Record<string, unknown> & { jsonrpc: "2.0" };

export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_METHOD_NOT_FOUND = -32601;
export const JSONRPC_INVALID_PARAMS = -32602;
/** The record's policy refused the request; nothing was sent upstream. */
export const GATEWAY_DENIED = -32003;
/** The MCP server could not be used (unreachable, refused, not MCP, answer too large, stream cut). */
export const GATEWAY_UPSTREAM_FAILED = -32004;
/** The MCP server did not answer within MCP_API_TOOL_TIMEOUT_MS. */
export const GATEWAY_UPSTREAM_TIMEOUT = -32005;

export const MAX_BATCH = 100;

// Every client-to-server request method of MCP 2024-11-05 … 2026-07-28.
const RELAYED_METHODS = new Set([
  "initialize",
  "ping",
  "server/discover",
  "subscriptions/listen",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "tasks/get",
  "tasks/result",
  "tasks/list",
  "tasks/cancel",
]);

export type MessageKind = "request" | "notification" | "response";

export function kindOf(m: JsonRpcMessage): MessageKind {
  if (typeof m.method === "string") return "id" in m ? "request" : "notification";
  return "response";
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is JsonRpcId => typeof v === "string" || (typeof v === "number" && Number.isFinite(v));

/** Why a message is not JSON-RPC 2.0, or null when it is. */
function messageProblem(m: unknown): string | null {
  if (!isObject(m)) return "is not a JSON object";
  if (m.jsonrpc !== "2.0") return 'needs "jsonrpc": "2.0"';
  if ("method" in m) {
    if (typeof m.method !== "string" || m.method === "") return '"method" must be a non-empty string';
    if ("id" in m && !isId(m.id)) return '"id" must be a string or a number';
    if ("params" in m && !isObject(m.params)) return '"params" must be an object';
    return null;
  }
  if (!("id" in m) || !(isId(m.id) || m.id === null)) return 'needs a "method" (request or notification) or an "id" (response)';
  if (("result" in m) === ("error" in m)) return 'a response needs exactly one of "result" and "error"';
  return null;
}

/** The messages of a POST body, or the problems that make it not JSON-RPC. */
export function parseMessages(body: unknown): { ok: true; messages: JsonRpcMessage[]; batch: boolean } | { ok: false; problems: string[] } {
  const batch = Array.isArray(body);
  const list: unknown[] = batch ? body : [body];
  if (list.length === 0) return { ok: false, problems: ["the batch is empty"] };
  if (list.length > MAX_BATCH) return { ok: false, problems: [`a batch holds at most ${MAX_BATCH} messages (got ${list.length})`] };
  const problems = list.flatMap((m, i) => {
    const p = messageProblem(m);
    return p ? [`${batch ? `message ${i} ` : "the message "}${p}`] : [];
  });
  return problems.length ? { ok: false, problems } : { ok: true, messages: list as JsonRpcMessage[], batch };
}

export function errorMessage(id: JsonRpcId | null, code: number, message: string): JsonRpcMessage {
  return { jsonrpc: "2.0", id, error: { code, message } };
}

export type Policy = Pick<McpServer, "name" | "enabled" | "allowedTools">;

export function toolAllowed(policy: Policy, tool: string): boolean {
  return policy.allowedTools === null || policy.allowedTools.includes(tool);
}

/** The gateway's own answer to a request it refuses to forward, or null to forward it. */
export function refusal(policy: Policy, request: JsonRpcMessage): JsonRpcMessage | null {
  const id = request.id as JsonRpcId;
  const method = request.method as string;
  if (!RELAYED_METHODS.has(method)) {
    return errorMessage(id, JSONRPC_METHOD_NOT_FOUND, `Method '${method.slice(0, 100)}' is not an MCP method the gateway relays.`);
  }
  if (!policy.enabled) return errorMessage(id, GATEWAY_DENIED, `MCP server '${policy.name}' is disabled in this workspace.`);
  if (method === "tools/call") {
    const name = (request.params as Record<string, unknown> | undefined)?.name;
    if (typeof name !== "string" || name === "") return errorMessage(id, JSONRPC_INVALID_PARAMS, "tools/call needs params.name, the tool to call.");
    if (!toolAllowed(policy, name)) {
      return errorMessage(id, GATEWAY_DENIED, `Tool '${name.slice(0, 128)}' is not allowed on MCP server '${policy.name}'.`);
    }
  }
  return null;
}

/** A tools/list result without the tools the record does not allow. */
export function filterToolList(policy: Policy, result: unknown): unknown {
  if (policy.allowedTools === null || !isObject(result) || !Array.isArray(result.tools)) return result;
  return { ...result, tools: result.tools.filter((t) => isObject(t) && typeof t.name === "string" && toolAllowed(policy, t.name)) };
}

export type ToolOutcome = "ok" | "tool_error" | "error" | "denied" | "timeout" | "upstream_error" | "cancelled";

export function toolOutcome(response: JsonRpcMessage): ToolOutcome {
  if ("error" in response) return "error";
  return isObject(response.result) && response.result.isError === true ? "tool_error" : "ok";
}
