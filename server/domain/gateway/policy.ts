// The gateway's rules about JSON-RPC messages, as pure functions: what a valid message is,
// which methods are relayed, what a record's policy lets through, how the protocol headers
// follow the body, and how a tool call ended. interceptors.ts applies them to every message.
import type { McpServer } from "../../wire.js";
import type { PinGuard } from "./pins/guard.js";

export type JsonRpcId = string | number;
export type JsonRpcMessage = Record<string, unknown> & { jsonrpc: "2.0" };

export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_METHOD_NOT_FOUND = -32601;
export const JSONRPC_INVALID_PARAMS = -32602;
/** 2026-07-28's HeaderMismatch: Mcp-Method or Mcp-Name disagrees with the body. */
export const MCP_HEADER_MISMATCH = -32020;
/** The record's policy refused the request; nothing was sent upstream. */
export const GATEWAY_DENIED = -32003;
/** The MCP server could not be used (unreachable, refused, not MCP, answer too large, stream cut). */
export const GATEWAY_UPSTREAM_FAILED = -32004;
/** The MCP server did not answer within MCP_API_TOOL_TIMEOUT_MS. */
export const GATEWAY_UPSTREAM_TIMEOUT = -32005;

export const MAX_BATCH = 100;

/** MCP's limit on a tool name; the agent's message and the audit trail cut a longer name the same way. */
export const MAX_TOOL_NAME = 128;
const VALID_TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** A tool name as it may be shown or recorded: at most MAX_TOOL_NAME characters. */
export const boundedToolName = (name: string): string => (name.length <= MAX_TOOL_NAME ? name : name.slice(0, MAX_TOOL_NAME));

/** Whether `name` is a valid MCP tool name (1–128 of A–Z, a–z, 0–9, "_", "-", "."). */
export const validToolName = (name: string): boolean => VALID_TOOL_NAME.test(name);

// Every client-to-server request method of MCP 2024-11-05 … 2026-07-28.
export const RELAYED_METHODS: ReadonlySet<string> = new Set([
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

/** Whether an upstream value can be a JSON-RPC message at all (an object); anything else is not relayed. */
export function isMessage(v: unknown): v is JsonRpcMessage {
  return isObject(v);
}

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
export function parseMessages(
  body: unknown,
): { ok: true; messages: JsonRpcMessage[]; batch: boolean } | { ok: false; problems: string[]; /** JSON-RPC itself says -32600 Invalid Request */ invalidRequest?: true } {
  const batch = Array.isArray(body);
  const list: unknown[] = batch ? body : [body];
  if (list.length === 0) return { ok: false, problems: ["the batch is empty"] };
  if (list.length > MAX_BATCH) return { ok: false, problems: [`a batch holds at most ${MAX_BATCH} messages (got ${list.length})`] };
  const problems = list.flatMap((m, i) => {
    const p = messageProblem(m);
    return p ? [`${batch ? `message ${i} ` : "the message "}${p}`] : [];
  });
  if (problems.length) return { ok: false, problems };
  // Two requests with one id could not be told apart on the way back (and one could take the other's answer past policy).
  const ids = new Set<JsonRpcId>();
  for (const m of list as JsonRpcMessage[]) {
    if (typeof m.method !== "string" || !("id" in m)) continue;
    const id = m.id as JsonRpcId;
    if (ids.has(id)) return { ok: false, problems: [`two requests of the batch have the id ${JSON.stringify(id).slice(0, 100)}`], invalidRequest: true };
    ids.add(id);
  }
  return { ok: true, messages: list as JsonRpcMessage[], batch };
}

export function errorMessage(id: JsonRpcId | null, code: number, message: string): JsonRpcMessage {
  return { jsonrpc: "2.0", id, error: { code, message } };
}

export type Policy = Pick<McpServer, "name" | "enabled" | "allowedTools"> & {
  /** The record's pinned tool definitions, loaded before the relay starts; absent or null: nothing is pinned. */
  pins?: PinGuard | null;
  id?: string;
};

export function toolAllowed(policy: Policy, tool: string): boolean {
  return policy.allowedTools === null || policy.allowedTools.includes(tool);
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

// The body field each method's Mcp-Name header mirrors (2026-07-28, SEP-2243 and SEP-2663).
const NAME_SOURCE: Record<string, string> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri",
  "tasks/get": "taskId",
  "tasks/update": "taskId",
  "tasks/cancel": "taskId",
};

/** The value a message's Mcp-Name header must carry, or undefined when its method has none. */
export function mcpNameOf(m: JsonRpcMessage): string | undefined {
  const field = typeof m.method === "string" && Object.hasOwn(NAME_SOURCE, m.method) ? NAME_SOURCE[m.method] : undefined;
  const value = field === undefined ? undefined : (m.params as Record<string, unknown> | undefined)?.[field];
  return typeof value === "string" ? value : undefined;
}

const SENTINEL = /^=\?base64\?((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)\?=$/;

/** A header value as 2026-07-28 writes it: plain when it is visible ASCII without edge spaces, else =?base64?…?=. */
export function encodeHeaderValue(value: string): string {
  const plain = value !== "" && value === value.trim() && /^[\t\x20-\x7e]*$/.test(value) && !(value.startsWith("=?base64?") && value.endsWith("?="));
  return plain ? value : `=?base64?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

function decodeHeaderValue(raw: string): string | undefined {
  const value = raw.replace(/^[\t ]+|[\t ]+$/g, "");
  const b64 = SENTINEL.exec(value);
  if (!value.startsWith("=?base64?") || !value.endsWith("?=")) return value;
  return b64 ? Buffer.from(b64[1], "base64").toString("utf8") : undefined;
}

/**
 * The Mcp-Method and Mcp-Name headers to send upstream, derived from the body being forwarded,
 * or the -32020 error when the agent's headers disagree with its body. A header goes upstream
 * only when the agent sent it, so a server still sees (and refuses) one left out.
 */
export function protocolHeaders(
  sent: { method?: string; name?: string },
  messages: JsonRpcMessage[],
  batch: boolean,
): { ok: true; headers: Record<string, string> } | { ok: false; error: JsonRpcMessage } {
  const mismatch = (m: JsonRpcMessage, what: string) => ({
    ok: false as const,
    error: errorMessage(kindOf(m) === "request" ? (m.id as JsonRpcId) : null, MCP_HEADER_MISMATCH, `Bad Request: the request headers and body disagree: ${what}`),
  });
  for (const m of messages) {
    const method = typeof m.method === "string" ? m.method : undefined;
    if (sent.method !== undefined && sent.method.trim() !== method) {
      return mismatch(m, `the Mcp-Method header names ${sent.method.slice(0, 100)} but the body ${method ? `names ${method.slice(0, 100)}` : "is a response"}`);
    }
    const name = mcpNameOf(m);
    if (sent.name !== undefined && name !== undefined) {
      const decoded = decodeHeaderValue(sent.name);
      if (decoded === undefined) return mismatch(m, "the Mcp-Name header carries an invalid Base64 value");
      if (decoded !== name) return mismatch(m, `the Mcp-Name header names "${decoded.slice(0, 128)}" but the body names "${name.slice(0, 128)}"`);
    }
  }
  const headers: Record<string, string> = {};
  if (batch || messages.length !== 1) return { ok: true, headers };
  const [m] = messages;
  if (sent.method !== undefined && typeof m.method === "string") headers["mcp-method"] = m.method;
  const name = mcpNameOf(m);
  if (sent.name !== undefined && name !== undefined) headers["mcp-name"] = encodeHeaderValue(name);
  return { ok: true, headers };
}
