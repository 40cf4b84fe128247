// The MCP gateway's use cases: find the record an agent addresses, work out what reaches the
// upstream server (its own credentials, never the agent's, and none at all while it is disabled),
// apply the relay policy (interceptors.ts) to the messages going up and coming back, and record
// tool calls and upstream failures.
import { createHash } from "node:crypto";
import type { AuditRepo } from "../../data/audit-repo.js";
import type { McpServerRepo, Secrets, StoredServer } from "../../data/mcp-server-repo.js";
import type { ConnectionError } from "../../wire.js";
import { DomainError, Forbidden, NotFound } from "../errors.js";
import { disabledText, relayPolicy, type RelayPolicy } from "./interceptors.js";
import { boundedToolName, errorMessage, kindOf, toolOutcome, type JsonRpcId, type JsonRpcMessage, type Policy, type ToolOutcome } from "./policy.js";
import type { TokenOutcome } from "../oauth/index.js";
import type { SessionBinding, SessionCodec } from "./session-codec.js";
import type { Actor } from "../tokens.js";
import type { PinGuards } from "./pins/guard.js";
import { personalUpstreamHeaders, upstreamHeaders } from "../upstream.js";
import type { ConnectRequired, StepUpAnswer, UserCredential } from "../user-connections.js";

export class BadMcpRequest extends DomainError {
  constructor(detail: string) {
    super(400, "validation-error", "Your request is not valid.", detail);
  }
}

/** A disabled server: nothing is relayed to it, not even a notification, a stream or a session's end. */
export class ServerDisabled extends Forbidden {
  constructor(server: { name: string }) {
    super(disabledText(server));
  }
}

export const START_NEW_SESSION = "The Mcp-Session-Id was not issued by this gateway for this MCP server and token; start a new session.";

/**
 * What a sealed session is bound to: the record, the agent's token, the record's origin and a
 * digest of its credentials (the key, secret headers and connector secrets; for OAuth the client
 * and the connection's generation, since access tokens rotate on every refresh).
 */
export function sessionBinding(stored: StoredServer, secrets: Secrets, tokenId: string, personal?: Extract<UserCredential, { ok: true }>): SessionBinding {
  const { server } = stored;
  const oauth = server.authType === "oauth" ? [server.oauthClientId, secrets.oauthClientSecret, server.oauthTokenEndpoint, stored.secretsSet.oauthAccessToken || stored.secretsSet.oauthRefreshToken, stored.oauth.generation] : null;
  // On a user-scope record, the person's own connection too: their key and headers, or their OAuth connection's generation.
  const mine = personal ? [[personal.apiKey, personal.secretHeaders, personal.generation]] : [];
  const credentials = createHash("sha256")
    .update(JSON.stringify([server.authType, secrets.apiKey, secrets.secretHeaders, secrets.connectorSecrets, oauth, ...mine]))
    .digest("base64url");
  return { serverId: server.id, tokenId, origin: new URL(server.url).origin, credentials };
}

const WRITTEN: Promise<void> = Promise.resolve();

/** f's value, worked out at the first call. */
function once<T>(f: () => T): () => T {
  let value: { v: T } | null = null;
  return () => (value ??= { v: f() }).v;
}

const noUserConnections = async (): Promise<UserCredential> => {
  throw new Error("this gateway was built without per-user connections");
};

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
  /** The interceptors every relayed message passes (default: kill switch, methods, allowedTools). */
  policy?: RelayPolicy;
  /** The calling person's own credential for a user-scope record (issue 20). */
  userCredential?: (stored: StoredServer, userId: string) => Promise<UserCredential>;
  /** Pinned tool definitions (issue 22); without it nothing is pinned or held. */
  pins?: PinGuards;
  /** A 403 insufficient_scope from the upstream, on the connection used (userId null: the record's); issue 20 item 6. */
  stepUp?: (stored: StoredServer, userId: string | null, demanded: string) => Promise<StepUpAnswer>;
  /** A 401 from the upstream, or a refresh that found the move (`known`): whether the authorization server moved (issue 20 item 6). */
  migrated?: (stored: StoredServer, known?: ConnectionError) => Promise<StepUpAnswer | null>;
  now?: () => Date;
}

