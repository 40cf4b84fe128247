// Upstream MCP sessions kept per process (SDK v2 clients, 2026-07-28 or the 2025 handshake):
// one per record, record version and credential, shared by every agent request that needs
// that server, closed (DELETE upstream) when idle, when the record changes, when the pool is
// full, and at shutdown. A session the upstream forgot (404) is reopened once, transparently.
// A 2026-07-28 upstream has no session: the kept client is its cached discovery result, and
// its change notifications come on one subscriptions/listen stream per kept client.
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import { Client, isJSONRPCNotification, isJSONRPCRequest, isJSONRPCResponse, ProtocolError, SdkError, SdkErrorCode, SdkHttpError, StreamableHTTPClientTransport, type McpSubscription, type SubscriptionFilter } from "@modelcontextprotocol/client";
import { directToolCall, type DirectSession, type OutputValidator } from "./direct-call.js";
import type { GuardedFetch, LiteFetch } from "./guarded-fetch.js";
import { abortSignalOf, LiteController, type CallSignal } from "./lite-controller.js";

/** Which upstream session a request may use. */
export interface PoolTarget {
  recordId: string;
  /** The record as its users last edited it (its updatedAt): an edit means a new session. */
  recordVersion: string;
  url: string;
  /** The record's headers and credential; part of the key, so a refreshed token gets its own session. */
  headers: Record<string, string>;
  /** Whose connection this is when credentials are per user; absent or null: the record's own. */
  principal?: string | null;
}

// The credential hashes of targets seen lately, so that every call on a kept session does not hash again.
const credentialHashes = new Map<string, string>();
const CREDENTIAL_HASHES_KEPT = 1000;

/**
 * The pool's keys: `key` names one session exactly; `group` is what it replaces (at most one
 * live session per group, so a record change or a refreshed token retires the older one).
 * The credential enters only as a hash.
 */
