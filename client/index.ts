// The typed client for API consumers: openapi-fetch over the generated `paths`, with a
// middleware that adds the bearer token. The raw calls (`GET`, `POST`, …) return
// { data, error, response }; `servers.*` and `toolsets.*` return the data and throw ProblemError.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "../generated/api.js";

export type { components, paths };
export type McpServer = components["schemas"]["McpServer"];
export type McpServerCreate = components["schemas"]["McpServerCreate"];
export type McpServerPatch = components["schemas"]["McpServerPatch"];
export type McpServerList = components["schemas"]["McpServerList"];
export type McpServerEvent = components["schemas"]["McpServerEvent"];
export type McpServerEventList = components["schemas"]["McpServerEventList"];
export type ConnectionCheck = components["schemas"]["ConnectionCheck"];
export type McpToolList = components["schemas"]["McpToolList"];
export type OAuthAuthorization = components["schemas"]["OAuthAuthorization"];
export type Problem = components["schemas"]["Problem"];
export type ProblemFieldError = components["schemas"]["ProblemFieldError"];
/** `GET /api/mcp-servers` query: the workspace and the page size (`limit`, 1–100). */
export type McpServerListQuery = Omit<paths["/api/mcp-servers"]["get"]["parameters"]["query"], "cursor">;
export type McpServerEventListQuery = Omit<NonNullable<paths["/api/mcp-servers/{id}/events"]["get"]["parameters"]["query"]>, "cursor">;
export type OAuthAuthorizeRequest = components["schemas"]["OAuthAuthorizeRequest"];
export type ToolPin = components["schemas"]["ToolPin"];
export type ToolPinDetail = components["schemas"]["ToolPinDetail"];
export type ToolPinList = components["schemas"]["ToolPinList"];
export type ToolPinListQuery = Omit<NonNullable<paths["/api/mcp-servers/{id}/tool-pins"]["get"]["parameters"]["query"]>, "cursor">;
export type Toolset = components["schemas"]["Toolset"];
export type ToolsetCreate = components["schemas"]["ToolsetCreate"];
export type ToolsetPatch = components["schemas"]["ToolsetPatch"];
export type ToolsetList = components["schemas"]["ToolsetList"];
export type ToolsetEvent = components["schemas"]["ToolsetEvent"];
export type ToolsetEventList = components["schemas"]["ToolsetEventList"];

export interface RetryOptions {
  /** How many times a 429 or 503 answer is retried (default 3; 0 turns retries off). */
  retries?: number;
  /** A `Retry-After` longer than this is not waited for: the answer is returned as it is (default 60 000). */
  maxDelayMs?: number;
}

export interface McpServersClientOptions {
  /** Where the API is served, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** An API token minted with `npm run -s token -- create`. */
  token: string;
  /** A fetch implementation; defaults to the global one. */
  fetch?: (request: Request) => Promise<Response>;
  /** Retries of the `servers.*` methods (the raw calls never retry). */
  retry?: RetryOptions;
}

/** A failed request, as the API's problem+json (RFC 9457) described it. */
export class ProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The offending fields of a 400, one entry per field; empty otherwise. */
  readonly errors: ProblemFieldError[];
  readonly requestId: string | undefined;
  /** The whole problem body (it may carry more, e.g. `connectionError` on a 502). */
  readonly problem: Partial<Problem>;

  constructor(status: number, body: unknown) {
    const problem: Partial<Problem> = body && typeof body === "object" ? (body as Partial<Problem>) : {};
    const title = typeof problem.title === "string" ? problem.title : `HTTP ${status}`;
    const detail = typeof problem.detail === "string" ? problem.detail : typeof body === "string" ? body.slice(0, 200) : "";
    const errors = Array.isArray(problem.errors) ? problem.errors : [];
    super([title, detail, ...errors.map((e) => `${e.path} ${e.message}`)].filter(Boolean).join(" "));
    this.name = "ProblemError";
    this.status = status;
    this.type = typeof problem.type === "string" ? problem.type : "about:blank";
    this.title = title;
    this.detail = detail;
    this.errors = errors;
    this.requestId = typeof problem.requestId === "string" ? problem.requestId : undefined;
    this.problem = problem;
  }
}