const noStepUp = async (_stored: StoredServer, _userId: string | null, demanded: string): Promise<StepUpAnswer> => ({
  connect: null,
  error: { class: "auth", message: `the MCP server refused for insufficient scope${demanded ? ` (it requires ${demanded})` : ""}`, httpStatus: 403 },
});

/** One exchange's bookkeeping: what is still unanswered, and the tool calls among it. */
export interface Exchange {
  /** The gateway's own answers (refusals); nothing of them goes upstream. */
  local: JsonRpcMessage[];
  /** What goes upstream. */
  forward: JsonRpcMessage[];
  /** Whether `forward` holds requests (an answer is awaited) rather than only notifications or responses. */
  awaitsAnswer: boolean;
  /** An upstream message on its way to the agent: rewritten or dropped (null) by policy, and noted when it answers a request. */
  onUpstreamMessage(message: JsonRpcMessage): JsonRpcMessage | null;
  /** Answers every request still waiting with the gateway's error. */
  fail(code: number, message: string, outcome: ToolOutcome): JsonRpcMessage[];
  pending(): number;
  /**
   * Appends the audit records of the answers so far (each caller runs it once the answer has
   * gone to the agent, in a finally) and resolves when they are written.
   */
  settled(): Promise<void>;
}

export function createGatewayService({ repo, audit, oauthToken, sessions, policy = relayPolicy, userCredential = noUserConnections, pins, stepUp = noStepUp, migrated = async () => null, now = () => new Date() }: GatewayDeps) {
  /**
   * Whether `stored` already shows this failure (its class and HTTP status) from a check recorded
   * since `opened` was read: its lastCheckedAt moved on (a write that is not a status write, an
   * OAuth one say, moves the version but not that).
   */
  const shows = (stored: StoredServer, opened: StoredServer, error: ConnectionError) =>
    (stored.server.lastCheckedAt ?? "") > (opened.server.lastCheckedAt ?? "") &&
    stored.server.connectorStatus === "error" &&
    stored.server.lastError?.class === error.class &&
    stored.server.lastError.httpStatus === error.httpStatus;

  /**
   * `from`: the record as last read, when that is newer than `opened`. With `once`, a failure is
   * not written when the record shows it from a write since `opened` (another exchange's).
   */
  async function recordStatus(actor: Actor, opened: StoredServer, error: ConnectionError | null, from: StoredServer = opened, once = false) {
    let stored: StoredServer | null = from.server.updatedAt === opened.server.updatedAt ? from : null;
    // Twice at most: the write is checked against the version the exchange read, and another
    // exchange's status write (the call before this one, still recording its success while this
    // one ran) moves the version on. Then the outcome goes onto the record as it is now, unless
    // a person edited it meanwhile (updatedAt: a status write leaves it alone), which keeps its own state.
    for (let attempt = 0; attempt < 2 && stored !== null; attempt++) {
      const connectorStatus = error ? "error" : "connected";
      if (!error && stored.server.connectorStatus === "connected") return;
      if (error && once && shows(stored, opened, error)) return;
      const changed = connectorStatus !== stored.server.connectorStatus;
      const written = await repo.recordCheck(
        stored,
        { connectorStatus, checkedAt: now().toISOString(), error },
        changed
          ? { type: "status_changed", actor: actor.userId, tokenId: actor.tokenId, requestId: actor.requestId ?? null, fields: [{ name: "connectorStatus", change: "changed" }] }
          : undefined,
      );
      if (written) return;
      const current: StoredServer | null = await repo.find([opened.server.workspaceId], opened.server.id);
      stored = current && current.server.updatedAt === opened.server.updatedAt ? current : null;
    }
  }

  // A record's failures are written one after another in this process, each onto the record as
  // it reads then, so that the requests which shared one failed upstream attempt (every list
  // waiting on a connect that timed out) write it once, not once each (a burst of transactions).
  const failureWrites = new Map<string, Promise<void>>();
  function recordFailure(actor: Actor, opened: StoredServer, error: ConnectionError): Promise<void> {
    const id = opened.server.id;
    // Read from the store, not this process's record cache: another process may have recorded a success since.
    const write = async () => {
      const now = await repo.findAnyWorkspace(id);
      return recordStatus(actor, opened, error, now !== null && now.server.workspaceId === opened.server.workspaceId ? now : opened, true);
    };
    const done = (failureWrites.get(id) ?? Promise.resolve()).then(write, write);
    const queued = done.catch(() => {});
    failureWrites.set(id, queued);
    void queued.then(() => failureWrites.get(id) === queued && failureWrites.delete(id));
    return done;
  }

  return {
    /**
     * Resolves the record an agent addresses and what to send upstream. `unavailable` says why
     * nothing can be sent (an OAuth server without a usable token).
     */
    async open(actor: Actor, id: string, sessionHeader: string | undefined) {
      let stored = await repo.find(actor.workspaces, id);
      if (!stored) throw new NotFound(`MCP server ${id}`);
      // A binding's digest is only worked out when a session is opened or sealed (most calls carry none).
      let binding: (() => SessionBinding) | null = null;
      let upstreamSessionId: string | null = null;
      let target: UpstreamTarget | null = null;
      let unavailable: ConnectionError | null = null;
      let connect: ConnectRequired | null = null;
      // The kill switch: a disabled record's credentials are never opened, so nothing can carry them upstream.
      if (stored.server.enabled) {
        const secrets = await repo.openSecrets(stored.server.workspaceId, stored.server.id);
        const mine = stored.server.connectionScope === "user" ? await userCredential(stored, actor.userId) : null;
        // A user-scope session is bound to the person's own connection as it is now (a reconnect ends it).
        const opened = stored;
        binding = once(() => sessionBinding(opened, secrets, actor.tokenId, mine?.ok ? mine : undefined));
        // Without a connection of the person's own nothing goes upstream: they are told where to connect, session or not.
        if (sessionHeader !== undefined && mine?.ok !== false) {
          upstreamSessionId = sessions.open(sessionHeader, binding());
          if (upstreamSessionId === null) throw new BadMcpRequest(START_NEW_SESSION);
        }
        if (mine) {
          // The one place the gateway learns a user-scope record's credential: the calling person's own, never anyone else's.
          if (mine.ok) {
            const { headers, secrets: values } = personalUpstreamHeaders(stored, secrets, mine);
            target = { url: stored.server.url, headers, secrets: values };
          } else {
            connect = mine.connect;
            target = { url: stored.server.url, headers: {}, secrets: [] };
          }
        } else {
          let accessToken: string | null = null;
          if (stored.server.authType === "oauth") {
            const token = await oauthToken(stored);
            const refreshed = (stored = token.stored);
            // A session sealed now is bound to the connection this token came from, not the one before it.
            binding = once(() => sessionBinding(refreshed, secrets, actor.tokenId));
            if (token.ok) accessToken = token.accessToken;
            else if (token.moved) connect = (await migrated(stored, token.error))?.connect ?? null;
            if (!token.ok && !connect) unavailable = token.error;
          }
          const { headers, secrets: values } = upstreamHeaders(stored, secrets, accessToken);
          target = { url: stored.server.url, headers, secrets: values };
        }
      }
      const server = stored.server;
      const current = stored;
      // The record's pins, from this process's copy (no query per message): what the tool-pins interceptor checks.
      const guard = pins && server.enabled ? await pins.guard(server, { requestId: actor.requestId ?? null }) : null;
      // Only what policy reads, so the hot path copies five fields, not the record.
      const subject: Policy = guard ? { id: server.id, name: server.name, enabled: server.enabled, allowedTools: server.allowedTools, pins: guard } : server;
      /** One tools/call in the audit trail: never its arguments or result, and its name bounded as the agent's message bounds it. */
      const recordToolCall = (tool: string, outcome: ToolOutcome, durationMs: number) =>
        audit.append(
          server,
          {
            type: "tool_called",
            actor: actor.userId,
            tokenId: actor.tokenId,
            requestId: actor.requestId ?? null,
            fields: [],
            toolCall: { tool: boundedToolName(tool), outcome, durationMs, tokenId: actor.tokenId },
          },
          now().toISOString(),
        );

      const enabledBinding = binding;
      return {
        server,
        /** Null exactly when the server is disabled: then nothing may be sent upstream. */
        target,
        unavailable,
        /** Set when this person must connect their own account first (user-scope record): nothing goes upstream. */
        connect,
        /** Whose connection the credential is: the calling person on a user-scope record, else null (the record's own). */
        principal: stored.server.connectionScope === "user" ? actor.userId : null,
        upstreamSessionId,
        sealSession: (upstreamId: string) => {
          if (!enabledBinding) throw new ServerDisabled(server);
          return sessions.seal(upstreamId, enabledBinding());
        },
        /** Refuses anything but a request (which policy answers) while the server is disabled. */
        requireEnabled() {
          if (!target) throw new ServerDisabled(server);
          return target;
        },
        /** Whether a stream opened earlier may carry one more message: the record still exists, is enabled and has not moved. */
        async stillRelayable(): Promise<boolean> {
          const now = await repo.find(actor.workspaces, id);
          return now !== null && now.server.enabled && new URL(now.server.url).origin === new URL(server.url).origin;
        },
        /** An upstream message outside any exchange (the session's own stream), through policy; null drops it. */
        toAgent: (message: JsonRpcMessage) => policy.toAgent(message, subject),
        recordFailure: (error: ConnectionError) => recordFailure(actor, current, error),
        // Most calls find the record connected already: nothing to write, and no async step to take.
        recordSuccess: () => (current.server.connectorStatus === "connected" ? WRITTEN : recordStatus(actor, current, null)),
        recordToolCall,
        /**
         * The upstream refused for insufficient scope (403, step-up): marks the connection that was
         * used and says whether the agent's person is to authorize again, and where.
         */
        insufficientScope: (demanded: string) => stepUp(current, current.server.connectionScope === "user" ? actor.userId : null, demanded),
        /** The upstream refused the record's token (401): when its authorization server moved, the connection was dropped and this says where to authorize again. */
        unauthorized: () => migrated(current),

        exchange(messages: JsonRpcMessage[]): Exchange {
          const local: JsonRpcMessage[] = [];
          const forward: JsonRpcMessage[] = [];
          const waiting = new Map<JsonRpcId, { method: string; tool: string | null; started: number }>();
          const writes: Promise<void>[] = [];
          // A call's event is taken when its answer is known and appended by settled(), which
          // both callers run once the answer has gone on (so the agent does not wait for it).
          const taken: { tool: string; outcome: ToolOutcome; durationMs: number }[] = [];

          const auditCall = (tool: string, outcome: ToolOutcome, started: number) =>
            void taken.push({ tool, outcome, durationMs: Math.max(0, Math.round(performance.now() - started)) });
          const toolOf = (m: JsonRpcMessage) => {
            const name = (m.params as Record<string, unknown> | undefined)?.name;
            return m.method === "tools/call" && typeof name === "string" ? name : null;
          };

          for (const m of messages) {
            const started = performance.now();
            const verdict = policy.toUpstream(m, subject);
            if (verdict.action === "drop") continue;
            if (verdict.action === "answer") {
              local.push(verdict.message);
              const tool = toolOf(m);
              if (tool) auditCall(tool, "denied", started);
              continue;
            }
            forward.push(verdict.message);
            if (kindOf(verdict.message) === "request") {
              waiting.set(verdict.message.id as JsonRpcId, { method: verdict.message.method as string, tool: toolOf(verdict.message), started });
            }
          }

          return {
            local,
            forward,
            awaitsAnswer: waiting.size > 0,
            onUpstreamMessage(upstream) {
              const message = policy.toAgent(upstream, subject);
              if (message === null || kindOf(message) !== "response") return message;
              const id = message.id as JsonRpcId;
              const call = waiting.get(id);
              if (!call) return message;
              waiting.delete(id);
              if (call.tool) auditCall(call.tool, toolOutcome(message), call.started);
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
              for (const call of taken.splice(0)) writes.push(recordToolCall(call.tool, call.outcome, call.durationMs));
              await Promise.all([...writes, guard?.settled()]);
            },
          };
        },
      };
    },
  };
}

export type GatewayService = ReturnType<typeof createGatewayService>;
export type GatewayContext = Awaited<ReturnType<GatewayService["open"]>>;
