// Live checks of a registered MCP server: connect with its stored credentials, record
// the outcome on the record, and report it.
import type { McpServerRepo, StoredServer } from "../data/mcp-server-repo.js";
import type { ProbeResult, ProbeTarget } from "../outbound/mcp-probe.js";
import type { TokenOutcome } from "./oauth/index.js";
import type { ConnectionCheck, McpTool } from "../wire.js";
import { NotFound, UpstreamFailure } from "./errors.js";
import type { Actor } from "./tokens.js";
import { personalUpstreamHeaders, upstreamHeaders } from "./upstream.js";
import type { StepUpAnswer, UserCredential } from "./user-connections.js";
import type { PinGuards } from "./gateway/pins/guard.js";

/** `signal` ends the probe early (the caller went away); the probe's own deadline still holds. */
export type Probe = (target: ProbeTarget, signal?: AbortSignal) => Promise<ProbeResult>;

export interface ConnectionServiceDeps {
  repo: McpServerRepo;
  probe: Probe;
  /** A fresh OAuth access token for an `oauth` server (refreshed first when needed). */
  oauthToken: (stored: StoredServer) => Promise<TokenOutcome>;
  /** On a user-scope record a check uses the caller's own connection (issue 20). */
  userCredential: (stored: StoredServer, userId: string) => Promise<UserCredential>;
  /** A check's full list pins first sights and records changes and missing tools (issue 22). */
  pins?: PinGuards;
  /** A 403 insufficient_scope, on the connection checked (userId null: the record's); issue 20 item 6. */
  stepUp?: (stored: StoredServer, userId: string | null, demanded: string) => Promise<StepUpAnswer>;
  /** A 401 to the record's own token: whether the authorization server moved (the connection then dropped); issue 20 item 6. */
  migrated?: (stored: StoredServer) => Promise<StepUpAnswer | null>;
  now?: () => Date;
}

