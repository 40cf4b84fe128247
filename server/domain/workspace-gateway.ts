// The workspace endpoint's use cases: one MCP server made of every enabled server of a
// workspace. Lists fan out to all of them at once, each member (its record, credential and
// list) bounded in time on its own: one that fails or hangs is left out, the list says so in
// its _meta, and its record says why. A call opens only the member its name points to, so it
// never waits on another member's refresh, discovery or failure. Upstream sessions come from
// the process's pool (outbound/upstream-pool.ts), so nothing is reconnected per request.
import type { McpServerRepo, StoredServer } from "../data/mcp-server-repo.js";
import { randomUUID } from "node:crypto";
import { insufficientScopeOf } from "../outbound/insufficient-scope.js";
import type { CallOptions as UpstreamCallOptions, ListChanged, PoolTarget, ReplyMessage, UpstreamCalls, UpstreamReply } from "../outbound/upstream-pool.js";
import type { SessionBinding, SessionCodec } from "./gateway/session-codec.js";
import type { ConnectionError } from "../wire.js";
import { Forbidden } from "./errors.js";
import type { GatewayContext, GatewayService } from "./gateway/service.js";
import { namespaceOf, namespaced, namespacedUri, namespacedUriTemplate, splitNamespaced, splitNamespacedUri } from "./names.js";
import type { Actor } from "./tokens.js";

export type { ListChanged, ReplyMessage, UpstreamCalls } from "../outbound/upstream-pool.js";

export type UseUpstream = <T>(target: PoolTarget, timeoutMs: number, use: (calls: UpstreamCalls) => Promise<T>) => Promise<T>;
export type WatchUpstream = (target: PoolTarget, timeoutMs: number, onChange: (method: ListChanged) => void) => Promise<() => void>;
export type AnswerUpstream = (target: PoolTarget, reply: UpstreamReply, message: ReplyMessage, timeoutMs: number) => Promise<void>;

/** What an agent's request carries besides its parameters. */
export interface CallOptions extends Omit<UpstreamCallOptions, "onrequest"> {
  /**
   * A request the member made of the agent while answering (sampling, elicitation, roots), to
   * send to the agent under `answerId`. Its answer comes back through `answer`, in any process:
   * the id seals where it goes.
   */
  onrequest?: (method: string, params: Json, answerId: string) => Promise<void>;
  /** A retry of a multi-round-trip request: the agent's `inputResponses` and `requestState`, sent on as they are. */
  resume?: { inputResponses?: Json; requestState?: string };
}

/** The `_meta` key of a list result naming the members left out of it. */
export const LEFT_OUT_META = "io.mcp-servers-api/left-out";

/** A member left out of a list: which, and why (the ConnectionError class, or another short reason). */
export interface LeftOut {
  serverId: string;
  name: string;
  reason: string;
  message: string;
  /** With reason `not_connected` (a user-scope server the caller has not connected): where to connect (issue 20). */
  connectUrl?: string;
}

/** MCP 2025-11-25 URLElicitationRequiredError (-32042): the person must visit a URL first. */
export const URL_ELICITATION_REQUIRED = -32042;

/** A refusal or failure the agent gets as a JSON-RPC error. */
export class WorkspaceCallError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** The member's failure behind it, as its record shows it. */
    readonly failure: ConnectionError | null = null,
    /** The JSON-RPC error's `data` (the URL elicitation of -32042). */
    readonly data?: { elicitations: { mode: "url"; url: string; message: string; elicitationId: string }[] },
  ) {
    super(message);
  }
}

export interface WorkspaceGatewayDeps {
  repo: McpServerRepo;
  gateway: GatewayService;
  useUpstream: UseUpstream;
  /** Keeps a member's upstream session open and tells of its list_changed notifications (agents' GET streams). */
  watchUpstream?: WatchUpstream;
  /** Sends an agent's answer to a member's request on the upstream session that asked. */
  answerUpstream?: AnswerUpstream;
  /** Seals the agent sessions the endpoint hands out, and the ids of requests relayed to agents (the per-server endpoint's codec). */
  sessions?: SessionCodec;
  /** The agent sessions ended (DELETE), as every process sees them. */
  endedSessions?: { end(sessionId: string, at: string): Promise<void>; isEnded(sessionId: string): Promise<boolean> };
  /** Agent sessions' resource subscriptions (their namespaced URIs), as every process sees them. */
  subscriptionStore?: SubscriptionStore;
  /** The log level each agent session set (logging/setLevel), as every process sees it. */
  logLevels?: { set(sessionId: string, level: string, at: string): Promise<void>; get(sessionId: string): Promise<string | null>; removeSession(sessionId: string): Promise<void> };
  /** How long an agent session lasts from its initialize (MCP_API_WORKSPACE_SESSION_MAX_MS). */
  sessionMaxMs?: number;
  /** Bound for each member's part of a list, and for opening a member before a call (MCP_API_CONNECT_TIMEOUT_MS). */
  listTimeoutMs: number;
  /** Bound for one call. */
  toolTimeoutMs: number;
  /** How a failure shows on the record; null when the server answered with a JSON-RPC error (passed on as is). */
  describeFailure: (err: unknown, timeoutMs: number, secrets: string[]) => ConnectionError | null;
  /** The ttlMs of the endpoint's own list results (MCP_API_LIST_TTL_MS). */
  listTtlMs: number;
  /** MCP_API_WORKSPACE_BARE_NAMES: a workspace with one enabled member serves that member's names and URIs unprefixed. */
  bareSoleMember?: boolean;
  /** How often a watched workspace's membership is read again (agents' streams are told of changes within it). */
  membershipPollMs?: number;
}

type Json = Record<string, unknown>;