export interface McpServersApi {
  /** Registers a server. Sends an `Idempotency-Key` (a new UUID unless given), so a retried create never makes two. */
  create(body: McpServerCreate, options?: { idempotencyKey?: string }): Promise<McpServer>;
  get(id: string): Promise<McpServer>;
  /** The record and its `ETag`, to send back as `ifMatch`. */
  getWithEtag(id: string): Promise<{ server: McpServer; etag: string }>;
  /** Every server of the workspace, newest first, fetched page by page as you iterate. */
  list(query: McpServerListQuery): AsyncIterableIterator<McpServer>;
  /** One page: `{ data, nextCursor }`. */
  page(query: McpServerListQuery & { cursor?: string }): Promise<McpServerList>;
  /** Applies a patch; with `ifMatch`, only if the record is still at that version (else ProblemError 412). */
  update(id: string, patch: McpServerPatch, options?: { ifMatch?: string }): Promise<McpServer>;
  delete(id: string, options?: { ifMatch?: string }): Promise<void>;
  /** Checks the connection for real and records the outcome. */
  test(id: string): Promise<ConnectionCheck>;
  tools(id: string): Promise<McpToolList>;
  /** Every audit event of the server, newest first. */
  events(id: string, query?: McpServerEventListQuery): AsyncIterableIterator<McpServerEvent>;
  /** One page of events: `{ data, nextCursor }`. */
  eventsPage(id: string, query?: McpServerEventListQuery & { cursor?: string }): Promise<McpServerEventList>;
  /** Starts the OAuth authorization of an `oauth` server: open `authorizationUrl` in a browser. */
  connect(id: string, body?: OAuthAuthorizeRequest): Promise<OAuthAuthorization>;
}

/** Pinned tool definitions of one server (issue 22): review what changed, approve it, or forget a pin. */
export interface ToolPinsApi {
  /** Every pin of the server, by tool name, fetched page by page as you iterate. */
  list(id: string, query?: ToolPinListQuery): AsyncIterableIterator<ToolPin>;
  /** One page: `{ data, nextCursor }`. */
  page(id: string, query?: ToolPinListQuery & { cursor?: string }): Promise<ToolPinList>;
  /** One pin with its pinned and current definitions, and the `ETag` an approval needs. */
  get(id: string, tool: string): Promise<{ pin: ToolPinDetail; etag: string }>;
  /** Pins the current definition; `ifMatch` is the `ETag` of `get` (ProblemError 412 when stale, 428 when left out). */
  approve(id: string, tool: string, options: { ifMatch: string }): Promise<{ pin: ToolPinDetail; etag: string }>;
  /** Forgets the pin: the next sight pins afresh. */
  delete(id: string, tool: string): Promise<void>;
}


export interface ToolsetsApi {
  /** Makes a toolset in a workspace: chosen tools of its servers, under names of their own where given. */
  create(workspaceId: string, body: ToolsetCreate): Promise<Toolset>;
  get(id: string): Promise<Toolset>;
  /** The toolset and its `ETag`, to send back as `ifMatch`. */
  getWithEtag(id: string): Promise<{ toolset: Toolset; etag: string }>;
  /** Every toolset of the workspace, newest first, fetched page by page as you iterate. */
  list(workspaceId: string, query?: { limit?: number }): AsyncIterableIterator<Toolset>;
  /** One page: `{ data, nextCursor }`. */
  page(workspaceId: string, query?: { limit?: number; cursor?: string }): Promise<ToolsetList>;
  /** Applies a patch (`tools` replaces the whole list); with `ifMatch`, only if the toolset is still at that version (else ProblemError 412). */
  update(id: string, patch: ToolsetPatch, options?: { ifMatch?: string }): Promise<Toolset>;
  delete(id: string, options?: { ifMatch?: string }): Promise<void>;
  /** Every event of the toolset, newest first. */
  events(id: string, query?: { limit?: number }): AsyncIterableIterator<ToolsetEvent>;
  eventsPage(id: string, query?: { limit?: number; cursor?: string }): Promise<ToolsetEventList>;
}

