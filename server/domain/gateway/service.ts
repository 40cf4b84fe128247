// The MCP gateway's use cases: find the record an agent addresses, work out what reaches the
// upstream server (its own credentials, never the agent's), apply the record's policy to the
// messages going up and coming back, and record tool calls and upstream failures.
import type { AuditRepo } from "../../data/audit-repo.js";
import type { McpServerRepo, StoredServer } from "../../data/mcp-server-repo.js";
import type { ConnectionError } from "../../wire.js";
import { DomainError, NotFound } from "../errors.js";
import {
  errorMessage,
  filterToolList,
  kindOf,
  refusal,
  toolOutcome,
  type JsonRpcId,
  type JsonRpcMessage,
  type ToolOutcome,
} from "./policy.js";
import type { TokenOutcome } from "../oauth/index.js";
import type { SessionCodec } from "./session-codec.js";
import type { Actor } from "../tokens.js";
import { upstreamHeaders } from "../upstream.js";

export class BadMcpRequest extends DomainError {
  constructor(detail: string) {
    super(400, "validation-error", "Your request is not valid.", detail);
  }
}

/** Where and how to reach the upstream server. */
export interface UpstreamTarget {
  url: string;
  /** The record's custom headers plus its credential as Authorization. */
  headers: Record<string, string>;
  /** Values that must never appear in a message to the agent. */
  secrets: string[];
}

export interface GatewayDeps {
  repo: McpServerRepo;
  audit: AuditRepo;
  oauthToken: (stored: StoredServer) => Promise<TokenOutcome>;
  sessions: SessionCodec;
  now?: () => Date;
}

/** One exchange's bookkeeping: what is still unanswered, and the tool calls among it. */
export interface Exchange {
  /** The gateway's own answers (refusals); nothing of them goes upstream. */
  local: JsonRpcMessage[];
  /** What goes upstream. */
  forward: JsonRpcMessage[];
  /** Whether `forward` holds requests (an answer is awaited) rather than only notifications or responses. */
  awaitsAnswer: boolean;
  /** An upstream message on its way to the agent: rewritten by policy, and noted when it answers a request. */
  onUpstreamMessage(message: JsonRpcMessage): JsonRpcMessage;
  /** Answers every request still waiting with the gateway's error. */
  fail(code: number, message: string, outcome: ToolOutcome): JsonRpcMessage[];
  pending(): number;
  /** Resolves when the audit records of this exchange are written. */
  settled(): Promise<void>;
}

export function createGatewayService({ repo, audit, oauthToken, sessions, now = () => new Date() }: GatewayDeps) {
  async function targetFor(stored: StoredServer, accessToken: string | null): Promise<UpstreamTarget> {
    const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
    const { headers, secrets: values } = upstreamHeaders(stored, secrets, accessToken);
    return { url: stored.server.url, headers, secrets: values };
  }

  async function recordStatus(actor: Actor, stored: StoredServer, error: ConnectionError | null) {
    const connectorStatus = error ? "error" : "connected";
    if (!error && stored.server.connectorStatus === "connected") return;
    const changed = connectorStatus !== stored.server.connectorStatus;
    await repo.recordCheck(
      stored,
      { connectorStatus, checkedAt: now().toISOString(), error },
      changed
        ? { type: "status_changed", actor: actor.userId, tokenId: actor.tokenId, requestId: actor.requestId ?? null, fields: [{ name: "connectorStatus", change: "changed" }] }
        : undefined,
    );
  }

  return {
    /**
     * Resolves the record an agent addresses and what to send upstream. `unavailable` says why
     * nothing can be sent (an OAuth server without a usable token).
     */
    async open(actor: Actor, id: string, sessionHeader: string | undefined) {
      let stored = await repo.find(actor.workspaces, id);
      if (!stored) throw new NotFound(`MCP server ${id}`);
      const binding = { serverId: id, tokenId: actor.tokenId };
      let upstreamSessionId: string | null = null;
      if (sessionHeader !== undefined) {
        upstreamSessionId = sessions.open(sessionHeader, binding);
        if (upstreamSessionId === null) throw new BadMcpRequest("The Mcp-Session-Id was not issued by this gateway for this MCP server and token; start a new session.");
      }
      let accessToken: string | null = null;
      let unavailable: ConnectionError | null = null;
      if (stored.server.authType === "oauth" && stored.server.enabled) {
        const token = await oauthToken(stored);
        stored = token.stored;
        if (token.ok) accessToken = token.accessToken;
        else unavailable = token.error;
      }
      const target = await targetFor(stored, accessToken);
      const server = stored.server;
      const current = stored;
      /** One tools/call in the audit trail: never its arguments or result. */
      const recordToolCall = (tool: string, outcome: ToolOutcome, started: number) =>
        audit.append(
          server,
          {
            type: "tool_called",
            actor: actor.userId,
            tokenId: actor.tokenId,
            requestId: actor.requestId ?? null,
            fields: [],
            toolCall: { tool, outcome, durationMs: Math.max(0, Math.round(performance.now() - started)), tokenId: actor.tokenId },
          },
          now().toISOString(),
        );

      return {
        server,
        target,
        unavailable,
        upstreamSessionId,
        sealSession: (upstreamId: string) => sessions.seal(upstreamId, binding),
        recordFailure: (error: ConnectionError) => recordStatus(actor, current, error),
        recordSuccess: () => recordStatus(actor, current, null),
        recordToolCall,

        exchange(messages: JsonRpcMessage[]): Exchange {
          const local: JsonRpcMessage[] = [];
          const forward: JsonRpcMessage[] = [];
          const waiting = new Map<JsonRpcId, { method: string; tool: string | null; started: number }>();
          const writes: Promise<void>[] = [];

          const auditCall = (tool: string, outcome: ToolOutcome, started: number) => void writes.push(recordToolCall(tool, outcome, started));
          const toolOf = (m: JsonRpcMessage) => {
            const name = (m.params as Record<string, unknown> | undefined)?.name;
            return m.method === "tools/call" && typeof name === "string" ? name : null;
          };

          for (const m of messages) {
            if (kindOf(m) !== "request") {
              forward.push(m);
              continue;
            }
            const started = performance.now();
            const refused = refusal(server, m);
            if (refused) {
              local.push(refused);
              const tool = toolOf(m);
              if (tool) auditCall(tool, "denied", started);
              continue;
            }
            forward.push(m);
            waiting.set(m.id as JsonRpcId, { method: m.method as string, tool: toolOf(m), started });
          }

          return {
            local,
            forward,
            awaitsAnswer: waiting.size > 0,
            onUpstreamMessage(message) {
              if (kindOf(message) !== "response") return message;
              const id = message.id as JsonRpcId;
              const call = waiting.get(id);
              if (!call) return message;
              waiting.delete(id);
              if (call.tool) auditCall(call.tool, toolOutcome(message), call.started);
              if (call.method === "tools/list" && "result" in message) return { ...message, result: filterToolList(server, message.result) };
              return message;
            },
            fail(code, text, outcome) {
              const answers = [...waiting.entries()].map(([id, call]) => {
                if (call.tool) auditCall(call.tool, outcome, call.started);
                return errorMessage(id, code, text);
              });
              waiting.clear();
              return answers;
            },
            pending: () => waiting.size,
            settled: async () => {
              await Promise.all(writes);
            },
          };
        },
      };
    },
  };
}

export type GatewayService = ReturnType<typeof createGatewayService>;
export type GatewayContext = Awaited<ReturnType<GatewayService["open"]>>;