export function upstreamKey(t: PoolTarget): { group: string; key: string } {
  const principal = t.principal ?? null;
  const material = JSON.stringify([t.url, Object.entries(t.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
  let credential = credentialHashes.get(material);
  if (credential === undefined) {
    credential = createHash("sha256").update(material).digest("base64url");
    if (credentialHashes.size >= CREDENTIAL_HASHES_KEPT) credentialHashes.delete(credentialHashes.keys().next().value as string);
    credentialHashes.set(material, credential);
  }
  return { group: JSON.stringify([t.recordId, principal]), key: JSON.stringify([t.recordId, principal, t.recordVersion, credential]) };
}

export interface CallOptions {
  /** The agent's own cancellation (its notifications/cancelled, or it went away). */
  signal?: CallSignal;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** A log message (notifications/message) the upstream sent while answering this call. */
  onlog?: (params: Json) => void;
  /**
   * A request the upstream made of the client while answering this call (sampling/createMessage,
   * elicitation/create, roots/list), passed on without waiting: its answer goes upstream later
   * through `answer` with `reply`, from whichever process receives it. A throw (the request
   * cannot be passed on) is answered upstream at once, its `code` the JSON-RPC error's.
   */
  onrequest?: (method: string, params: Json, reply: UpstreamReply) => Promise<void>;
  /**
   * A request the client fulfils itself: the input_required result of a 2026-07-28 upstream,
   * which the SDK client answers by asking (here) and then retrying the call. Its answer is
   * awaited in this process.
   */
  onlocalrequest?: (method: string, params: Json, signal: AbortSignal) => Promise<Json>;
  /** An input_required result is handed back as it is (to an agent that retries itself), not fulfilled. */
  allowInputRequired?: boolean;
}

/** Where the answer to an upstream's request goes: its session, the protocol version spoken there, and the request's own id. */
export interface UpstreamReply {
  sessionId: string | null;
  protocolVersion: string | null;
  requestId: string | number;
}

/** An answer to an upstream's request, as the agent gave it. */
export interface ReplyMessage {
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/**
 * The agent call an upstream message belongs to. An upstream session is shared, so the only
 * sound link between a message and an agent is the upstream request whose response stream
 * carried it: the client reads that stream in the async context of the call that sent it (a
 * direct call reads its own, and enters the call's context only to hand such a message on).
 */
const current = new AsyncLocalStorage<{ options: CallOptions; open: boolean }>();

/** Server-to-client requests the kept sessions accept, relayed to the agent of the call they belong to. */
export const RELAYED_CLIENT_REQUESTS = ["sampling/createMessage", "elicitation/create", "roots/list"] as const;

type Json = Record<string, unknown>;

/** What the gateway asks of an upstream server, as plain JSON. Lists are whole (every page) and cached. */
export interface UpstreamCalls {
  /** The server's capabilities, as it declared them. */
  capabilities(): Json;
  listTools(): Promise<{ tools: Json[] }>;
  callTool(params: Json, options?: CallOptions): Promise<Json>;
  listPrompts(): Promise<{ prompts: Json[] }>;
  getPrompt(params: Json, options?: CallOptions): Promise<Json>;
  listResources(): Promise<{ resources: Json[] }>;
  listResourceTemplates(): Promise<{ resourceTemplates: Json[] }>;
  readResource(params: Json, options?: CallOptions): Promise<Json>;
  complete(params: Json, options?: CallOptions): Promise<Json>;
  ping(options?: CallOptions): Promise<Json>;
  /**
   * Tells `listener` of the resource's `notifications/resources/updated` on this record's kept
   * session; the upstream is subscribed for the first listener of a URI only (the session is
   * shared): resources/subscribe, or on a 2026-07-28 upstream its listen stream's filter.
   */
  subscribe(params: { uri: string }, listener: () => void): Promise<Json>;
  /** Stops telling `listener`; the upstream is unsubscribed once a URI has no listener left. */
  unsubscribe(params: { uri: string }, listener: () => void): Promise<Json>;
}

export interface UpstreamPoolOptions {
  fetch: GuardedFetch;
  /**
   * The same fetch without the outbound deadline, for a 2026-07-28 upstream's subscriptions/listen
   * request: a stream open for as long as the client is kept, not a request (its acknowledgement
   * is bounded by connectTimeoutMs). Without it, listen streams go on `fetch` and end at its deadline.
   */
  listenFetch?: GuardedFetch;
  /**
   * The per-server relay's lite fetch (the same guarded agent): when given, a 2025-era session's
   * tools/call is sent on it directly (./direct-call.ts) instead of through the SDK client.
   */
  relayFetch?: LiteFetch;
  /** A session unused this long is closed (MCP_API_UPSTREAM_IDLE_MS). */
  idleMs: number;
  /** At most this many sessions are kept (MCP_API_UPSTREAM_POOL_MAX). */
  max: number;
  /** How long a list result without the server's own ttlMs is served from the cache (MCP_API_LIST_TTL_MS). */
  listTtlMs: number;
  /** Bound on opening a session (MCP_API_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs: number;
  /** How often a kept client's listen stream is checked for life (MCP_API_LISTEN_CHECK_MS; default 30 s): see `checkListen`. */
  listenCheckMs?: number;
  /** Told of each session opened (the opens metric). */
  onOpen?: () => void;
}

class UpstreamDeadline extends Error {
  override readonly name = "TimeoutError";
}

/** `work`, or the deadline's reason if it fires first. */
function raced<T>(work: Promise<T>, deadline: LiteController): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const expire = () => reject(deadline.reason);
    deadline.addEventListener("abort", expire);
    work.then(
      (value) => {
        deadline.removeEventListener("abort", expire);
        resolve(value);
      },
      (err: unknown) => {
        deadline.removeEventListener("abort", expire);
        reject(err);
      },
    );
  });
}

interface Entry {
  key: string;
  group: string;
  client: Client;
  transport: StreamableHTTPClientTransport;
  ready: Promise<void>;
  inUse: number;
  /** When its last use ended (performance.now()). */
  lastUsed: number;
  /** The idle check's timer, armed once the entry is unused (not re-made for every use). */
  idle: NodeJS.Timeout | null;
  /** Replaced or evicted: closed as soon as nobody uses it. */
  retired: boolean;
  /** Not in the map (the pool was full of busy sessions): closed after its one use. */
  transient: boolean;
  closed: boolean;
  connected: boolean;
  /** Set once connected when tools/call may go past the SDK client (a 2025-era session, and relayFetch given). */
  direct: DirectSession | null;
  /** A 2026-07-28 upstream's listen stream (none for a 2025-era session, whose notifications come unasked). */
  listening: Listening | null;
}

/**
 * One subscriptions/listen stream of a kept 2026-07-28 client: every list_changed the server
 * offers (so that each process's cached lists are dropped, as a 2025-era session's GET stream
 * does), and the resources agents of this process subscribed to. A new filter is a new stream,
 * opened before the old one is closed; a stream the upstream or the network ends is opened
 * again (LISTEN_LIVED_MS, RELISTEN_MS), and what the server sent meanwhile is unknown: once
 * the new stream is acknowledged, the client is told every list_changed it listens for and
 * resources/updated for each URI subscribed before and after, as if the server had sent them (`lapsed`).
 */
interface Listening {
  sub: McpSubscription | null;
  /** The filter `sub` was opened with (JSON), or that the upstream honored nothing of. */
  filter: string | null;
  honored: SubscriptionFilter;
  /** Changes run one after another. */
  queue: Promise<unknown>;
  retry: NodeJS.Timeout | null;
  backoffMs: number;
  /** When `sub` was acknowledged (0: never yet). */
  openedAt: number;
  /** Nothing listened for a while the entry was in use: a stream ended, could not be opened, or lists were served before the first one was acknowledged. */
  lapsed: boolean;
  /** What the newest listen response has delivered (keep-alives included), for the liveness check. */
  heard: Heard | null;
  /** The liveness check's timer, and whether a check is running. */
  check: NodeJS.Timeout | null;
  checking: boolean;
}

/** Bytes on one listen response: when the last arrived, and the longest wait seen for an SSE comment (a keep-alive) after the previous bytes. */
interface Heard {
  at: number;
  beatGapMs: number;
  /** The previous chunk ended a line (so a ':' opening this one starts a comment). */
  lineEnded: boolean;
}

/**
 * A listen stream that ends after this long (a member restarting, the network) is opened
 * again at once; one that could not be opened, or ended sooner, after a wait that starts at the
 * first and doubles up to the second, so a member that keeps failing is not asked again and again.
 */
const LISTEN_LIVED_MS = 1000;
const RELISTEN_MS = [100, 30_000] as const;
/**
 * A connection can die with no packet (the upstream's host gone, a NAT or proxy dropping it):
 * its listen stream would stay "open" and hear nothing. Silent streams are checked this often.
 */
const LISTEN_CHECK_MS = 30_000;
/** A stream that carried keep-alives is dead once silent for this many times its longest wait for one. */
const BEATS_MISSED = 3;

/** Counts the bytes of a listen response as they are read (the SDK reads the body; nothing is changed). */
function hearing(res: Response, heard: Heard): Response {
  if (!res.body) return res;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, out) {
      const now = Date.now();
      let beat = false;
      for (let i = 0; i < chunk.length && !beat; i++) beat = chunk[i] === 0x3a && (i === 0 ? heard.lineEnded : chunk[i - 1] === 0x0a);
      if (beat) heard.beatGapMs = Math.max(heard.beatGapMs, now - heard.at);
      if (chunk.length) heard.lineEnded = chunk[chunk.length - 1] === 0x0a;
      heard.at = now;
      out.enqueue(chunk);
    },
  });
  return new Response(res.body.pipeThrough(tap), { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** A request that got no answer at all (timed out, or the connection failed); an error answer, HTTP or JSON-RPC, is an answer. */
const UNANSWERED: readonly string[] = [SdkErrorCode.RequestTimeout, SdkErrorCode.ConnectionClosed, SdkErrorCode.SendFailed];
function unanswered(err: unknown): boolean {
  if (SdkHttpError.isInstance(err) || ProtocolError.isInstance(err)) return false;
  if (SdkError.isInstance(err)) return UNANSWERED.includes(err.code);
  return true; // the fetch itself failed
}

const isModern = (client: Client) => client.getNegotiatedProtocolVersion?.()?.startsWith("2026") === true;

const isSessionGone = (err: unknown, entry: Entry) => entry.transport.sessionId !== undefined && SdkHttpError.isInstance(err) && err.status === 404;

/** The list_changed notifications relayed to agents that watch a member. */
export const LIST_CHANGED = ["notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"] as const;
export type ListChanged = (typeof LIST_CHANGED)[number];

/** What a direct call needs of the SDK client beyond its public API: its codec's result check and its tools/list-derived output validators. */
interface ClientInternals {
  _negotiatedWireCodec(): {
    decodeResult(method: string, raw: unknown): { kind: string; result?: unknown; error?: unknown };
    validateResult(method: string, raw: unknown): { ok: true; value: Json } | { ok: false; reason: string; message?: string };
  };
  _cache: { outputValidator(name: string, compile: (tool: unknown) => OutputValidator | undefined): Promise<OutputValidator | undefined> };
  _compileOutputValidator(tool: unknown): OutputValidator | undefined;
  _reportStoreError(e: unknown): void;
}

const hasInternals = (client: Client): boolean => {
  const c = client as unknown as Partial<ClientInternals>;
  return typeof c._negotiatedWireCodec === "function" && typeof c._cache?.outputValidator === "function" && typeof c._compileOutputValidator === "function";
};

/**
 * The session as a direct call sees it. The result check and the output validators are the SDK
 * client's own (the same answers are refused as through client.callTool); an SDK without them
 * (a future release) gets no direct calls.
 */
function directSessionOf(client: Client, transport: StreamableHTTPClientTransport, target: PoolTarget): DirectSession | null {
  const version = transport.protocolVersion ?? client.getNegotiatedProtocolVersion?.();
  if (!version || version.startsWith("2026") || !hasInternals(client)) return null;
  const c = client as unknown as ClientInternals;
  const handOn = transport as unknown as { onmessage?: (message: unknown) => void; onerror?: (err: Error) => void };
  return {
    url: target.url,
    headers: target.headers,
    sessionId: transport.sessionId ?? null,
    protocolVersion: version,
    // As the transport would: a JSON-RPC message goes to the client (and the relayed requests' hook), anything else is an error it reports.
    dispatch: (message) => {
      if (isJSONRPCRequest(message) || isJSONRPCNotification(message) || isJSONRPCResponse(message)) handOn.onmessage?.(message);
      else handOn.onerror?.(new Error(`not a JSON-RPC message: ${JSON.stringify(message).slice(0, 200)}`));
    },
    decode: (raw) => {
      const codec = c._negotiatedWireCodec();
      const decoded = codec.decodeResult("tools/call", raw);
      if (decoded.kind === "invalid") throw decoded.error;
      if (decoded.kind !== "complete") throw new SdkError(SdkErrorCode.InvalidResult, "Invalid result for tools/call: not a complete result");
      const checked = codec.validateResult("tools/call", decoded.result);
      if (!checked.ok) throw new SdkError(SdkErrorCode.InvalidResult, `Invalid result for tools/call: ${checked.message ?? checked.reason}`);
      return checked.value;
    },
    outputValidator: (name) => c._cache.outputValidator(name, (tool) => c._compileOutputValidator(tool)).catch((e: unknown) => void c._reportStoreError(e)),
  };
}

/** A listen stream's request (SDK v2 sends its method as the Mcp-Method header). */
const isListenRequest = (init?: RequestInit) => init?.headers instanceof Headers && init.headers.get("mcp-method") === "subscriptions/listen";

/** What a listen filter's list kinds ask to hear. */
const LISTENED_LISTS = [
  ["toolsListChanged", "notifications/tools/list_changed"],
  ["promptsListChanged", "notifications/prompts/list_changed"],
  ["resourcesListChanged", "notifications/resources/list_changed"],
] as const;

export function createUpstreamPool({ fetch, listenFetch, relayFetch, idleMs, max, listTtlMs, connectTimeoutMs, listenCheckMs = LISTEN_CHECK_MS, onOpen }: UpstreamPoolOptions) {
  const entries = new Map<string, Entry>();
  // Who watches a record's lists (agents' GET streams), by the pool group: whichever session of
  // the group is current tells them, and sessions of a watched group are not closed as idle.
  const watchers = new Map<string, Set<(method: ListChanged) => void>>();
  // Agents' resource subscriptions, by pool group and the server's URI; a subscribed group's sessions are not closed as idle either.
  const subscribed = new Map<string, Map<string, Set<() => void>>>();
  let stopping = false;

  async function shut(entry: Entry, terminate: boolean) {
    if (entry.closed) return;
    entry.closed = true;
    if (entry.idle) clearTimeout(entry.idle);
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    const bounded = (work: Promise<unknown>) => Promise.race([work.catch(() => {}), new Promise((r) => setTimeout(r, connectTimeoutMs).unref())]);
    if (entry.listening) {
      if (entry.listening.retry) clearTimeout(entry.listening.retry);
      if (entry.listening.check) clearInterval(entry.listening.check);
      // Its close tells the upstream (notifications/cancelled): an upstream that does not answer holds up no shutdown.
      if (entry.listening.sub) await bounded(entry.listening.sub.close());
    }
    if (terminate && entry.transport.sessionId) await bounded(entry.transport.terminateSession());
    await entry.client.close().catch(() => {});
  }

  function open(target: PoolTarget, key: string, group: string, transient: boolean): Entry {
    onOpen?.();
    // A listen stream is not bounded like a request (only its acknowledgement is, in relisten);
    // what it delivers is heard by the liveness check.
    const listened = async (input: Parameters<GuardedFetch>[0], init: Parameters<GuardedFetch>[1]) => {
      const res = await (listenFetch ?? fetch)(input, init);
      const l = entry.listening;
      if (!l || !res.ok) return res;
      l.heard = { at: Date.now(), beatGapMs: 0, lineEnded: true };
      return hearing(res, l.heard);
    };
    const sdkFetch: GuardedFetch = (input, init) => (isListenRequest(init) ? listened(input, init) : fetch(input, init));
    const transport = new StreamableHTTPClientTransport(new URL(target.url), { requestInit: { headers: target.headers }, fetch: sdkFetch });
    // The gateway takes what an agent may answer (sampling, elicitation, roots) and relays each to
    // the agent whose call the upstream is answering; outside a call there is nobody to ask.
    const client = new Client(
      { name: "mcp-servers-api-gateway", version: "1.0.0" },
      { capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: {} }, versionNegotiation: { mode: "auto" }, defaultCacheTtlMs: listTtlMs },
    );
    client.setNotificationHandler("notifications/message", (n) => {
      const call = current.getStore();
      if (call?.open) call.options.onlog?.(n.params as Json);
    });
    for (const method of RELAYED_CLIENT_REQUESTS) {
      client.setRequestHandler(method, (async (request: { params?: Json }, ctx: { mcpReq: { signal: AbortSignal } }) => {
        const call = current.getStore();
        if (!call?.open || !call.options.onlocalrequest) throw new ProtocolError(-32601, `${method} is relayed only while an agent's request is being answered, to that agent`);
        return call.options.onlocalrequest(method, request.params ?? {}, ctx.mcpReq.signal);
      }) as never);
    }
    client.setNotificationHandler("notifications/resources/updated", (n) => {
      for (const tell of subscribed.get(group)?.get(String((n.params as Json | undefined)?.uri)) ?? []) tell();
    });
    for (const method of LIST_CHANGED) {
      client.setNotificationHandler(method, () => {
        for (const tell of watchers.get(group) ?? []) tell(method);
      });
    }
    const entry: Entry = { key, group, client, transport, ready: Promise.resolve(), inUse: 0, lastUsed: performance.now(), idle: null, retired: false, transient, closed: false, connected: false, direct: null, listening: null };
    // Opened outside any agent's call, so that what the session's own streams carry later is nobody's.
    entry.ready = current.exit(async () => {
      await client.connect(transport, { timeout: connectTimeoutMs });
      takeRelayedRequests(client, transport);
      // Every level is asked for and each agent's own level applied by the gateway (an upstream session is shared).
      if (client.getServerCapabilities()?.logging && !client.getNegotiatedProtocolVersion?.()?.startsWith("2026")) {
        await client.setLoggingLevel("debug", { timeout: connectTimeoutMs }).catch(() => {});
      }
      if (isModern(client)) {
        // A kept client listens (a transient one is closed after its one use); one that replaces
        // another of its group listens for the URIs agents of this process hold before it is used.
        if (!transient) {
          entry.listening = { sub: null, filter: null, honored: {}, queue: Promise.resolve(), retry: null, backoffMs: RELISTEN_MS[0], openedAt: 0, lapsed: false, heard: null, check: null, checking: false };
          entry.listening.check = setInterval(() => void checkListen(entry), listenCheckMs);
          entry.listening.check.unref();
          const listened = relisten(entry).catch(() => {});
          if (subscribed.get(group)?.size) await listened;
        }
      } else {
        // A session that replaces another of its group (a record edit, a refreshed credential, one
        // the upstream forgot) is subscribed again to every URI agents of this process hold.
        const held = [...(subscribed.get(group)?.keys() ?? [])];
        await Promise.all(held.map((uri) => client.subscribeResource({ uri }, { timeout: connectTimeoutMs }).catch(() => {})));
      }
      if (relayFetch) entry.direct = directSessionOf(client, transport, target);
      entry.connected = true;
    });
    entry.ready.catch(() => void shut(entry, false));
    return entry;
  }

  /** What a 2026-07-28 client listens for now: what the server offers of list changes and of the URIs agents here subscribed to. */
  function wantedFilter(entry: Entry): SubscriptionFilter | null {
    const caps = (entry.client.getServerCapabilities() ?? {}) as { tools?: Json; prompts?: Json; resources?: Json };
    const filter: SubscriptionFilter = {};
    if (caps.tools?.listChanged) filter.toolsListChanged = true;
    if (caps.prompts?.listChanged) filter.promptsListChanged = true;
    if (caps.resources?.listChanged) filter.resourcesListChanged = true;
    const uris = [...(subscribed.get(entry.group)?.keys() ?? [])].sort();
    if (uris.length && caps.resources?.subscribe) filter.resourceSubscriptions = uris;
    return Object.keys(filter).length ? filter : null;
  }

  /**
   * Makes the entry's listen stream the one `wantedFilter` asks for: resolves once the upstream
   * acknowledged it (its honored filter in `entry.listening.honored`), or with the stream
   * already open for it. A failure is thrown and tried again after the backoff.
   */
  function relisten(entry: Entry): Promise<void> {
    const l = entry.listening;
    if (!l) return Promise.resolve();
    const run = async () => {
      if (entry.closed) return;
      const want = wantedFilter(entry);
      const filter = want && JSON.stringify(want);
      if (filter === l.filter && (l.sub || filter === null || !Object.keys(l.honored).length)) return;
      const old = l.sub;
      if (!want) {
        Object.assign(l, { sub: null, filter, honored: {} });
        void old?.close().catch(() => {});
        return;
      }
      let sub: McpSubscription;
      try {
        // Outside any agent's call: what the stream carries later is nobody's. Its ack is bounded; the stream is not.
        sub = await current.exit(() => entry.client.listen(want, { timeout: connectTimeoutMs }));
      } catch (err) {
        if (!l.sub) l.lapsed = true;
        again(entry);
        throw err;
      }
      if (entry.closed) return void sub.close().catch(() => {});
      const { lapsed, honored: before } = l;
      Object.assign(l, { sub, filter, honored: sub.honoredFilter, openedAt: Date.now(), lapsed: false });
      void old?.close().catch(() => {});
      if (lapsed) mayHaveChanged(entry, sub.honoredFilter, before);
      void sub.closed.then((how) => {
        if (how === "local" || l.sub !== sub || entry.closed) return;
        l.sub = null;
        // Honoring nothing, the upstream closes at once: nothing to open again until the filter changes.
        if (!Object.keys(sub.honoredFilter).length) return;
        l.lapsed = true;
        const lived = Date.now() - l.openedAt >= LISTEN_LIVED_MS;
        if (lived) l.backoffMs = RELISTEN_MS[0];
        again(entry, lived);
      });
    };
    const done = l.queue.then(run, run);
    l.queue = done.catch(() => {});
    return done;
  }

  /**
   * After a lapse: the client is told, as if the server had sent them, each list_changed the new
   * stream listens for and resources/updated for each URI both streams hold (one subscribed
   * since was not yet subscribed during the lapse), so its cached lists and reads are dropped
   * and the agents that watch or subscribed here are told something may have changed.
   */
  function mayHaveChanged(entry: Entry, honored: SubscriptionFilter, before: SubscriptionFilter) {
    const deliver = entry.transport.onmessage;
    if (!deliver) return;
    const held = new Set(before.resourceSubscriptions ?? []);
    current.exit(() => {
      for (const [kind, method] of LISTENED_LISTS) if (honored[kind]) deliver({ jsonrpc: "2.0", method });
      for (const uri of honored.resourceSubscriptions ?? []) if (held.has(uri)) deliver({ jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri } });
    });
  }

  /**
   * The liveness check of an open listen stream: one that delivered nothing (not even a
   * keep-alive) for a whole interval has its upstream asked server/discover. The stream is dead
   * when that gets no answer (an error answer is one: the server is there), or when the stream
   * had carried keep-alives and missed BEATS_MISSED of them though the server answers (that one
   * connection was dropped). A dead stream is closed and listened again like one that dropped
   * (a lapse: agents are told anything may have changed once the next is acknowledged). A server
   * that sends no keep-alives and answers is trusted.
   */
  async function checkListen(entry: Entry) {
    const l = entry.listening;
    const sub = l?.sub;
    if (!l || !sub || l.checking || entry.closed) return;
    const silentMs = Date.now() - Math.max(l.heard?.at ?? 0, l.openedAt);
    if (silentMs < listenCheckMs) return;
    l.checking = true;
    try {
      let dead = false;
      try {
        // 2026-07-28 has no ping: server/discover is its cheapest request (not through discover(), which would replace the client's discovery result).
        await current.exit(() => entry.client.request({ method: "server/discover" } as never, { timeout: connectTimeoutMs }));
      } catch (err) {
        dead = unanswered(err);
      }
      const beatGapMs = l.heard?.beatGapMs ?? 0;
      if (beatGapMs > 0 && Date.now() - (l.heard?.at ?? 0) > BEATS_MISSED * beatGapMs) dead = true;
      if (!dead || l.sub !== sub || entry.closed) return;
      Object.assign(l, { sub: null, heard: null, lapsed: true, backoffMs: RELISTEN_MS[0] });
      void sub.close().catch(() => {});
      again(entry, true);
    } finally {
      l.checking = false;
    }
  }

  /** Opens the entry's listen stream again, after the backoff unless `now` (once, however many ask). */
  function again(entry: Entry, now = false) {
    const l = entry.listening;
    if (!l || l.retry || entry.closed) return;
    const wait = now ? 0 : l.backoffMs;
    if (!now) l.backoffMs = Math.min(RELISTEN_MS[1], wait * 2);
    l.retry = setTimeout(() => {
      l.retry = null;
      relisten(entry).catch(() => {});
    }, wait);
    l.retry.unref();
  }

  /** Listen streams of a group's 2026-07-28 clients made to match what agents here subscribe to now. */
  function relistenGroup(group: string): Promise<unknown> {
    return Promise.all([...entries.values()].filter((e) => e.group === group && e.listening).map((e) => relisten(e)));
  }

  /**
   * A relayed request (sampling, elicitation, roots) made during an agent's call is taken off the
   * session before the SDK client sees it: the agent's answer may reach another process, which
   * sends it upstream itself (`answer`), so this client must not answer it too. Outside a call the
   * SDK answers -32601 (the handlers above).
   */
  function takeRelayedRequests(client: Client, transport: StreamableHTTPClientTransport) {
    const taking = transport as unknown as { onmessage: (message: unknown, extra?: unknown) => void };
    const dispatch = taking.onmessage;
    taking.onmessage = (message, extra) => {
      const m = message as { id?: string | number; method?: string; params?: Json };
      const call = current.getStore();
      const onrequest = call?.open ? call.options.onrequest : undefined;
      if (!onrequest || m.id === undefined || !(RELAYED_CLIENT_REQUESTS as readonly (string | undefined)[]).includes(m.method)) return dispatch(message, extra);
      const reply: UpstreamReply = { sessionId: transport.sessionId ?? null, protocolVersion: transport.protocolVersion ?? client.getNegotiatedProtocolVersion?.() ?? null, requestId: m.id };
      onrequest(m.method!, m.params ?? {}, reply).catch((err: unknown) => {
        const code = (err as { code?: unknown })?.code;
        const error = { code: typeof code === "number" ? code : -32603, message: err instanceof Error ? err.message : String(err) };
        void transport.send({ jsonrpc: "2.0", id: m.id!, error }).catch(() => {});
      });
    };
  }

  function acquire(target: PoolTarget): Entry {
    const { key, group } = upstreamKey(target);
    const found = entries.get(key);
    if (found && !found.closed && !found.retired) return found;
    for (const other of entries.values()) {
      if (other.group === group) retire(other);
    }
    if (entries.size >= max) {
      const idle = [...entries.values()].filter((e) => e.inUse === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!idle) return open(target, key, group, true);
      void shut(idle, true);
    }
    const entry = open(target, key, group, false);
    entries.set(key, entry);
    return entry;
  }

  function retire(entry: Entry) {
    entry.retired = true;
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    if (entry.inUse === 0) void shut(entry, true);
  }

  function release(entry: Entry) {
    entry.inUse--;
    entry.lastUsed = performance.now();
    if (entry.inUse > 0 || entry.closed) return;
    if (entry.retired || entry.transient || stopping) {
      void shut(entry, true);
      return;
    }
    idleCheck(entry, idleMs);
  }

  /**
   * Closes the entry once it has been unused for idleMs: one timer while it is idle, which,
   * finding it used meanwhile, waits out what is left of idleMs since that use (a busy session
   * makes no timer per call). Kept while in use or while an agent watches its lists or resources;
   * its next release arms the check again.
   */
  function idleCheck(entry: Entry, ms: number) {
    if (entry.idle || entry.closed) return;
    entry.idle = setTimeout(() => {
      entry.idle = null;
      if (entry.inUse > 0 || watchers.get(entry.group)?.size || subscribed.get(entry.group)?.size) return;
      const left = entry.lastUsed + idleMs - performance.now();
      if (left > 0) idleCheck(entry, left);
      else void shut(entry, true);
    }, ms);
    entry.idle.unref();
  }

  /** Drops a listener; true when it was the URI's last (the upstream is to be unsubscribed). */
  function forget(group: string, uri: string, listener: () => void): boolean {
    const uris = subscribed.get(group);
    const listeners = uris?.get(uri);
    if (!listeners?.delete(listener) || listeners.size) return false;
    uris!.delete(uri);
    if (!uris!.size) subscribed.delete(group);
    return true;
  }

  /**
   * What one use may ask of an entry's session, within the use's deadline. A class: one object
   * per use, where a literal of closures made about fifteen functions per call.
   */
  class Calls implements UpstreamCalls {
    constructor(
      private readonly entry: Entry,
      /** The use's deadline: listened to as it is by a direct call; its AbortSignal is made only for the SDK client's requests. */
      private readonly deadline: LiteController,
      private readonly timeoutMs: number,
      /** The signals of the agents' own calls: one that cancelled or went away says nothing of the session. */
      readonly callers: CallSignal[],
    ) {}

    /** A call's messages reach its agent only while the call runs. */
    private async scoped<R>(o: CallOptions | undefined, run: () => Promise<R>): Promise<R> {
      if (!o?.onlog && !o?.onrequest && !o?.onlocalrequest) return run();
      const call = { options: o, open: true };
      try {
        return await current.run(call, run);
      } finally {
        call.open = false;
      }
    }

    private opts(o?: CallOptions) {
      if (o?.signal) this.callers.push(o.signal);
      return {
        signal: o?.signal ? AbortSignal.any([abortSignalOf(o.signal), this.deadline.signal]) : this.deadline.signal,
        timeout: this.timeoutMs,
        ...(o?.onprogress ? { onprogress: o.onprogress, resetTimeoutOnProgress: false } : {}),
        ...(o?.allowInputRequired ? { allowInputRequired: true } : {}),
      };
    }

    /**
     * A server without the capability has nothing to list (the SDK would warn and answer empty).
     * A list served before the first listen stream is acknowledged may miss a change: a lapse.
     */
    private listing(what: string): boolean {
      const { listening } = this.entry;
      if (listening && !listening.openedAt) listening.lapsed = true;
      return this.capabilities()[what] !== undefined;
    }

    capabilities(): Json {
      return (this.entry.client.getServerCapabilities() ?? {}) as Json;
    }

    async listTools() {
      return this.listing("tools") ? ((await this.entry.client.listTools(undefined, this.opts())) as never) : { tools: [] };
    }

    async callTool(params: Json, o?: CallOptions): Promise<Json> {
      const { direct, client } = this.entry;
      if (!direct || !relayFetch) return this.scoped(o, async () => (await client.callTool(params as never, this.opts(o))) as never);
      if (o?.signal) this.callers.push(o.signal);
      // A direct call reads its own stream: a message on it other than the answer is handed to the
      // SDK client in the call's context when it arrives, so a call that gets none runs no AsyncLocalStorage.
      const call = o?.onlog || o?.onrequest || o?.onlocalrequest ? { options: o, open: true } : null;
      const dispatch = call ? (message: Json) => current.run(call, () => direct.dispatch(message)) : undefined;
      try {
        return await directToolCall(relayFetch, direct, params, { deadline: this.deadline, signal: o?.signal, onprogress: o?.onprogress, dispatch });
      } finally {
        if (call) call.open = false;
      }
    }

    async listPrompts() {
      return this.listing("prompts") ? ((await this.entry.client.listPrompts(undefined, this.opts())) as never) : { prompts: [] };
    }

    getPrompt(params: Json, o?: CallOptions): Promise<Json> {
      return this.scoped(o, async () => (await this.entry.client.getPrompt(params as never, this.opts(o))) as never);
    }

    async listResources() {
      return this.listing("resources") ? ((await this.entry.client.listResources(undefined, this.opts())) as never) : { resources: [] };
    }

    async listResourceTemplates() {
      return this.listing("resources") ? ((await this.entry.client.listResourceTemplates(undefined, this.opts())) as never) : { resourceTemplates: [] };
    }

    readResource(params: Json, o?: CallOptions): Promise<Json> {
      return this.scoped(o, async () => (await this.entry.client.readResource(params as never, this.opts(o))) as never);
    }

    complete(params: Json, o?: CallOptions): Promise<Json> {
      return this.scoped(o, async () => (await this.entry.client.complete(params as never, this.opts(o))) as never);
    }

    async ping(o?: CallOptions): Promise<Json> {
      return (await this.entry.client.ping(this.opts(o))) as never;
    }

    async subscribe({ uri }: { uri: string }, listener: () => void): Promise<Json> {
      const { entry } = this;
      const { client, group } = entry;
      // A 2026-07-28 upstream has no resources/subscribe: the URIs go in its listen stream's filter.
      const modern = isModern(client);
      let uris = subscribed.get(group);
      if (!uris) subscribed.set(group, (uris = new Map()));
      const listeners = uris.get(uri) ?? new Set();
      const first = listeners.size === 0;
      listeners.add(listener);
      uris.set(uri, listeners);
      if (!first && !modern) return {};
      try {
        if (!modern) return (await client.subscribeResource({ uri }, this.opts())) as never;
        if (!entry.listening) throw new ProtocolError(-32603, "no kept upstream client to hold the subscription on (every pooled session is busy); try again");
        await relisten(entry);
        if (!entry.listening.honored.resourceSubscriptions?.includes(uri)) throw new ProtocolError(-32602, `the MCP server did not accept a subscription to ${uri.slice(0, 200)}`);
        return {};
      } catch (err) {
        if (forget(group, uri, listener) && modern) void relistenGroup(group).catch(() => {});
        throw err;
      }
    }

    async unsubscribe({ uri }: { uri: string }, listener: () => void): Promise<Json> {
      const { client, group } = this.entry;
      if (!forget(group, uri, listener)) return {};
      if (isModern(client)) return (await relistenGroup(group), {});
      return (await client.unsubscribeResource({ uri }, this.opts())) as never;
    }
  }

  return {
    /**
     * Runs `use` on the kept session for `target` (opening it if needed), all within `timeoutMs`.
     * A session the upstream no longer knows is reopened and `use` run again, once.
     */
    async use<T>(target: PoolTarget, timeoutMs: number, use: (calls: UpstreamCalls) => Promise<T>): Promise<T> {
      if (stopping) throw new Error("the server is shutting down");
      const deadline = new LiteController();
      const timer = setTimeout(() => deadline.abort(new UpstreamDeadline(`no answer within ${timeoutMs} ms`)), timeoutMs);
      try {
        for (let attempt = 0; ; attempt++) {
          const entry = acquire(target);
          entry.inUse++;
          const calls = new Calls(entry, deadline, timeoutMs, []);
          try {
            return await raced(entry.ready.then(() => use(calls)), deadline);
          } catch (err) {
            if (attempt === 0 && isSessionGone(err, entry)) {
              retire(entry);
              continue;
            }
            // The connection failed, or never opened in time: the next request starts afresh rather than on a broken session.
            // An agent that cancelled or went away leaves a session that works for everyone else.
            const cancelled = entry.connected && calls.callers.some((signal) => signal.aborted);
            if (!ProtocolError.isInstance(err) && !cancelled && (!deadline.aborted || !entry.connected)) retire(entry);
            throw err;
          } finally {
            release(entry);
          }
        }
      } finally {
        clearTimeout(timer);
      }
    },

    /**
     * Tells `onChange` of the record's list_changed notifications until the returned stop is
     * called; opens its session now (within `timeoutMs`) and keeps it open meanwhile. A
     * 2026-07-28 upstream's listen stream is open when this resolves, unless it could not be
     * opened (it is tried again after a backoff).
     */
    async watch(target: PoolTarget, timeoutMs: number, onChange: (method: ListChanged) => void): Promise<() => void> {
      const { group } = upstreamKey(target);
      let set = watchers.get(group);
      if (!set) watchers.set(group, (set = new Set()));
      const tell = (method: ListChanged) => onChange(method);
      set.add(tell);
      const stop = () => {
        const now = watchers.get(group);
        if (!now?.delete(tell) || now.size) return;
        watchers.delete(group);
        for (const e of entries.values()) if (e.group === group && e.inUse === 0 && !e.closed) { e.inUse++; release(e); } // idle from now on
      };
      try {
        await this.use(target, timeoutMs, async () => {});
      } catch (err) {
        stop();
        throw err;
      }
      const entry = entries.get(upstreamKey(target).key);
      if (entry) await relisten(entry).catch(() => {});
      return stop;
    },

    /**
     * Sends an agent's answer to a request an upstream made (`reply` from `onrequest`), on the
     * upstream session that asked: from any process, with the record's current credential.
     */
    async answer(target: PoolTarget, reply: UpstreamReply, message: ReplyMessage, timeoutMs: number): Promise<void> {
      const headers: Record<string, string> = { ...target.headers, "content-type": "application/json", accept: "application/json, text/event-stream" };
      if (reply.sessionId) headers["mcp-session-id"] = reply.sessionId;
      if (reply.protocolVersion) headers["mcp-protocol-version"] = reply.protocolVersion;
      const answer = message.error ? { error: message.error } : { result: message.result ?? {} };
      const res = await fetch(target.url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: reply.requestId, ...answer }), signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel().catch(() => {});
      if (!res.ok) throw new Error(`the MCP server refused the answer: HTTP ${res.status}`);
    },

    /** Sessions kept now. */
    size: () => entries.size,

    /** Closes every session (DELETE upstream); for shutdown. */
    async close() {
      stopping = true;
      await Promise.all([...entries.values()].map((e) => shut(e, true)));
    },
  };
}

export type UpstreamPool = ReturnType<typeof createUpstreamPool>;