export interface SubscriptionStore {
  add(sessionId: string, uri: string, at: string): Promise<void>;
  remove(sessionId: string, uri: string): Promise<void>;
  list(sessionId: string): Promise<string[]>;
  removeSession(sessionId: string): Promise<void>;
}

/** At most this many resource subscriptions per agent session, each URI at most this long (the store's column). */
export const MAX_SUBSCRIPTIONS = 256;
export const MAX_SUBSCRIBED_URI = 2048;

/**
 * A request to a member that may be passed over for now: the member could not be reached
 * (-32004/-32005, or its credential), rather than refusing the request itself.
 */
const unreachable = (err: unknown) => isConnectionError(err) || (err instanceof WorkspaceCallError && (err.code === -32004 || err.code === -32005 || err.code === URL_ELICITATION_REQUIRED));

/**
 * A toolset's view of the workspace (issue 22): which members' tools it serves, and under what
 * name and description. Lists and calls go through the same members, policy and pool as the
 * whole workspace; the view only restricts and renames.
 */
export interface ToolView {
  /** Per member record id: the tools served (the server's own name) → their overrides (null: none). */
  tools: ReadonlyMap<string, ReadonlyMap<string, { name: string | null; description: string | null }>>;
}

export interface Member {
  namespace: string;
  stored: StoredServer;
  /** The workspace's only member, with MCP_API_WORKSPACE_BARE_NAMES on: its names and URIs are served as it gives them. */
  bare?: boolean;
}

class MemberDeadline extends Error {
  override readonly name = "TimeoutError";
}