export function createConnectionService({ repo, probe, oauthToken, userCredential, pins, stepUp, migrated, now = () => new Date() }: ConnectionServiceDeps) {
  /** The whole list a check read: what the gateway would pin, record or find missing. */
  async function observe(actor: Actor, stored: StoredServer, result: ProbeResult) {
    if (!pins || !result.ok || !result.definitions) return;
    const guard = await pins.guard(stored.server, { requestId: actor.requestId ?? null });
    if (!guard) return;
    guard.observe(result.definitions, result.definitions.length < 1000);
    await guard.settled();
  }

  /** A refusal for insufficient scope marks the connection (step-up) and becomes the check's error; it already wrote the record's status. */
  async function steppedUp(stored: StoredServer, userId: string | null, result: ProbeResult): Promise<ProbeResult | null> {
    if (result.ok || result.insufficientScope === undefined || !stepUp || stored.server.authType !== "oauth") return null;
    const answer = await stepUp(stored, userId, result.insufficientScope);
    const error = answer.connect ? { ...answer.error, message: `${answer.error.message} (${answer.connect.url})` } : answer.error;
    return { ok: false, error, insufficientScope: result.insufficientScope };
  }

  async function targetFor(stored: StoredServer, accessToken: string | null): Promise<ProbeTarget> {
    const { server } = stored;
    const { headers, secrets } = upstreamHeaders(stored, await repo.openSecrets(server.workspaceId, server.id), accessToken);
    return { url: server.url, headers, secrets };
  }

  async function check(actor: Actor, id: string, signal?: AbortSignal) {
    let stored = await repo.find(actor.workspaces, id);
    if (!stored) throw new NotFound(`MCP server ${id}`);
    const checkedAt = now();
    const started = performance.now();
    if (stored.server.connectionScope === "user") {
      // The caller's own connection is checked; the record's status is everyone's, so it is left alone.
      const mine = await userCredential(stored, actor.userId);
      if (!mine.ok) {
        const error = { class: "auth" as const, message: `not connected: ${mine.connect.message}`, httpStatus: null };
        return { result: { ok: false as const, error }, checkedAt: checkedAt.toISOString(), latencyMs: 0, connectorStatus: "disconnected" as const };
      }
      const { headers, secrets } = personalUpstreamHeaders(stored, await repo.openSecrets(stored.server.workspaceId, stored.server.id), mine);
      const probed = await probe({ url: stored.server.url, headers, secrets }, signal);
      await observe(actor, stored, probed);
      const result = (await steppedUp(stored, actor.userId, probed)) ?? probed;
      const latencyMs = Math.max(0, Math.round(performance.now() - started));
      return { result, checkedAt: checkedAt.toISOString(), latencyMs, connectorStatus: result.ok ? ("connected" as const) : ("error" as const) };
    }
    let accessToken: string | null = null;
    if (stored.server.authType === "oauth") {
      const token = await oauthToken(stored);
      stored = token.stored;
      if (!token.ok) {
        // The token could not be had: that is the check's outcome (the OAuth flow recorded it).
        const latencyMs = Math.max(0, Math.round(performance.now() - started));
        if (token.connectorStatus === "error") {
          await repo.recordCheck(stored, { connectorStatus: "error", checkedAt: checkedAt.toISOString(), error: token.error });
        }
        return { result: { ok: false as const, error: token.error }, checkedAt: checkedAt.toISOString(), latencyMs, connectorStatus: token.connectorStatus };
      }
      accessToken = token.accessToken;
    }
    const probed = await probe(await targetFor(stored, accessToken), signal);
    await observe(actor, stored, probed);
    // Nobody is waiting for an outcome cut short by the caller leaving; it describes nothing.
    if (signal?.aborted) return { result: probed, checkedAt: checkedAt.toISOString(), latencyMs: 0, connectorStatus: stored.server.connectorStatus };
    const latencyMs = Math.max(0, Math.round(performance.now() - started));
    const stepped = await steppedUp(stored, null, probed);
    if (stepped) return { result: stepped, checkedAt: checkedAt.toISOString(), latencyMs, connectorStatus: "error" as const };
    if (!probed.ok && probed.error.httpStatus === 401 && migrated && stored.server.authType === "oauth") {
      // The authorization server moved: the migration already dropped the tokens and wrote the record's status.
      const moved = await migrated(stored);
      if (moved?.connect) {
        const error = { ...moved.error, message: `${moved.error.message} (${moved.connect.url})` };
        return { result: { ok: false as const, error }, checkedAt: checkedAt.toISOString(), latencyMs, connectorStatus: "disconnected" as const };
      }
    }
    const result = probed;
    const connectorStatus = result.ok ? "connected" : "error";
    const statusChanged = connectorStatus !== stored.server.connectorStatus;
    await repo.recordCheck(
      stored,
      { connectorStatus, checkedAt: checkedAt.toISOString(), error: result.ok ? null : result.error },
      statusChanged
        ? {
            type: "status_changed",
            actor: actor.userId,
            tokenId: actor.tokenId,
            requestId: actor.requestId ?? null,
            fields: [{ name: "connectorStatus", change: "changed" }],
          }
        : undefined,
    );
    return { result, checkedAt: checkedAt.toISOString(), latencyMs, connectorStatus };
  }

  return {
    async test(actor: Actor, id: string, signal?: AbortSignal): Promise<ConnectionCheck> {
      const { result, checkedAt, latencyMs } = await check(actor, id, signal);
      if (!result.ok) {
        // The check failed; the record may say `disconnected` (re-authorization needed), which the error explains.
        return { connectorStatus: "error", checkedAt, latencyMs, protocolVersion: null, serverInfo: null, capabilities: null, toolCount: null, error: result.error };
      }
      return {
        connectorStatus: "connected",
        checkedAt,
        latencyMs,
        protocolVersion: result.protocolVersion,
        serverInfo: result.serverInfo,
        capabilities: result.capabilities,
        toolCount: result.tools.length,
        error: null,
      };
    },

    async listTools(actor: Actor, id: string, signal?: AbortSignal): Promise<McpTool[]> {
      const { result } = await check(actor, id, signal);
      if (!result.ok) throw new UpstreamFailure(result.error);
      return result.tools;
    },
  };
}

export type ConnectionService = ReturnType<typeof createConnectionService>;
