// The gateway's policy as a chain of interceptors around the one relay path (as docker/mcp-gateway's
// pkg/interceptors do): each cross-cutting concern is one small interceptor that sees every message
// the agent sends up and every message the upstream sends down, whatever the stream. A new concern
// (pins, toolsets) is one more entry in RELAY_INTERCEPTORS, not a branch inside the relay.
import {
  boundedToolName,
  errorMessage,
  filterToolList,
  GATEWAY_DENIED,
  JSONRPC_INVALID_PARAMS,
  JSONRPC_METHOD_NOT_FOUND,
  kindOf,
  RELAYED_METHODS,
  toolAllowed,
  type JsonRpcId,
  type JsonRpcMessage,
  type Policy,
  validToolName,
} from "./policy.js";
import { heldText } from "./pins/definitions.js";

/** What becomes of a message from the agent: it goes upstream (perhaps rewritten), the gateway answers it, or it is dropped. */
export type UpVerdict = { action: "forward"; message: JsonRpcMessage } | { action: "answer"; message: JsonRpcMessage } | { action: "drop"; reason: string };

export interface Interceptor {
  readonly name: string;
  /** A message from the agent on its way up; undefined lets it pass to the next interceptor unchanged. */
  toUpstream?(message: JsonRpcMessage, server: Policy): UpVerdict | undefined;
  /** A message from the upstream (any stream) on its way to the agent: passed on (perhaps rewritten), or dropped with null. */
  toAgent?(message: JsonRpcMessage, server: Policy): JsonRpcMessage | null;
}

const answer = (m: JsonRpcMessage, code: number, text: string): UpVerdict => ({ action: "answer", message: errorMessage(m.id as JsonRpcId, code, text) });

/** `enabled: false`: nothing goes up, nothing comes down. */
export const killSwitch: Interceptor = {
  name: "kill-switch",
  toUpstream(m, server) {
    if (server.enabled) return undefined;
    if (kindOf(m) === "request") return answer(m, GATEWAY_DENIED, disabledText(server));
    return { action: "drop", reason: disabledText(server) };
  },
  toAgent: (m, server) => (server.enabled ? m : null),
};

/** Only MCP's own request methods are relayed. */
export const relayedMethods: Interceptor = {
  name: "relayed-methods",
  toUpstream(m) {
    if (kindOf(m) !== "request" || RELAYED_METHODS.has(m.method as string)) return undefined;
    return answer(m, JSONRPC_METHOD_NOT_FOUND, `Method '${(m.method as string).slice(0, 100)}' is not an MCP method the gateway relays.`);
  },
};

/** `allowedTools`: other tools are neither called (request or notification) nor listed, whatever stream a list arrives on. */
export const toolPolicy: Interceptor = {
  name: "allowed-tools",
  toUpstream(m, server) {
    if (m.method !== "tools/call") return undefined;
    const name = (m.params as Record<string, unknown> | undefined)?.name;
    const request = kindOf(m) === "request";
    if (typeof name !== "string" || name === "") {
      return request ? answer(m, JSONRPC_INVALID_PARAMS, "tools/call needs params.name, the tool to call.") : { action: "drop", reason: "tools/call without a tool name" };
    }
    // Not an MCP tool name: refused before policy, and shown (and recorded) cut as every tool name is.
    if (!validToolName(name)) {
      const invalid = `Tool '${boundedToolName(name)}' is not a valid MCP tool name (1 to 128 of A-Z, a-z, 0-9, _, - and .).`;
      return request ? answer(m, JSONRPC_INVALID_PARAMS, invalid) : { action: "drop", reason: invalid };
    }
    if (toolAllowed(server, name)) return undefined;
    const text = `Tool '${boundedToolName(name)}' is not allowed on MCP server '${server.name}'.`;
    return request ? answer(m, GATEWAY_DENIED, text) : { action: "drop", reason: text };
  },
  // By shape, not by the request it answers: a list on the GET stream or under a reused id is filtered too.
  toAgent(m, server) {
    if (kindOf(m) !== "response" || !("result" in m)) return m;
    const result = m.result as Record<string, unknown> | null;
    if (typeof result !== "object" || result === null || !Array.isArray(result.tools)) return m;
    return { ...m, result: filterToolList(server, result) };
  },
};

/**
 * Pinned tool definitions (issue 22): a tool whose definition changed since it was pinned is held,
 * neither listed nor called (request or notification) until a person approves it. Every gateway
 * endpoint reaches it through GatewayContext.exchange: the per-server relay, the workspace
 * endpoint's members, and any endpoint built on the workspace gateway's member calls (toolsets).
 * Before allowed-tools, so that a list is pinned whole, whatever the record lets agents see.
 */
export const toolPins: Interceptor = {
  name: "tool-pins",
  toUpstream(m, server) {
    if (!server.pins || m.method !== "tools/call") return undefined;
    const name = (m.params as Record<string, unknown> | undefined)?.name;
    const parts = typeof name === "string" ? server.pins.held(name) : null;
    if (parts === null || typeof name !== "string") return undefined;
    const text = heldText(boundedToolName(name), parts, server.id ?? "{id}");
    return kindOf(m) === "request" ? answer(m, GATEWAY_DENIED, text) : { action: "drop", reason: text };
  },
  toAgent(m, server) {
    if (!server.pins || kindOf(m) !== "response" || !("result" in m)) return m;
    const result = m.result as Record<string, unknown> | null;
    if (typeof result !== "object" || result === null || !Array.isArray(result.tools)) return m;
    return { ...m, result: { ...result, tools: server.pins.observe(result.tools) } };
  },
};

export const RELAY_INTERCEPTORS: readonly Interceptor[] = [killSwitch, relayedMethods, toolPins, toolPolicy];

export function disabledText(server: Pick<Policy, "name">): string {
  return `MCP server '${server.name}' is disabled in this workspace.`;
}

/** The interceptors as one path: up in order until one answers or drops; down through all until one drops. */
export function createRelayPolicy(interceptors: readonly Interceptor[] = RELAY_INTERCEPTORS) {
  return {
    toUpstream(message: JsonRpcMessage, server: Policy): UpVerdict {
      let current = message;
      for (const i of interceptors) {
        const verdict = i.toUpstream?.(current, server);
        if (!verdict) continue;
        if (verdict.action !== "forward") return verdict;
        current = verdict.message;
      }
      return { action: "forward", message: current };
    },
    toAgent(message: JsonRpcMessage, server: Policy): JsonRpcMessage | null {
      let current: JsonRpcMessage | null = message;
      for (const i of interceptors) {
        if (!i.toAgent) continue;
        current = i.toAgent(current, server);
        if (current === null) return null;
      }
      return current;
    },
  };
}

export type RelayPolicy = ReturnType<typeof createRelayPolicy>;
export const relayPolicy: RelayPolicy = createRelayPolicy();