export type McpServersClient = Client<paths> & { servers: McpServersApi; toolPins: ToolPinsApi; toolsets: ToolsetsApi };

const RETRIED = new Set([429, 503]);

/** Milliseconds to wait before retry number `attempt` (0-based): `Retry-After` when given, else 0.5 s, 1 s, 2 s, … */
export function retryDelayMs(retryAfter: string | null, attempt: number, now = Date.now()): number {
  if (retryAfter !== null && /^\d+$/.test(retryAfter.trim())) return Number(retryAfter.trim()) * 1000;
  const date = retryAfter === null ? NaN : Date.parse(retryAfter);
  if (!Number.isNaN(date)) return Math.max(0, date - now);
  return 500 * 2 ** attempt;
}

// Both statuses are answered before anything changes (the rate limit is checked first; a 503
// means the store was not reached), so every method may be retried.
function retrying(fetchImpl: (request: Request) => Promise<Response>, { retries = 3, maxDelayMs = 60_000 }: RetryOptions) {
  return async (request: Request): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const response = await fetchImpl(request.clone());
      if (!RETRIED.has(response.status) || attempt >= retries) return response;
      const delay = retryDelayMs(response.headers.get("retry-after"), attempt);
      if (delay > maxDelayMs) return response;
      await response.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  };
}