// One promise and one timer (Promise.race with a deadline promise and finally made four promises per call).
function within<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new MemberDeadline(`no answer within ${ms} ms`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

const isConnectionError = (e: unknown): e is ConnectionError => typeof (e as ConnectionError | null)?.class === "string" && typeof (e as ConnectionError).message === "string";

/** What a change of the workspace's members may change: every list. */
const MEMBERSHIP_CHANGED: ListChanged[] = ["notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"];

/** How long this process trusts that a session was not ended elsewhere (the token cache's bound). */
const ENDED_CHECK_MS = 1000;
const ENDED_KEPT = 10_000;

export function createWorkspaceGateway({ repo, gateway, useUpstream, watchUpstream, answerUpstream, sessions, endedSessions, subscriptionStore, logLevels, sessionMaxMs = 86_400_000, listTimeoutMs, toolTimeoutMs, describeFailure, listTtlMs, bareSoleMember = false, membershipPollMs = 2000 }: WorkspaceGatewayDeps) {
  // An agent session of the workspace endpoint is bound to the workspace and the token; it holds nothing but a random id.
  const sessionBinding = (actor: Actor, workspaceId: string): SessionBinding => ({ serverId: `workspace:${workspaceId}`, tokenId: actor.tokenId, origin: "workspace", credentials: "" });
  // The id of a request relayed to an agent seals where its answer goes, for this workspace and token alone.
  const askBinding = (actor: Actor, workspaceId: string): SessionBinding => ({ serverId: `workspace-ask:${workspaceId}`, tokenId: actor.tokenId, origin: "workspace", credentials: "" });

  // Sessions' log levels read lately, in this process (null: none set), trusted for ENDED_CHECK_MS.
  const levelsRead = new Map<string, { level: string | null; at: number }>();
  const rememberLevel = (id: string, level: string | null) => {
    levelsRead.delete(id);
    if (levelsRead.size >= ENDED_KEPT) levelsRead.delete(levelsRead.keys().next().value as string);
    levelsRead.set(id, { level, at: performance.now() });
  };

  // A session id is `<random uuid>.<its issue time, ms since the epoch>`.
  const issuedAt = (id: string) => {
    const dot = id.lastIndexOf(".");
    return dot < 0 ? Number.NaN : Number(id.slice(dot + 1));
  };

  // Sessions checked against the ended ones lately, in this process: an ended one stays ended.
  const checked = new Map<string, { ended: boolean; at: number }>();
  const remember = (id: string, ended: boolean) => {
    checked.delete(id);
    if (checked.size >= ENDED_KEPT) checked.delete(checked.keys().next().value as string);
    checked.set(id, { ended, at: performance.now() });
  };

  // Resource subscriptions are the agent session's, in the store; the process holding the
  // session's GET stream holds them upstream (on its kept sessions), reading them again on every
  // membership poll and at once when it takes a subscribe or unsubscribe itself.
  interface HeldSubscription {
    serverId: string;
    member: Member;
    /** The server's own URI. */
    uri: string;
    listener: () => void;
  }
  interface Holder {
    actor: Actor;
    workspaceId: string;
    onUpdated: (uri: string) => void;
    /** The agent URIs to hold: the session's, from the store; or those a 2026-07-28 agent's listen streams here name. */
    wanted: () => Promise<string[]> | string[];
    /** Streams open here that need them. */
    streams: number;
    /** Per agent URI. */
    held: Map<string, HeldSubscription>;
    /** Agent URIs a member refused (not retried until its record changes), with the record version refused at. */
    refused: Map<string, string>;
    /** Syncs run one after another. */
    queue: Promise<unknown>;
    timer: NodeJS.Timeout | null;
  }
  const holders = new Map<string, Holder>();

  /** The member and server URI an agent's URI names, among `all` (the workspace's members now). */
  function resolveUri(all: Member[], full: string): { member: Member; uri: string } | null {
    if (all.length === 1 && all[0].bare) return { member: all[0], uri: full };
    const split = splitNamespacedUri(full);
    const member = split ? all.find((m) => m.namespace === split.namespace) : undefined;
    return split && member ? { member, uri: split.uri } : null;
  }

  /** Subscribes on the member's kept session (the upstream once per URI and process), if the member offers subscriptions. */
  async function subscribeUpstream(actor: Actor, member: Member, uri: string, listener: () => void): Promise<Json> {
    return callMember(actor, member, "resources/subscribe", { uri }, (calls, p) => {
      offersSubscriptions(member, calls);
      return calls.subscribe(p as { uri: string }, listener);
    });
  }

  function offersSubscriptions(member: Member, calls: UpstreamCalls) {
    if ((calls.capabilities().resources as Json | undefined)?.subscribe !== true) {
      throw new WorkspaceCallError(-32601, `MCP server '${member.stored.server.name}' does not offer resource subscriptions.`);
    }
  }

  function unsubscribeUpstream(actor: Actor, held: HeldSubscription): Promise<unknown> {
    return callMember(actor, held.member, "resources/unsubscribe", { uri: held.uri }, (calls, p) => calls.unsubscribe(p as { uri: string }, held.listener)).catch(() => {});
  }

  /**
   * Makes what this process holds upstream for a session what the store says it subscribed to,
   * among the workspace's members now; returns why each URI it could not subscribe failed.
   */
  function sync(sessionId: string, holder: Holder): Promise<Map<string, unknown>> {
    const run = async () => {
      const failed = new Map<string, unknown>();
      const wanted = new Set(await holder.wanted());
      if (!wanted.size && !holder.held.size) return failed;
      const all = await members(holder.actor, holder.workspaceId);
      for (const [full, held] of holder.held) {
        const now = wanted.has(full) ? resolveUri(all, full) : null;
        if (now && now.member.stored.server.id === held.serverId && now.uri === held.uri) continue;
        holder.held.delete(full);
        await unsubscribeUpstream(holder.actor, held);
      }
      for (const full of wanted) {
        if (holder.held.has(full) || holders.get(sessionId) !== holder) continue;
        const found = resolveUri(all, full);
        if (!found) continue; // its member is gone or renamed: nothing to hold until it is back
        const version = JSON.stringify([found.member.stored.server.id, found.member.stored.server.updatedAt]);
        if (holder.refused.get(full) === version) continue;
        const listener = () => holder.onUpdated(full);
        try {
          await subscribeUpstream(holder.actor, found.member, found.uri, listener);
          holder.held.set(full, { serverId: found.member.stored.server.id, member: found.member, uri: found.uri, listener });
          holder.refused.delete(full);
        } catch (err) {
          failed.set(full, err);
          if (!unreachable(err)) holder.refused.set(full, version); // tried again at a later poll only when it could not be reached
        }
      }
      return failed;
    };
    const done = holder.queue.then(run, run);
    holder.queue = done.catch(() => {});
    return done;
  }

  /** Holds `wanted` under `key` while the returned release is not called (streams counted, one holder per key). */
  async function hold(key: string, actor: Actor, workspaceId: string, wanted: Holder["wanted"], onUpdated: (uri: string) => void) {
    let holder = holders.get(key);
    if (!holder) {
      const made: Holder = { actor, workspaceId, onUpdated, wanted, streams: 0, held: new Map(), refused: new Map(), queue: Promise.resolve(), timer: null };
      made.timer = setInterval(() => void sync(key, made).catch(() => {}), membershipPollMs);
      made.timer.unref();
      holders.set(key, (holder = made));
    }
    const mine = holder;
    mine.streams++;
    await sync(key, mine).catch(() => {}); // the store is gone for now: the next poll tries again
    let stopped = false;
    return {
      refresh: () => sync(key, mine),
      release: () => {
        if (stopped) return;
        stopped = true;
        if (--mine.streams === 0) release(key, mine);
      },
    };
  }

  /** Every subscription this process holds for a session, released upstream (its last stream here closed). */
  function release(sessionId: string, holder: Holder) {
    if (holders.get(sessionId) === holder) holders.delete(sessionId);
    if (holder.timer) clearInterval(holder.timer);
    holder.queue = holder.queue.then(async () => {
      const all = [...holder.held.values()];
      holder.held.clear();
      await Promise.all(all.map((held) => unsubscribeUpstream(holder.actor, held)));
    });
  }

  interface Asked {
    recordId: string;
    principal: string | null;
    /** The upstream's origin when it asked: an answer never follows the record elsewhere. */
    origin: string;
    reply: UpstreamReply;
  }

  function sealAsked(actor: Actor, workspaceId: string, ctx: GatewayContext, reply: UpstreamReply): string {
    if (!sessions || !answerUpstream) throw new WorkspaceCallError(-32601, "this endpoint cannot relay requests of a server to the agent");
    const asked: Asked = { recordId: ctx.server.id, principal: ctx.principal, origin: new URL(ctx.server.url).origin, reply };
    return sessions.seal(JSON.stringify(asked), askBinding(actor, workspaceId));
  }

  /** The workspace's enabled servers and their namespaces; nothing is opened or dialled. */
  async function members(actor: Actor, workspaceId: string): Promise<Member[]> {
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    const stored = (await repo.list(workspaceId, 10_000, null)).filter((s) => s.server.enabled).reverse(); // oldest first
    const taken = new Set<string>();
    const list: Member[] = stored.map((s) => {
      // Records that share a namespace predate the 409 rule: the older keeps it, the newer gets its id's tail.
      let namespace = namespaceOf(s.server.name);
      if (taken.has(namespace)) namespace = `${namespace}_${s.server.id.slice(-6).toLowerCase()}`;
      taken.add(namespace);
      return { namespace, stored: s };
    });
    if (bareSoleMember && list.length === 1) list[0].bare = true;
    return list;
  }

  /**
   * The member's record, credential (an OAuth refresh included) and target, within `openMs`.
   * Only opening an OAuth record or a person's own connection can wait on the network; any
   * other reads the store alone, as the per-server endpoint's open does, and has no timer.
   */
  async function openMember(actor: Actor, m: Member, openMs: number): Promise<GatewayContext> {
    const opening = gateway.open(actor, m.stored.server.id, undefined);
    const { authType, connectionScope } = m.stored.server;
    if (authType !== "oauth" && connectionScope !== "user") return opening;
    try {
      return await within(opening, openMs);
    } catch (err) {
      if (err instanceof MemberDeadline) throw { class: "timeout", message: `its credential was not ready within ${openMs} ms`, httpStatus: null } satisfies ConnectionError;
      throw err;
    }
  }

  /** Runs `use` on one member's kept upstream session, recording a failure on its record (not one the agent's own cancellation caused). */
  async function onMember<T>(ctx: GatewayContext, timeoutMs: number, use: (calls: UpstreamCalls) => Promise<T>, cancelled?: CallOptions["signal"]): Promise<T> {
    if (ctx.unavailable) throw ctx.unavailable;
    const enabled = ctx.requireEnabled();
    // A user-scope member's session is the calling person's own: never shared with anyone else.
    const target: PoolTarget = { recordId: ctx.server.id, recordVersion: ctx.server.updatedAt, url: enabled.url, headers: enabled.headers, principal: ctx.principal };
    try {
      const result = await useUpstream(target, timeoutMs, use);
      await ctx.recordSuccess().catch(() => {});
      return result;
    } catch (err) {
      const demanded = insufficientScopeOf(err);
      if (demanded !== null) {
        // Step-up (issue 20 item 6): the connection used is marked; the person is told where to authorize again.
        const stepped = await ctx.insufficientScope(demanded);
        if (!stepped.connect) throw stepped.error;
        const { url, message, elicitationId } = stepped.connect;
        throw new WorkspaceCallError(URL_ELICITATION_REQUIRED, message, stepped.error, { elicitations: [{ mode: "url", url, message, elicitationId }] });
      }
      const error = describeFailure(err, timeoutMs, enabled.secrets);
      if (!error) throw err;
      if (error.httpStatus === 401) {
        // Authorization-server migration (issue 20 item 6): the record's tokens were dropped; an administrator is told where to authorize again.
        const moved = await ctx.unauthorized();
        if (moved?.connect) {
          const { url, message, elicitationId } = moved.connect;
          throw new WorkspaceCallError(URL_ELICITATION_REQUIRED, message, moved.error, { elicitations: [{ mode: "url", url, message, elicitationId }] });
        }
      }
      if (!cancelled?.aborted) await ctx.recordFailure(error).catch(() => {});
      throw error;
    }
  }

  /** Every member's list at once, each member (opening it included) bounded by listTimeoutMs as a whole. */
  async function listAll(actor: Actor, workspaceId: string, method: string, key: string, list: (calls: UpstreamCalls) => Promise<Json>, only?: (m: Member) => boolean) {
    const all = (await members(actor, workspaceId)).filter((m) => !only || only(m));
    const started = performance.now();
    const parts = await Promise.allSettled(
      all.map(async (m) => {
        const ctx = await openMember(actor, m, listTimeoutMs);
        if (!ctx.target) return []; // disabled since it was listed: the kill switch holds here too
        const left = Math.max(1, Math.round(listTimeoutMs - (performance.now() - started)));
        const result = await relay(ctx, method, {}, left, list);
        return Array.isArray(result[key]) ? (result[key] as Json[]) : [];
      }),
    );
    const found: { member: Member; items: Json[] }[] = [];
    const leftOut: LeftOut[] = [];
    all.forEach((m, i) => {
      const part = parts[i];
      if (part.status === "fulfilled") {
        found.push({ member: m, items: part.value });
        return;
      }
      const why = part.reason;
      if (why instanceof WorkspaceCallError && why.code === URL_ELICITATION_REQUIRED) {
        leftOut.push({ serverId: m.stored.server.id, name: m.stored.server.name, reason: "not_connected", message: why.message, connectUrl: why.data?.elicitations[0]?.url });
        return;
      }
      const cause = isConnectionError(why) ? why : why instanceof WorkspaceCallError ? why.failure : null;
      leftOut.push({
        serverId: m.stored.server.id,
        name: m.stored.server.name,
        reason: cause ? cause.class : "error",
        message: cause ? cause.message : why instanceof Error ? why.message.slice(0, 200) : "the MCP server could not be listed",
      });
    });
    return { found, leftOut };
  }

  const withMeta = <K extends string>(key: K, items: Json[], leftOut: LeftOut[]) =>
    ({ [key]: items, ...(leftOut.length ? { _meta: { [LEFT_OUT_META]: leftOut } } : {}) }) as { [P in K]: Json[] } & { _meta?: Json };

  const unknown = (what: string, full: string, form: string) =>
    new WorkspaceCallError(-32602, `Unknown ${what} '${full.slice(0, 200)}': ${form}; list them first.`);

  /** The member holding a namespace: one index probe, and the whole list only for records that predate the unique namespace. */
  async function memberNamed(actor: Actor, workspaceId: string, namespace: string | undefined): Promise<Member | undefined> {
    if (namespace === undefined) return undefined;
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    const held = await repo.findByNamespace(workspaceId, namespace);
    if (held) return held.server.enabled ? { namespace, stored: held } : undefined;
    return (await members(actor, workspaceId)).find((m) => m.namespace === namespace);
  }

  /** The workspace's sole member when its names are bare (MCP_API_WORKSPACE_BARE_NAMES), else null. */
  async function bareMember(actor: Actor, workspaceId: string): Promise<Member | null> {
    if (!bareSoleMember) return null;
    const all = await members(actor, workspaceId);
    return all.length === 1 && all[0].bare ? all[0] : null;
  }

  async function byName(actor: Actor, workspaceId: string, full: string, what: string) {
    const sole = bareSoleMember ? await bareMember(actor, workspaceId) : null;
    if (sole) return { member: sole, name: full };
    const split = splitNamespaced(full);
    const member = split ? await memberNamed(actor, workspaceId, split.namespace) : undefined;
    if (!split || !member) throw unknown(what, full, `names here are <server namespace>__<${what} name>`);
    return { member, name: split.name };
  }

  async function byUri(actor: Actor, workspaceId: string, full: string) {
    const sole = await bareMember(actor, workspaceId);
    if (sole) return { member: sole, uri: full };
    const split = splitNamespacedUri(full);
    const member = split ? await memberNamed(actor, workspaceId, split.namespace) : undefined;
    if (!split || !member) throw unknown("resource", full, "URIs here are mcpws://<server namespace>/<the server's URI, percent-encoded>");
    return { member, uri: split.uri };
  }

  /**
   * One request to one member through the relay policy every gateway message passes
   * (gateway/interceptors.ts: kill switch, relayed methods, allowedTools) and its audit, as on
   * the per-server endpoint: the request goes through `exchange`, the answer back through it.
   */
  async function relay(ctx: GatewayContext, method: string, params: Json, timeoutMs: number, send: (calls: UpstreamCalls, params: Json) => Promise<Json>, cancelled?: CallOptions["signal"]) {
    // A person without a usable connection of their own: told where to connect; nothing is dialled with anyone else's credential.
    if (ctx.connect) {
      const { url, message, elicitationId } = ctx.connect;
      throw new WorkspaceCallError(URL_ELICITATION_REQUIRED, message, null, { elicitations: [{ mode: "url", url, message, elicitationId }] });
    }
    const ex = ctx.exchange([{ jsonrpc: "2.0", id: 1, method, params }]);
    try {
      const refused = ex.local[0]?.error as { code: number; message: string } | undefined;
      if (refused) throw new WorkspaceCallError(refused.code, refused.message);
      const up = ex.forward[0];
      if (!up) throw new WorkspaceCallError(-32003, `MCP server '${ctx.server.name}' does not accept this request.`);
      let result: Json;
      try {
        result = await onMember(ctx, timeoutMs, (calls) => send(calls, (up.params ?? {}) as Json), cancelled);
      } catch (err) {
        if (cancelled?.aborted) {
          // The agent went away or sent notifications/cancelled: not the member's failure.
          ex.fail(-32800, "cancelled", "cancelled");
          throw new WorkspaceCallError(-32800, "The request was cancelled.");
        }
        if (isConnectionError(err)) {
          const code = err.class === "timeout" ? -32005 : -32004;
          const text = `MCP server '${ctx.server.name}' could not be used: ${err.message}.`;
          ex.fail(code, text, err.class === "timeout" ? "timeout" : "upstream_error");
          throw new WorkspaceCallError(code, text, err);
        }
        // The server's own JSON-RPC error, passed on as it is.
        const code = (err as { code?: unknown })?.code;
        ex.onUpstreamMessage({ jsonrpc: "2.0", id: 1, error: { code: typeof code === "number" ? code : -32603, message: String((err as Error)?.message ?? err) } });
        throw err;
      }
      const out = ex.onUpstreamMessage({ jsonrpc: "2.0", id: 1, result });
      if (out === null) throw new WorkspaceCallError(-32003, `MCP server '${ctx.server.name}' is disabled in this workspace.`);
      const error = out.error as { code: number; message: string } | undefined;
      if (error) throw new WorkspaceCallError(error.code, error.message);
      return out.result as Json;
    } finally {
      await ex.settled().catch(() => {});
    }
  }

  /**
   * What the member sends while answering, as the agent sees it: a log message's `logger` names
   * the member's namespace (`<namespace>`, or `<namespace>__<the server's logger>`).
   */
  function logAsMember(member: Member, onlog: CallOptions["onlog"]): CallOptions["onlog"] {
    if (!onlog || member.bare) return onlog;
    return (params) => onlog({ ...params, logger: typeof params.logger === "string" && params.logger ? `${member.namespace}__${params.logger}` : member.namespace });
  }

  /** A request to the one member a name or URI points to; opening it is bounded like a list. */
  async function callMember(actor: Actor, member: Member, method: string, params: Json, send: (calls: UpstreamCalls, params: Json, options: UpstreamCallOptions) => Promise<Json>, options: CallOptions = {}) {
    let ctx: GatewayContext;
    try {
      ctx = await openMember(actor, member, listTimeoutMs);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      throw new WorkspaceCallError(err.class === "timeout" ? -32005 : -32004, `MCP server '${member.stored.server.name}' could not be used: ${err.message}.`);
    }
    const { onrequest, resume, onlog, ...rest } = options;
    const own: UpstreamCallOptions = {
      ...rest,
      onlog: logAsMember(member, onlog),
      onrequest: onrequest && ((m, p, reply) => onrequest(m, p, sealAsked(actor, member.stored.server.workspaceId, ctx, reply))),
    };
    return relay(ctx, method, resume ? { ...params, ...resume } : params, toolTimeoutMs, (calls, p) => send(calls, p, own), options.signal);
  }

  /** A resource's URIs (its own, and any in its contents) in the namespaced form. */
  const uriOf = (m: Member, uri: string) => (m.bare ? uri : namespacedUri(m.namespace, uri));

  const mapContents = (m: Member, result: Json): Json =>
    Array.isArray(result.contents)
      ? { ...result, contents: result.contents.map((c: Json) => (typeof c?.uri === "string" ? { ...c, uri: uriOf(m, c.uri) } : c)) }
      : result;

  const named = (m: Member, items: Json[]): Json[] =>
    items.flatMap((item) => {
      const name = typeof item.name !== "string" ? null : m.bare ? item.name : namespaced(m.namespace, item.name);
      return name ? [{ ...item, name }] : [];
    });

  /** A view's tools of its members, renamed; a name taken by an earlier one is left out. */
  const viewed = (view: ToolView, found: { member: Member; items: Json[] }[]): Json[] => {
    const seen = new Set<string>();
    return found.flatMap(({ member, items }) => {
      const chosen = view.tools.get(member.stored.server.id);
      return items.flatMap((item) => {
        const entry = typeof item.name === "string" ? chosen?.get(item.name) : undefined;
        const name = entry ? (entry.name ?? namespaced(member.namespace, item.name as string)) : null;
        if (!entry || !name || seen.has(name)) return [];
        seen.add(name);
        return [{ ...item, name, ...(entry.description !== null ? { description: entry.description } : {}) }];
      });
    });
  };

  /** The member and tool a view's name points to: an override name, else `<namespace>__<tool>` of a tool without one. */
  async function byViewName(actor: Actor, workspaceId: string, view: ToolView, full: string) {
    for (const [serverId, tools] of view.tools) {
      for (const [tool, entry] of tools) {
        if (entry.name !== full) continue;
        const member = (await members(actor, workspaceId)).find((m) => m.stored.server.id === serverId);
        if (member) return { member, name: tool };
      }
    }
    const split = splitNamespaced(full);
    const member = split ? await memberNamed(actor, workspaceId, split.namespace) : undefined;
    const entry = member && split ? view.tools.get(member.stored.server.id)?.get(split.name) : undefined;
    if (!member || !split || !entry || entry.name !== null) throw unknown("tool", full, "this toolset serves only the tools tools/list gives");
    return { member, name: split.name };
  }

  const holdBinding = (actor: Actor, workspaceId: string): SessionBinding => ({ serverId: `workspace-hold:${workspaceId}`, tokenId: actor.tokenId, origin: "workspace", credentials: "" });

  return {
    members,
    listTtlMs,
    toolTimeoutMs,
    /** Seals the state of a member request held for a 2026-07-28 agent's retry, bound to the workspace and token (null: no codec, nothing can be held). */
    sealState: (actor: Actor, workspaceId: string, state: string): string | null => (sessions && answerUpstream ? sessions.seal(state, holdBinding(actor, workspaceId)) : null),
    /** What `sealState` sealed for this workspace and token, or null (forged, altered, or another's). */
    openState: (actor: Actor, workspaceId: string, sealed: string): string | null => sessions?.open(sealed, holdBinding(actor, workspaceId)) ?? null,

    /** A new agent session id (2025-era `initialize`), or null when the endpoint runs without a codec. */
    sealSession(actor: Actor, workspaceId: string): string | null {
      return sessions ? sessions.seal(`${randomUUID()}.${Date.now()}`, sessionBinding(actor, workspaceId)) : null;
    },

    /** Milliseconds before a session (an id `session` gave) expires. */
    sessionLeftMs(id: string): number {
      return issuedAt(id) + sessionMaxMs - Date.now();
    },

    /**
     * The session `sealed` names when it is one this endpoint handed out for this workspace and
     * token, less than `sessionMaxMs` ago, and it was not ended; else null.
     */
    async session(actor: Actor, workspaceId: string, sealed: string): Promise<string | null> {
      const id = sessions?.open(sealed, sessionBinding(actor, workspaceId)) ?? null;
      if (id === null || !(Date.now() - issuedAt(id) < sessionMaxMs)) return null; // an id without its issue time predates the bound: expired too
      if (!endedSessions) return id;
      const known = checked.get(id);
      if (known && (known.ended || performance.now() - known.at < ENDED_CHECK_MS)) return known.ended ? null : id;
      const ended = await endedSessions.isEnded(id);
      remember(id, ended);
      return ended ? null : id;
    },

    /** Ends a session (DELETE): refused from now on here, and within ENDED_CHECK_MS everywhere; its subscriptions go (released upstream here at once, elsewhere at the next poll). */
    async endSession(actor: Actor, workspaceId: string, sealed: string): Promise<string | null> {
      const id = await this.session(actor, workspaceId, sealed);
      if (id === null) return null;
      await endedSessions?.end(id, new Date().toISOString());
      remember(id, true);
      await Promise.all([subscriptionStore?.removeSession(id), logLevels?.removeSession(id)]);
      levelsRead.delete(id);
      const holder = holders.get(id);
      if (holder) release(id, holder);
      return id;
    },

    /** logging/setLevel of an agent session: kept as the session's, so every process applies it (within ENDED_CHECK_MS). */
    async setSessionLogLevel(sessionId: string, level: string): Promise<void> {
      await logLevels?.set(sessionId, level, new Date().toISOString());
      rememberLevel(sessionId, level);
    },

    /** The level a session set (null: none yet); from this process's copy when it is fresh, so most requests read nothing. */
    sessionLogLevel(sessionId: string): string | null | Promise<string | null> {
      const known = levelsRead.get(sessionId);
      if (known && performance.now() - known.at < ENDED_CHECK_MS) return known.level;
      if (!logLevels) return known?.level ?? null;
      return logLevels.get(sessionId).then((level) => {
        rememberLevel(sessionId, level);
        return level;
      });
    },

    /**
     * An agent's answer to a request relayed to it, sent to the upstream session that asked,
     * whichever process relayed the request. False when `id` is not one handed to this token
     * for this workspace, or its member is gone, disabled, moved or now another person's.
     */
    async answer(actor: Actor, workspaceId: string, id: string, message: ReplyMessage): Promise<boolean> {
      if (!sessions || !answerUpstream || !actor.workspaces.includes(workspaceId)) return false;
      const opened = sessions.open(id, askBinding(actor, workspaceId));
      if (opened === null) return false;
      const asked = JSON.parse(opened) as Asked;
      const ctx = await within(gateway.open(actor, asked.recordId, undefined), listTimeoutMs);
      if (!ctx.target || ctx.connect || ctx.unavailable || ctx.principal !== asked.principal || new URL(ctx.target.url).origin !== asked.origin) return false;
      const target: PoolTarget = { recordId: ctx.server.id, recordVersion: ctx.server.updatedAt, url: ctx.target.url, headers: ctx.target.headers, principal: ctx.principal };
      await answerUpstream(target, asked.reply, message, listTimeoutMs);
      return true;
    },

    /**
     * Tells `onChange` when a member's tools, prompts or resources change (its list_changed), and
     * when the workspace's membership does (a server added, removed, enabled, disabled or
     * edited: all three lists may differ), until the returned stop is called. Every member is
     * opened at once, each bounded on its own; one that cannot be opened is not watched (its
     * next list says why). Membership is read again every `membershipPollMs`, so a change made
     * through any process is told within that bound.
     */
    async watch(actor: Actor, workspaceId: string, onChange: (method: ListChanged) => void): Promise<() => void> {
      if (!watchUpstream) return () => {};
      const watched = new Map<string, Promise<() => void>>();
      const keyOf = (m: Member) => JSON.stringify([m.stored.server.id, m.stored.server.updatedAt]);
      const fingerprint = (all: Member[]) => JSON.stringify(all.map((m) => [keyOf(m), m.namespace]));
      const watchMember = async (m: Member): Promise<() => void> => {
        try {
          const ctx = await openMember(actor, m, listTimeoutMs);
          if (ctx.unavailable || ctx.connect || !ctx.target) return () => {};
          const enabled = ctx.requireEnabled();
          return await watchUpstream({ recordId: ctx.server.id, recordVersion: ctx.server.updatedAt, url: enabled.url, headers: enabled.headers, principal: ctx.principal }, listTimeoutMs, onChange);
        } catch {
          return () => {};
        }
      };
      /** Watches the members not watched yet and stops watching the ones gone. */
      const follow = async (all: Member[]) => {
        const now = new Set(all.map(keyOf));
        for (const [key, stop] of watched) {
          if (now.has(key)) continue;
          watched.delete(key);
          void stop.then((s) => s());
        }
        await Promise.all(all.filter((m) => !watched.has(keyOf(m))).map((m) => {
          const stop = watchMember(m);
          watched.set(keyOf(m), stop);
          return stop;
        }));
      };
      let all = await members(actor, workspaceId);
      let last = fingerprint(all);
      await follow(all);
      let stopped = false;
      let busy = false;
      const timer = setInterval(async () => {
        if (busy || stopped) return;
        busy = true;
        try {
          all = await members(actor, workspaceId);
          const now = fingerprint(all);
          if (now === last) return;
          last = now;
          await follow(all);
          if (!stopped) for (const method of MEMBERSHIP_CHANGED) onChange(method);
        } catch {
          /* the store or the token is gone for now: try again at the next tick */
        } finally {
          busy = false;
        }
      }, membershipPollMs);
      timer.unref();
      return () => {
        stopped = true;
        clearInterval(timer);
        for (const stop of watched.values()) void stop.then((s) => s());
        watched.clear();
      };
    },

    /** With a view (a toolset), only its tools, under its names. */
    async listTools(actor: Actor, workspaceId: string, view?: ToolView) {
      if (view) {
        const { found, leftOut } = await listAll(actor, workspaceId, "tools/list", "tools", (calls) => calls.listTools(), (m) => view.tools.has(m.stored.server.id));
        return withMeta("tools", viewed(view, found), leftOut);
      }
      const { found, leftOut } = await listAll(actor, workspaceId, "tools/list", "tools", (calls) => calls.listTools());
      return withMeta("tools", found.flatMap(({ member, items }) => named(member, items)), leftOut);
    },

    /** The tool names some members offer, as their servers give them, through the same policy (a toolset's write-time check). */
    async offeredTools(actor: Actor, workspaceId: string, serverIds: ReadonlySet<string>) {
      const { found, leftOut } = await listAll(actor, workspaceId, "tools/list", "tools", (calls) => calls.listTools(), (m) => serverIds.has(m.stored.server.id));
      const offered = new Map(found.map(({ member, items }) => [member.stored.server.id, new Set(items.flatMap((i) => (typeof i.name === "string" ? [i.name] : [])))]));
      return { offered, leftOut };
    },

    async callTool(actor: Actor, workspaceId: string, fullName: string, args: Json | undefined, options: CallOptions = {}, view?: ToolView) {
      const { member, name } = view ? await byViewName(actor, workspaceId, view, fullName) : await byName(actor, workspaceId, fullName, "tool");
      return callMember(actor, member, "tools/call", { name, arguments: args }, (calls, params, o) => calls.callTool(params, o), options);
    },

    async listPrompts(actor: Actor, workspaceId: string) {
      const { found, leftOut } = await listAll(actor, workspaceId, "prompts/list", "prompts", (calls) => calls.listPrompts());
      return withMeta("prompts", found.flatMap(({ member, items }) => named(member, items)), leftOut);
    },

    async getPrompt(actor: Actor, workspaceId: string, fullName: string, args: Record<string, string> | undefined, options: CallOptions = {}) {
      const { member, name } = await byName(actor, workspaceId, fullName, "prompt");
      return callMember(actor, member, "prompts/get", { name, arguments: args }, (calls, params, o) => calls.getPrompt(params, o), options);
    },

    async listResources(actor: Actor, workspaceId: string) {
      const { found, leftOut } = await listAll(actor, workspaceId, "resources/list", "resources", (calls) => calls.listResources());
      const resources = found.flatMap(({ member, items }) =>
        items.flatMap((item) => (typeof item.uri === "string" ? [{ ...item, uri: uriOf(member, item.uri) }] : [])),
      );
      return withMeta("resources", resources, leftOut);
    },

    async listResourceTemplates(actor: Actor, workspaceId: string) {
      const { found, leftOut } = await listAll(actor, workspaceId, "resources/templates/list", "resourceTemplates", (calls) => calls.listResourceTemplates());
      const templates = found.flatMap(({ member, items }) =>
        named(member, items).flatMap((item) =>
          typeof item.uriTemplate === "string" ? [{ ...item, uriTemplate: member.bare ? item.uriTemplate : namespacedUriTemplate(member.namespace, item.uriTemplate) }] : [],
        ),
      );
      return withMeta("resourceTemplates", templates, leftOut);
    },

    async readResource(actor: Actor, workspaceId: string, fullUri: string, options: CallOptions = {}) {
      const { member, uri } = await byUri(actor, workspaceId, fullUri);
      const result = await callMember(actor, member, "resources/read", { uri }, (calls, params, o) => calls.readResource(params, o), options);
      return mapContents(member, result);
    },

    /**
     * Holds a session's resource subscriptions upstream in this process while its GET stream is
     * open here: each notifications/resources/updated of a subscribed resource is told to
     * `onUpdated` with the agent's URI. Subscriptions taken by any process are picked up within
     * `membershipPollMs`; the returned stop releases them here (they stay the session's).
     */
    async holdSubscriptions(actor: Actor, workspaceId: string, sessionId: string, onUpdated: (uri: string) => void): Promise<() => void> {
      if (!subscriptionStore) return () => {};
      const store = subscriptionStore;
      return (await hold(sessionId, actor, workspaceId, () => store.list(sessionId), onUpdated)).release;
    },

    /**
     * Holds upstream, in this process, the resources a 2026-07-28 agent's listen streams name
     * (`uris()`: agent URIs; their `resourceSubscriptions`) under `key`: `onUpdated` is told of
     * each update. `refresh` (after `uris()` changed) resolves once they are held; `release` lets them go.
     */
    async holdResources(actor: Actor, workspaceId: string, key: string, uris: () => string[], onUpdated: (uri: string) => void) {
      const held = await hold(`listen:${key}`, actor, workspaceId, uris, onUpdated);
      return { release: held.release, refresh: () => held.refresh().then(() => {}) };
    },

    /**
     * resources/subscribe of an agent session: recorded as the session's, so that whichever
     * process holds its GET stream subscribes the member the URI names (at once when that is this
     * process, within `membershipPollMs` otherwise). A member that does not offer subscriptions,
     * or refuses this one, is an error and nothing is recorded.
     */
    async subscribe(actor: Actor, workspaceId: string, sessionId: string, fullUri: string) {
      if (!subscriptionStore) throw new WorkspaceCallError(-32601, "this endpoint cannot keep resource subscriptions");
      if (fullUri.length > MAX_SUBSCRIBED_URI) throw new WorkspaceCallError(-32602, `A subscribed URI is at most ${MAX_SUBSCRIBED_URI} characters.`);
      const { member, uri } = await byUri(actor, workspaceId, fullUri);
      const have = await subscriptionStore.list(sessionId);
      if (have.includes(fullUri)) return {};
      if (have.length >= MAX_SUBSCRIPTIONS) throw new WorkspaceCallError(-32602, `A session holds at most ${MAX_SUBSCRIPTIONS} resource subscriptions; unsubscribe from some first.`);
      const holder = holders.get(sessionId);
      if (!holder) {
        // No stream here: the member is asked by the process holding it. Checked here that it offers subscriptions at all.
        await callMember(actor, member, "resources/subscribe", { uri }, async (calls) => {
          offersSubscriptions(member, calls);
          return {};
        });
        await subscriptionStore.add(sessionId, fullUri, new Date().toISOString());
        return {};
      }
      await subscriptionStore.add(sessionId, fullUri, new Date().toISOString());
      holder.refused.delete(fullUri);
      const failed = (await sync(sessionId, holder)).get(fullUri);
      if (failed !== undefined) {
        await subscriptionStore.remove(sessionId, fullUri);
        throw failed;
      }
      return {};
    },

    /** resources/unsubscribe of an agent session: no longer the session's, and released upstream by the process holding it (here at once). */
    async unsubscribe(actor: Actor, workspaceId: string, sessionId: string, fullUri: string) {
      if (!subscriptionStore || !actor.workspaces.includes(workspaceId)) return {};
      await subscriptionStore.remove(sessionId, fullUri.slice(0, MAX_SUBSCRIBED_URI + 1));
      const holder = holders.get(sessionId);
      if (holder) await sync(sessionId, holder);
      return {};
    },

    /** completion/complete for a namespaced prompt or resource template. */
    async complete(actor: Actor, workspaceId: string, params: Json, options: CallOptions = {}) {
      const ref = (params.ref ?? {}) as Json;
      let member: Member;
      let upstreamRef: Json;
      if (ref.type === "ref/prompt" && typeof ref.name === "string") {
        const found = await byName(actor, workspaceId, ref.name, "prompt");
        member = found.member;
        upstreamRef = { ...ref, name: found.name };
      } else if (ref.type === "ref/resource" && typeof ref.uri === "string") {
        const sole = await bareMember(actor, workspaceId);
        const split = sole ? { namespace: sole.namespace, uri: ref.uri } : splitNamespacedUri(ref.uri);
        const found = sole ?? (split ? await memberNamed(actor, workspaceId, split.namespace) : undefined);
        if (!split || !found) throw unknown("resource template", ref.uri, "URIs here are mcpws://<server namespace>/<the server's URI template, its literal text percent-encoded>");
        member = found;
        upstreamRef = { ...ref, uri: split.uri };
      } else {
        throw new WorkspaceCallError(-32602, "completion/complete needs params.ref: a ref/prompt with a name or a ref/resource with a uri.");
      }
      return callMember(actor, member, "completion/complete", { ...params, ref: upstreamRef }, (calls, p, o) => calls.complete(p, o), options);
    },
  };
}

export type WorkspaceGateway = ReturnType<typeof createWorkspaceGateway>;
