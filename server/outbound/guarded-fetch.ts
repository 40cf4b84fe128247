import { promises as dns, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import type { Agent, Dispatcher, RequestInit as UndiciRequestInit } from "undici";
import { classifyAddress, classifyMetadataOnly, parseHostLiteral, type AddressVerdict } from "./address-guard.js";

export type LookupFn = (hostname: string) => Promise<LookupAddress[]>;

export interface GuardedFetchOptions {
  /** When true, only cloud metadata addresses are refused (local development, tests against local peers). */
  allowPrivateNetwork: boolean;
  /**
   * Deadline for the whole exchange: connecting, redirects, headers and the body. When it
   * passes, the request is aborted and its socket closed, whatever the caller does.
   */
  timeoutMs: number;
  /** The most response-body bytes read before the exchange is aborted (default 10 MiB). */
  maxBodyBytes?: number;
  maxRedirects?: number;
  /** Resolves a host name to every address it has; defaults to the system resolver. */
  lookup?: LookupFn;
  /** Decides which addresses may be reached; defaults to classifyAddress. */
  classify?: (ip: string) => AddressVerdict;
}

export type GuardedFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Per-use limits: OAuth JSON is small, an MCP stream may run as long as its tool call. */
export interface OutboundLimits {
  timeoutMs: number;
  maxBodyBytes: number;
}

/** What the relay reads of an answer. */
export interface LiteResponse {
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  body: LiteBody | null;
}

/**
 * A response body, read once: chunk by chunk (for await), or whole (`bytes`). Stopping early
 * (cancel, or leaving the loop) ends the exchange and closes its socket rather than pooling it.
 */
export interface LiteBody extends AsyncIterable<Uint8Array> {
  /** The rest of the body in one buffer; null, the exchange cancelled, once more than `maxBytes` came. */
  bytes(maxBytes: number): Promise<Buffer | null>;
  cancel(reason?: unknown): Promise<void>;
}

/** What the lite fetch reads of a caller's signal: an AbortSignal, or a LiteCancel. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: EventListenerObject | ((event: Event) => void), options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: EventListenerObject | ((event: Event) => void)): void;
}

/**
 * A caller's end of an exchange without an AbortController: on Node 20 making one costs a few
 * µs (an EventTarget and its signal), once per relayed call. `abort` runs each listener once;
 * a second abort does nothing, as AbortController's. A listener that throws does not keep the
 * others from running: they all run, then the first error is thrown to the caller of `abort`.
 */
export class LiteCancel implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (EventListenerObject | ((event: Event) => void))[] = [];

  abort(reason: unknown = new DOMException("This operation was aborted", "AbortError")): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    let failure: { error: unknown } | null = null;
    for (const listener of listeners) {
      try {
        if (typeof listener === "function") listener(ABORT_EVENT);
        else listener.handleEvent(ABORT_EVENT);
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  addEventListener(_type: "abort", listener: EventListenerObject | ((event: Event) => void)): void {
    if (!this.aborted && !this.listeners.includes(listener)) this.listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: EventListenerObject | ((event: Event) => void)): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }
}

const ABORT_EVENT = { type: "abort" } as Event;

export interface LiteInit {
  method: string;
  headers: Record<string, string> | Headers;
  body?: string;
  signal?: CancelSignal;
  /**
   * The caller's deadline for the whole exchange, in place of the fetch's own when it is sooner
   * (never later: the fetch's bound holds): after `ms` the exchange is aborted with `reason()`.
   * One timer per exchange, where a caller with a deadline of its own kept a second.
   */
  deadline?: { ms: number; reason: () => unknown };
  /** Redirects are never followed here: "error" throws, "manual" answers the 3xx. */
  redirect?: "error" | "manual";
}

/**
 * The same guard, agent, deadline and body cap as the fetch, without the Fetch API's objects
 * (Request, Headers, web streams, a body tee) or undici.request's (an AsyncResource, a Readable
 * and its async iterator per exchange): one undici dispatch on the same pooled, guarded
 * connections, whose handler is also the body. For the relay, which reads status, headers and bytes.
 */
export type LiteFetch = (input: string | URL, init: LiteInit) => Promise<LiteResponse>;

/** A guarded fetch that can hand out variants with other limits over the same connection pool. */
export interface OutboundFetch extends GuardedFetch {
  withLimits(limits: Partial<OutboundLimits>): OutboundFetch;
  lite: LiteFetch;
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/** A response body went past its cap; the exchange was aborted. */
export class ResponseTooLargeError extends Error {
  override readonly name = "ResponseTooLargeError";
  constructor(readonly limit: number) {
    super(`the response was larger than ${formatBytes(limit)}`);
  }
}

function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

export class OutboundBlockedError extends Error {
  override readonly name = "OutboundBlockedError";
  constructor(
    readonly target: string,
    readonly reason: string,
    hint?: string,
  ) {
    super(`refused to connect to ${target}: ${reason}${hint ? `; ${hint}` : ""}`);
  }
}

/** A redirect this fetch will not follow: too many, unexpected, or not replayable. */
class RedirectError extends Error {
  override readonly name = "RedirectError";
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_BODY_HEADERS = ["content-encoding", "content-language", "content-length", "content-location", "content-type"];
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

const systemLookup: LookupFn = (hostname) => dns.lookup(hostname, { all: true });

/**
 * A fetch for user-supplied URLs that refuses to reach loopback, private, link-local and
 * other internal addresses, whether named directly, through DNS, or through a redirect.
 *
 * Bounds: `timeoutMs` is a deadline for the whole exchange, body included, and at most
 * `maxBodyBytes` of body are read. Either one aborts the request, which closes its socket;
 * so does the caller's signal, and cancelling the body. Responses are the platform's own
 * `Response` class, so libraries that check `instanceof Response` see what they expect.
 */
export function createGuardedFetch(options: GuardedFetchOptions): OutboundFetch {
  const { allowPrivateNetwork, maxRedirects = 5, lookup = systemLookup, classify = classifyAddress } = options;

  // A verdict depends on the address alone: kept, so a literal address costs one lookup here.
  const verdicts = new Map<string, AddressVerdict>();
  function check(target: string, ip: string): void {
    let verdict = verdicts.get(ip);
    if (!verdict) {
      verdict = allowPrivateNetwork ? classifyMetadataOnly(ip) : classify(ip);
      if (verdicts.size >= 1000) verdicts.clear();
      verdicts.set(ip, verdict);
    }
    if (!verdict.allowed) {
      const hint = allowPrivateNetwork ? "no setting lifts this guard" : "setting MCP_API_ALLOW_PRIVATE_NETWORK=true lifts this guard";
      throw new OutboundBlockedError(target === ip ? ip : `${target} (${ip})`, verdict.reason ?? "address not allowed", hint);
    }
  }

  function checkUrl(url: URL): void {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new OutboundBlockedError(`a ${url.protocol} URL`, "only http and https are allowed");
    }
    // net.connect skips the lookup below for IP literals, so those are checked here.
    const literal = parseHostLiteral(url.hostname);
    if (literal !== null) check(literal, literal);
  }

  // The relay sends every message of a record to the same URL: the parsed, checked URL is kept
  // (the check is a pure function of the URL; names still go through guardedLookup at connect).
  const checkedUrls = new Map<string, CheckedTarget>();
  function checkedTarget(input: string | URL): CheckedTarget {
    const text = String(input);
    const hit = checkedUrls.get(text);
    if (hit) return hit;
    const url = new URL(text);
    checkUrl(url);
    if (checkedUrls.size >= 1000) checkedUrls.clear();
    const target = { url, origin: url.origin, path: `${url.pathname}${url.search}` };
    checkedUrls.set(text, target);
    return target;
  }

  // The socket connects to exactly the addresses checked here; there is no second lookup
  // that a rebinding DNS server could answer differently.
  const guardedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    const family = lookupOptions.family === "IPv4" ? 4 : lookupOptions.family === "IPv6" ? 6 : lookupOptions.family;
    lookup(hostname)
      .then((resolved) => {
        for (const { address } of resolved) check(hostname, address);
        const usable = family === 4 || family === 6 ? resolved.filter((a) => a.family === family) : resolved;
        if (usable.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
        return usable;
      })
      .then(
        (usable) => (lookupOptions.all ? callback(null, usable) : callback(null, usable[0].address, usable[0].family)),
        (err: Error) => callback(err, ""),
      );
  };

  // undici (110 modules) loads at the first outbound request, not at start-up.
  let loaded: Promise<{ agent: Agent; fetch: typeof import("undici").fetch }> | null = null;
  let loadedAgent: Agent | null = null;
  const undici = () =>
    // Bundled (scripts/bundle-server.ts), the CommonJS package's exports arrive only as `default`.
    (loaded ??= import("undici").then((m) => (m.Agent ? m : (m as unknown as { default: typeof m }).default)).then(({ Agent, fetch }) => ({
      fetch,
      agent: (loadedAgent = new Agent({
        connect: { lookup: guardedLookup, timeout: options.timeoutMs },
        // The per-exchange deadline below covers headers and body; these only stop a stalled socket.
        headersTimeout: options.timeoutMs,
        bodyTimeout: 0,
        // Idle pooled sockets to user-named hosts are not kept long.
        keepAliveTimeout: 1000,
        keepAliveMaxTimeout: 4000,
      })),
    })));

  async function follow(request: RequestParts, signal: AbortSignal): Promise<Response> {
    let { url, method, body } = request;
    const headers = request.headers;
    const { agent, fetch: undiciFetch } = await undici();
    for (let hop = 0; ; hop++) {
      checkUrl(url);
      const init: UndiciRequestInit = {
        method,
        headers: [...headers],
        body: body as UndiciRequestInit["body"],
        signal,
        redirect: "manual",
        dispatcher: agent,
        duplex: "half",
      };
      let response: Response;
      try {
        response = (await undiciFetch(url, init)) as unknown as Response;
      } catch (err) {
        throw findBlocked(err) ?? err;
      }

      const location = response.headers.get("location");
      if (!REDIRECT_STATUSES.has(response.status) || location === null || request.redirect === "manual") {
        return response;
      }
      response.body?.cancel().catch(() => {});
      if (request.redirect === "error") throw new RedirectError(`unexpected redirect from ${redactUrl(url)}`);
      if (hop >= maxRedirects) throw new RedirectError(`too many redirects (more than ${maxRedirects}) from ${redactUrl(url)}`);

      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new RedirectError(`invalid Location header in redirect from ${redactUrl(url)}`);
      }
      // Method and body rewriting follow the Fetch standard's HTTP-redirect fetch.
      const status = response.status;
      if (((status === 301 || status === 302) && method === "POST") || (status === 303 && method !== "GET" && method !== "HEAD")) {
        method = "GET";
        body = null;
        for (const name of REQUEST_BODY_HEADERS) headers.delete(name);
      } else if (body instanceof ReadableStream) {
        throw new RedirectError(`cannot replay a streamed request body to follow a redirect from ${redactUrl(url)}`);
      }
      if (next.origin !== url.origin) {
        for (const name of CREDENTIAL_HEADERS) headers.delete(name);
      }
      url = next;
    }
  }

  function limited(limits: OutboundLimits): OutboundFetch {
    const guardedFetch: GuardedFetch = async (input, init = {}) => {
      const request = toRequestParts(input, init);
      const controller = new AbortController();
      const timer = setTimeout(
        () => controller.abort(new DOMException(`outbound request timed out after ${limits.timeoutMs} ms`, "TimeoutError")),
        limits.timeoutMs,
      );
      const signal = request.signal ? AbortSignal.any([controller.signal, request.signal]) : controller.signal;
      let response: Response;
      try {
        response = await follow(request, signal);
      } catch (err) {
        clearTimeout(timer);
        throw err;
      }
      return bounded(response, limits.maxBodyBytes, controller, () => clearTimeout(timer));
    };
    const lite: LiteFetch = async (input, init) => {
      const target = checkedTarget(input);
      const agent = loadedAgent ?? (await undici()).agent;
      const exchange = new LiteExchange(target.url, limits, init);
      // Headers as they are: undici validates them as it writes them, and never changes the caller's object.
      const headers = init.headers instanceof Headers ? [...init.headers].flat() : init.headers;
      agent.dispatch({ origin: target.origin, path: target.path, method: normaliseMethod(init.method), headers, body: init.body }, exchange);
      return exchange.response;
    };
    return Object.assign(guardedFetch, {
      withLimits: (next: Partial<OutboundLimits>) => limited({ ...limits, ...next }),
      lite,
    });
  }

  return limited({ timeoutMs: options.timeoutMs, maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES });
}

/**
 * Re-wraps a response so that its body counts bytes against the cap, and so that reading
 * to the end, an error, or a cancel ends the exchange's deadline (and, when not at the
 * end, aborts the request: undici then destroys the socket instead of pooling it).
 */
function bounded(response: Response, maxBytes: number, controller: AbortController, done: () => void): Response {
  const source = response.body;
  let body: ReadableStream<Uint8Array> | null = null;
  if (source === null || NULL_BODY_STATUSES.has(response.status)) {
    source?.cancel().catch(() => {});
    done();
  } else {
    const reader = source.getReader();
    let seen = 0;
    body = new ReadableStream<Uint8Array>({
      async pull(out) {
        try {
          const { done: end, value } = await reader.read();
          if (end) {
            done();
            out.close();
            return;
          }
          seen += value.byteLength;
          if (seen > maxBytes) {
            const err = new ResponseTooLargeError(maxBytes);
            controller.abort(err);
            done();
            out.error(err);
            return;
          }
          out.enqueue(value);
        } catch (err) {
          done();
          out.error(controller.signal.aborted ? controller.signal.reason : err);
        }
      },
      cancel(reason) {
        controller.abort(reason ?? new DOMException("response body cancelled", "AbortError"));
        done();
        return reader.cancel(reason).catch(() => {});
      },
    });
  }
  const wrapped = new Response(body, { status: response.status, statusText: response.statusText, headers: new Headers(response.headers as HeadersInit) });
  Object.defineProperty(wrapped, "url", { value: response.url });
  return wrapped;
}

interface CheckedTarget {
  url: URL;
  origin: string;
  path: string;
}

/** Body bytes held for a slow reader before the socket is paused. */
const HIGH_WATER_MARK = 64 * 1024;

type Waiter = { resolve(value: IteratorResult<Uint8Array>): void; reject(err: unknown): void };

/**
 * One lite exchange: the undici dispatch handler, the response it settles, and its body (an
 * async iterator over the chunks undici hands over, or all of them at once). Ends, by its own
 * deadline, the caller's signal, the body cap or a cancel, abort the dispatch: undici then
 * destroys the socket instead of pooling it.
 */
class LiteExchange implements Dispatcher.DispatchHandler, LiteBody, AsyncIterator<Uint8Array> {
  readonly response: Promise<LiteResponse>;
  private settle!: { resolve(response: LiteResponse): void; reject(err: unknown): void };
  private controller: Dispatcher.DispatchController | null = null;
  private readonly timer: NodeJS.Timeout;
  /** Why this side ended the exchange early (deadline, caller, cap, cancel). */
  private reason: unknown = undefined;
  /** What a read gets once the queued chunks are taken: the exchange's failure. */
  private failure: unknown = undefined;
  private ended = false;
  private responded = false;
  private finished = false;
  private chunks: Buffer[] = [];
  private queued = 0;
  private seen = 0;
  private waiter: Waiter | null = null;
  /** A `bytes` read waiting for the end, and its limit. */
  private whole: { resolve(value: Buffer | null): void; reject(err: unknown): void; maxBytes: number } | null = null;

  constructor(
    private readonly url: URL,
    private readonly limits: OutboundLimits,
    private readonly init: LiteInit,
  ) {
    this.response = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    const deadline = init.deadline !== undefined && init.deadline.ms <= limits.timeoutMs ? init.deadline : null;
    this.timer = deadline
      ? setTimeout(() => this.abort(deadline.reason()), deadline.ms)
      : setTimeout(() => this.abort(new DOMException(`outbound request timed out after ${limits.timeoutMs} ms`, "TimeoutError")), limits.timeoutMs);
    const signal = init.signal;
    if (signal?.aborted) this.abort(signal.reason);
    else signal?.addEventListener("abort", this, { once: true });
  }

  /** The caller's signal fired. */
  handleEvent(): void {
    this.abort(this.init.signal!.reason);
  }

  private abort(reason: unknown): void {
    if (this.finished) return;
    this.reason = reason;
    if (this.controller) this.controller.abort(reason as Error);
    // Not yet on a socket: the caller is answered now, and onRequestStart aborts the dispatch.
    else this.fail(reason);
  }

  /** Nothing more comes: the deadline and the caller's signal are let go. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.init.signal?.removeEventListener("abort", this);
  }

  private fail(err: unknown): void {
    this.finish();
    const error = this.reason !== undefined ? this.reason : err;
    if (!this.responded) {
      this.responded = true;
      this.settle.reject(findBlocked(error) ?? error);
      return;
    }
    this.failure = error;
    this.wake();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.reason !== undefined) controller.abort(this.reason as Error);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200 || this.responded) return;
    const header = (name: string) => {
      const value = headers[name.toLowerCase()];
      return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
    };
    if (REDIRECT_STATUSES.has(status) && header("location") !== null && this.init.redirect !== "manual") {
      this.responded = true;
      this.settle.reject(new RedirectError(`unexpected redirect from ${redactUrl(this.url)}`));
      this.abort(new RedirectError("redirect not followed"));
      return;
    }
    this.responded = true;
    this.settle.resolve({ status, ok: status >= 200 && status < 300, headers: { get: header }, body: NULL_BODY_STATUSES.has(status) ? null : this });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.seen += chunk.byteLength;
    if (this.seen > this.limits.maxBodyBytes) return this.abort(new ResponseTooLargeError(this.limits.maxBodyBytes));
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      return waiter.resolve({ value: chunk, done: false });
    }
    this.chunks.push(chunk);
    this.queued += chunk.byteLength;
    if (this.whole) {
      if (this.queued > this.whole.maxBytes) {
        this.whole.resolve(null);
        this.whole = null;
        void this.cancel();
      }
    } else if (this.queued > HIGH_WATER_MARK) controller.pause();
  }

  onResponseEnd(): void {
    this.ended = true;
    this.finish();
    this.wake();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  /** Hands a waiting read what there is now: the end, or the failure. */
  private wake(): void {
    if (this.whole) {
      const whole = this.whole;
      this.whole = null;
      if (this.failure !== undefined) whole.reject(this.failure);
      else whole.resolve(this.drain());
    }
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      if (this.failure !== undefined) waiter.reject(this.failure);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  private drain(): Buffer {
    const chunks = this.chunks;
    this.chunks = [];
    this.queued = 0;
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  bytes(maxBytes: number): Promise<Buffer | null> {
    if (this.queued > maxBytes) return this.cancel().then(() => null);
    if (this.ended) return Promise.resolve(this.drain());
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.whole = { resolve, reject, maxBytes };
      this.controller?.resume();
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.chunks.shift();
    if (chunk !== undefined) {
      this.queued -= chunk.byteLength;
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.controller?.resume();
    });
  }

  /** The reader left the loop: not read to the end, so the socket goes. */
  async return(): Promise<IteratorResult<Uint8Array>> {
    await this.cancel();
    return { value: undefined, done: true };
  }

  async cancel(reason?: unknown): Promise<void> {
    this.chunks = [];
    this.queued = 0;
    if (this.finished) return;
    this.abort(reason ?? new DOMException("response body cancelled", "AbortError"));
  }
}

interface RequestParts {
  url: URL;
  method: string;
  headers: Headers;
  body: BodyInit | null;
  signal: AbortSignal | null;
  redirect: RequestRedirect;
}

function toRequestParts(input: string | URL | Request, init: RequestInit): RequestParts {
  const fromRequest = input instanceof Request ? input : null;
  return {
    url: new URL(fromRequest ? fromRequest.url : input.toString()),
    method: normaliseMethod(init.method ?? fromRequest?.method ?? "GET"),
    headers: new Headers(init.headers ?? fromRequest?.headers),
    body: init.body !== undefined ? init.body : (fromRequest?.body ?? null),
    signal: init.signal ?? fromRequest?.signal ?? null,
    redirect: init.redirect ?? fromRequest?.redirect ?? "follow",
  };
}

function normaliseMethod(method: string): string {
  const upper = method.toUpperCase();
  return ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"].includes(upper) ? upper : method;
}

export type OutboundErrorClass = "dns" | "connect" | "tls" | "timeout" | "http" | "blocked" | "protocol";

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NODATA", "EAI_NONAME"]);
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "ABORT_ERR", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

type ErrorLike = { name?: unknown; code?: unknown; status?: unknown; statusCode?: unknown; message?: unknown };

// First matching rule wins, and each rule looks through the whole cause chain.
const RULES: [OutboundErrorClass, (e: ErrorLike) => boolean][] = [
  ["blocked", (e) => e instanceof OutboundBlockedError],
  // An aborted read looks like a timeout; the cap is what aborted it.
  ["protocol", (e) => e instanceof ResponseTooLargeError],
  ["timeout", (e) => e.name === "TimeoutError" || e.name === "AbortError" || TIMEOUT_CODES.has(String(e.code))],
  ["dns", (e) => DNS_CODES.has(String(e.code))],
  ["tls", (e) => TLS_CODE.test(String(e.code))],
  ["connect", (e) => CONNECT_CODES.has(String(e.code))],
  ["http", (e) => e instanceof RedirectError || [e.status, e.statusCode, e.code].some(isHttpErrorStatus)],
];

/**
 * Classifies an error thrown by a guarded fetch (or by a client built on it) for display.
 * The message names at most scheme://host:port/path of any URL it mentions.
 */
export function describeOutboundError(err: unknown): { class: OutboundErrorClass; message: string } {
  const chain = causeChain(err);
  for (const [cls, matches] of RULES) {
    const found = chain.find(matches);
    if (found) return { class: cls, message: redactMessage(found) };
  }
  // undici's "fetch failed" says nothing; the innermost cause usually does.
  return { class: "protocol", message: redactMessage(chain[chain.length - 1] ?? {}) };
}

function causeChain(err: unknown): ErrorLike[] {
  const chain: ErrorLike[] = [];
  const pending: unknown[] = [err];
  while (pending.length > 0 && chain.length < 20) {
    const current = pending.shift();
    if (typeof current !== "object" || current === null || chain.includes(current)) continue;
    chain.push(current);
    if ("cause" in current) pending.push(current.cause);
    // Happy-eyeballs connection attempts fail with an AggregateError of per-address errors.
    if (current instanceof AggregateError) pending.push(...current.errors);
  }
  return chain;
}

export function findTooLarge(err: unknown): ResponseTooLargeError | undefined {
  return causeChain(err).find((e): e is ResponseTooLargeError => e instanceof ResponseTooLargeError);
}

function findBlocked(err: unknown): OutboundBlockedError | undefined {
  return causeChain(err).find((e): e is OutboundBlockedError => e instanceof OutboundBlockedError);
}

function isHttpErrorStatus(value: unknown): boolean {
  return typeof value === "number" && value >= 400 && value <= 599;
}

function redactMessage(err: ErrorLike): string {
  const message = typeof err.message === "string" && err.message !== "" ? err.message : String(err.name ?? "unknown error");
  return message.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (text) => {
    try {
      return redactUrl(new URL(text));
    } catch {
      return text.replace(/\/\/[^/@]*@/, "//").replace(/[?#].*$/, "");
    }
  });
}

function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