function authenticated(baseUrl: string, token: string, fetchImpl: (request: Request) => Promise<Response>): Client<paths> {
  const client = createClient<paths>({ baseUrl, fetch: fetchImpl });
  client.use({
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  return client;
}

async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ProblemError(response.status, error);
  return data as T;
}

function serversApi(api: Client<paths>): McpServersApi {
  const byId = (id: string) => ({ params: { path: { id } } });
  const servers: McpServersApi = {
    create: (body, options = {}) =>
      unwrap(api.POST("/api/mcp-servers", { body, params: { header: { "Idempotency-Key": options.idempotencyKey ?? crypto.randomUUID() } } })),
    get: (id) => unwrap(api.GET("/api/mcp-servers/{id}", byId(id))),
    async getWithEtag(id) {
      const result = await api.GET("/api/mcp-servers/{id}", byId(id));
      const server = await unwrap(Promise.resolve(result));
      return { server, etag: result.response.headers.get("etag") ?? "" };
    },
    page: (query) => unwrap(api.GET("/api/mcp-servers", { params: { query } })),
    async *list(query) {
      let cursor: string | undefined;
      do {
        const page = await servers.page(cursor ? { ...query, cursor } : query);
        yield* page.data;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    },
    update: (id, patch, options = {}) =>
      unwrap(api.PATCH("/api/mcp-servers/{id}", { params: { path: { id }, header: options.ifMatch ? { "If-Match": options.ifMatch } : undefined }, body: patch })),
    async delete(id, options = {}) {
      await unwrap(api.DELETE("/api/mcp-servers/{id}", { params: { path: { id }, header: options.ifMatch ? { "If-Match": options.ifMatch } : undefined } }));
    },
    test: (id) => unwrap(api.POST("/api/mcp-servers/{id}/test", byId(id))),
    tools: (id) => unwrap(api.GET("/api/mcp-servers/{id}/tools", byId(id))),
    eventsPage: (id, query = {}) => unwrap(api.GET("/api/mcp-servers/{id}/events", { params: { path: { id }, query } })),
    async *events(id, query = {}) {
      let cursor: string | undefined;
      do {
        const page = await servers.eventsPage(id, cursor ? { ...query, cursor } : query);
        yield* page.data;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    },
    connect: (id, body) => unwrap(api.POST("/api/mcp-servers/{id}/oauth/authorize", { params: { path: { id } }, body })),
  };
  return servers;
}

function toolPinsApi(api: Client<paths>): ToolPinsApi {
  const at = (id: string, tool: string) => ({ params: { path: { id, tool } } });
  const withEtag = async (call: Promise<{ data?: ToolPinDetail; error?: unknown; response: Response }>) => {
    const result = await call;
    const pin = await unwrap(Promise.resolve(result));
    return { pin, etag: result.response.headers.get("etag") ?? "" };
  };
  const pins: ToolPinsApi = {
    page: (id, query = {}) => unwrap(api.GET("/api/mcp-servers/{id}/tool-pins", { params: { path: { id }, query } })),
    async *list(id, query = {}) {
      let cursor: string | undefined;
      do {
        const page = await pins.page(id, cursor ? { ...query, cursor } : query);
        yield* page.data;
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    },
    get: (id, tool) => withEtag(api.GET("/api/mcp-servers/{id}/tool-pins/{tool}", at(id, tool))),
    approve: (id, tool, { ifMatch }) =>
      withEtag(api.POST("/api/mcp-servers/{id}/tool-pins/{tool}/approve", { params: { path: { id, tool }, header: { "If-Match": ifMatch } } })),
    async delete(id, tool) {
      await unwrap(api.DELETE("/api/mcp-servers/{id}/tool-pins/{tool}", at(id, tool)));
    },
  };
  return pins;
}

async function* pages<T>(page: (cursor: string | undefined) => Promise<{ data: T[]; nextCursor: string | null }>): AsyncIterableIterator<T> {
  let cursor: string | undefined;
  do {
    const got = await page(cursor);
    yield* got.data;
    cursor = got.nextCursor ?? undefined;
  } while (cursor);
}

function toolsetsApi(api: Client<paths>): ToolsetsApi {
  const byId = (toolsetId: string) => ({ params: { path: { toolsetId } } });
  const ifMatching = (toolsetId: string, ifMatch?: string) => ({ params: { path: { toolsetId }, header: ifMatch ? { "If-Match": ifMatch } : undefined } });
  const toolsets: ToolsetsApi = {
    create: (workspaceId, body) => unwrap(api.POST("/api/workspaces/{workspaceId}/toolsets", { params: { path: { workspaceId } }, body })),
    get: (id) => unwrap(api.GET("/api/toolsets/{toolsetId}", byId(id))),
    async getWithEtag(id) {
      const result = await api.GET("/api/toolsets/{toolsetId}", byId(id));
      const toolset = await unwrap(Promise.resolve(result));
      return { toolset, etag: result.response.headers.get("etag") ?? "" };
    },
    page: (workspaceId, query = {}) => unwrap(api.GET("/api/workspaces/{workspaceId}/toolsets", { params: { path: { workspaceId }, query } })),
    list: (workspaceId, query = {}) => pages((cursor) => toolsets.page(workspaceId, cursor ? { ...query, cursor } : query)),
    update: (id, patch, options = {}) => unwrap(api.PATCH("/api/toolsets/{toolsetId}", { ...ifMatching(id, options.ifMatch), body: patch })),
    async delete(id, options = {}) {
      await unwrap(api.DELETE("/api/toolsets/{toolsetId}", ifMatching(id, options.ifMatch)));
    },
    eventsPage: (id, query = {}) => unwrap(api.GET("/api/toolsets/{toolsetId}/events", { params: { path: { toolsetId: id }, query } })),
    events: (id, query = {}) => pages((cursor) => toolsets.eventsPage(id, cursor ? { ...query, cursor } : query)),
  };
  return toolsets;
}

export function createMcpServersClient({ baseUrl, token, fetch, retry = {} }: McpServersClientOptions): McpServersClient {
  const fetchImpl = fetch ?? ((request: Request) => globalThis.fetch(request));
  const raw = authenticated(baseUrl, token, fetchImpl);
  const retried = authenticated(baseUrl, token, retrying(fetchImpl, retry));
  return Object.assign(raw, { servers: serversApi(retried), toolPins: toolPinsApi(retried), toolsets: toolsetsApi(retried) });
}
