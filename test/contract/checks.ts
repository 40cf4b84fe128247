// The black-box half of the contract suite: plain HTTP against a base URL, every response
// validated against the spec. test/contract.test.ts runs these against a local server and
// `npm run contract` against any deployment, so a check is written once for both.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { McpServer, McpServerCreate, McpServerList, Problem } from "../../client/index.js";
import { responseValidator, type ContractResponse, type ValidateResponse } from "./validate-response.js";

export interface ContractContext {
  baseUrl: string;
  /** A token that covers `workspace`. */
  token: string;
  /** Where the checks create their records. */
  workspace: string;
  /** Every record a check creates is named with it, and cleanup deletes exactly those. */
  namePrefix: string;
  validate: ValidateResponse;
}

export interface ContractCheck {
  name: string;
  run(ctx: ContractContext): Promise<void>;
}

export function defaultNamePrefix(): string {
  return `contract-check-${Date.now()}-`;
}

export function contractContext(options: { baseUrl: string; token: string; workspace: string; namePrefix?: string }): ContractContext {
  const namePrefix = options.namePrefix ?? defaultNamePrefix();
  // An empty prefix would make cleanup delete every record in the workspace.
  if (namePrefix.trim() === "") throw new Error("the name prefix must not be empty");
  return { ...options, baseUrl: options.baseUrl.replace(/\/+$/, ""), namePrefix, validate: responseValidator() };
}

const REQUEST_TIMEOUT_MS = 30_000;

interface CallOptions {
  /** Defaults to the context's token; null sends no Authorization header. */
  token?: string | null;
  json?: unknown;
  body?: string;
  contentType?: string;
}

async function call(ctx: ContractContext, method: string, path: string, options: CallOptions = {}): Promise<ContractResponse> {
  const headers: Record<string, string> = { accept: "application/json, application/problem+json" };
  const token = options.token === undefined ? ctx.token : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const body = options.json !== undefined ? JSON.stringify(options.json) : options.body;
  if (body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
  const response = await fetch(ctx.baseUrl + path, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

const suffix = () => randomBytes(4).toString("hex");

function serverBody(ctx: ContractContext, label: string, extra: Partial<McpServerCreate> = {}): McpServerCreate {
  return { workspaceId: ctx.workspace, name: `${ctx.namePrefix}${label}-${suffix()}`, url: "https://mcp.example.com/mcp", ...extra };
}

async function create(ctx: ContractContext, label: string, extra: Partial<McpServerCreate> = {}): Promise<McpServer> {
  const res = await call(ctx, "POST", "/api/mcp-servers", { json: serverBody(ctx, label, extra) });
  ctx.validate(res, "createMcpServer", 201);
  return res.json as McpServer;
}

const serverPath = (id: string) => `/api/mcp-servers/${encodeURIComponent(id)}`;
const listPath = (workspace: string, query = "") => `/api/mcp-servers?workspaceId=${encodeURIComponent(workspace)}${query}`;

/** An id of the right shape that no deployment has issued. */
function unknownId(): string {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  return "mcp_0" + Array.from(randomBytes(25), (b) => alphabet[b % 32]).join("");
}

function fieldPaths(res: ContractResponse): string[] {
  return ((res.json as Problem).errors ?? []).map((e) => e.path);
}

// Refused by the guard where it is on (blocked), refused by the port where it is off (connect).
const UNREACHABLE_URL = "http://127.0.0.1:9/mcp";

export const checks: ContractCheck[] = [
  {
    name: "GET /healthz answers 200 without a token",
    async run(ctx) {
      ctx.validate(await call(ctx, "GET", "/healthz", { token: null }), "getHealth", 200);
    },
  },
  {
    name: "GET /readyz answers 200 without a token",
    async run(ctx) {
      ctx.validate(await call(ctx, "GET", "/readyz", { token: null }), "getReadiness", 200);
    },
  },
  {
    name: "POST /api/mcp-servers answers 201 with Location and no secret in the body",
    async run(ctx) {
      const secret = `sk_contract_${randomBytes(12).toString("hex")}`;
      const res = await call(ctx, "POST", "/api/mcp-servers", { json: serverBody(ctx, "create", { authType: "api_key", apiKey: secret }) });
      ctx.validate(res, "createMcpServer", 201);
      const server = res.json as McpServer;
      assert.ok(res.headers.get("location")?.endsWith(`/api/mcp-servers/${server.id}`), `Location is ${res.headers.get("location")}`);
      assert.equal(server.hasApiKey, true);
      assert.ok(!("apiKey" in server), "the body has an apiKey property");
      assert.ok(!res.text.includes(secret), "the body contains the API key");
    },
  },
  {
    name: "GET /api/mcp-servers/{id} answers 200 with the created record",
    async run(ctx) {
      const created = await create(ctx, "get");
      const res = await call(ctx, "GET", serverPath(created.id));
      ctx.validate(res, "getMcpServer", 200);
      assert.deepEqual(res.json, created);
    },
  },
  {
    name: "GET /api/mcp-servers pages with limit=1 and nextCursor, newest first",
    async run(ctx) {
      await create(ctx, "page-a");
      await create(ctx, "page-b");
      const first = await call(ctx, "GET", listPath(ctx.workspace, "&limit=1"));
      ctx.validate(first, "listMcpServers", 200);
      const page1 = first.json as McpServerList;
      assert.equal(page1.data.length, 1);
      assert.equal(typeof page1.nextCursor, "string", "the workspace holds at least two records, so nextCursor is set");
      const second = await call(ctx, "GET", listPath(ctx.workspace, `&limit=1&cursor=${encodeURIComponent(page1.nextCursor!)}`));
      ctx.validate(second, "listMcpServers", 200);
      const page2 = second.json as McpServerList;
      assert.equal(page2.data.length, 1);
      assert.ok(page2.data[0].id < page1.data[0].id, `page 2 (${page2.data[0].id}) is not older than page 1 (${page1.data[0].id})`);
    },
  },
  {
    name: "PATCH /api/mcp-servers/{id} answers 200; a value replaces and the rest is kept",
    async run(ctx) {
      const created = await create(ctx, "patch", { connectorConfig: { contract: "yes" } });
      const name = `${ctx.namePrefix}patched-${suffix()}`;
      const res = await call(ctx, "PATCH", serverPath(created.id), { json: { name } });
      ctx.validate(res, "updateMcpServer", 200);
      const updated = res.json as McpServer;
      assert.equal(updated.name, name);
      assert.equal(updated.url, created.url);
      assert.deepEqual(updated.connectorConfig, { contract: "yes" });
    },
  },
  {
    name: "PATCH /api/mcp-servers/{id} with {} answers 200 and changes nothing",
    async run(ctx) {
      const created = await create(ctx, "noop");
      const res = await call(ctx, "PATCH", serverPath(created.id), { json: {} });
      ctx.validate(res, "updateMcpServer", 200);
      assert.deepEqual(res.json, created);
    },
  },
  {
    name: "PATCH /api/mcp-servers/{id} with null clears an optional field",
    async run(ctx) {
      const created = await create(ctx, "clear", { connectorConfig: { contract: "yes" }, headers: { "X-Contract": "1" } });
      const res = await call(ctx, "PATCH", serverPath(created.id), { json: { connectorConfig: null, headers: null } });
      ctx.validate(res, "updateMcpServer", 200);
      const updated = res.json as McpServer;
      assert.equal(updated.connectorConfig, null);
      assert.deepEqual(updated.headers, {});
    },
  },
  {
    name: "POST /api/mcp-servers with a name taken in the workspace answers 409",
    async run(ctx) {
      const created = await create(ctx, "taken");
      const res = await call(ctx, "POST", "/api/mcp-servers", { json: serverBody(ctx, "taken", { name: created.name.toUpperCase() }) });
      ctx.validate(res, "createMcpServer", 409);
    },
  },
  {
    name: "POST /api/mcp-servers with an unknown field answers 400 naming it",
    async run(ctx) {
      const res = await call(ctx, "POST", "/api/mcp-servers", { json: { ...serverBody(ctx, "unknown-field"), apikey: "x" } });
      ctx.validate(res, "createMcpServer", 400);
      assert.ok(fieldPaths(res).includes("/apikey"), `errors name ${fieldPaths(res).join(", ")}`);
    },
  },
  {
    name: "POST /api/mcp-servers with a url that is not http(s) answers 400 naming /url",
    async run(ctx) {
      const res = await call(ctx, "POST", "/api/mcp-servers", { json: serverBody(ctx, "bad-url", { url: "ftp://mcp.example.com/mcp" }) });
      ctx.validate(res, "createMcpServer", 400);
      assert.ok(fieldPaths(res).includes("/url"), `errors name ${fieldPaths(res).join(", ")}`);
    },
  },
  {
    name: "a request without a token answers 401 with WWW-Authenticate: Bearer",
    async run(ctx) {
      const res = await call(ctx, "GET", listPath(ctx.workspace), { token: null });
      ctx.validate(res, "listMcpServers", 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    },
  },
  {
    name: "a request with an unknown token answers 401",
    async run(ctx) {
      const res = await call(ctx, "GET", listPath(ctx.workspace), { token: `mcpk_${randomBytes(32).toString("base64url")}` });
      ctx.validate(res, "listMcpServers", 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    },
  },
  {
    name: "a workspace the token does not cover answers 403 on list and create",
    async run(ctx) {
      // Ids are at most 100 characters; keep the derived one valid so the answer is about coverage.
      const other = `${ctx.workspace.slice(0, 60)}-not-covered-${suffix()}`;
      ctx.validate(await call(ctx, "GET", listPath(other)), "listMcpServers", 403);
      const res = await call(ctx, "POST", "/api/mcp-servers", { json: { ...serverBody(ctx, "forbidden"), workspaceId: other } });
      ctx.validate(res, "createMcpServer", 403);
    },
  },
  {
    name: "an unknown id answers 404 on GET, PATCH and DELETE",
    async run(ctx) {
      const path = serverPath(unknownId());
      ctx.validate(await call(ctx, "GET", path), "getMcpServer", 404);
      ctx.validate(await call(ctx, "PATCH", path, { json: { name: "x" } }), "updateMcpServer", 404);
      ctx.validate(await call(ctx, "DELETE", path), "deleteMcpServer", 404);
    },
  },
  {
    name: "a malformed id answers 400",
    async run(ctx) {
      ctx.validate(await call(ctx, "GET", serverPath("not-an-id")), "getMcpServer", 400);
    },
  },
  {
    name: "a body that is not JSON answers 415",
    async run(ctx) {
      const res = await call(ctx, "POST", "/api/mcp-servers", { body: JSON.stringify(serverBody(ctx, "text")), contentType: "text/plain" });
      ctx.validate(res, "createMcpServer", 415);
    },
  },
  {
    name: "a body over 1 MiB answers 413",
    async run(ctx) {
      const json = serverBody(ctx, "large", { connectorConfig: { blob: "x".repeat(1024 * 1024 + 10) } });
      ctx.validate(await call(ctx, "POST", "/api/mcp-servers", { json }), "createMcpServer", 413);
    },
  },
  {
    name: "DELETE /api/mcp-servers/{id} answers 204, then the record is gone",
    async run(ctx) {
      const created = await create(ctx, "delete");
      ctx.validate(await call(ctx, "DELETE", serverPath(created.id)), "deleteMcpServer", 204);
      ctx.validate(await call(ctx, "GET", serverPath(created.id)), "getMcpServer", 404);
      ctx.validate(await call(ctx, "DELETE", serverPath(created.id)), "deleteMcpServer", 404);
    },
  },
  {
    name: "POST /api/mcp-servers/{id}/test on an unreachable server answers 200 with connectorStatus error",
    async run(ctx) {
      const created = await create(ctx, "unreachable-test", { url: UNREACHABLE_URL });
      const res = await call(ctx, "POST", `${serverPath(created.id)}/test`);
      ctx.validate(res, "testMcpServer", 200);
      const check = res.json as { connectorStatus: string; error: { class: string } | null };
      assert.equal(check.connectorStatus, "error");
      assert.ok(["connect", "blocked"].includes(check.error?.class ?? ""), `error class is ${check.error?.class}`);
      const after = await call(ctx, "GET", serverPath(created.id));
      ctx.validate(after, "getMcpServer", 200);
      assert.equal((after.json as McpServer).connectorStatus, "error", "the outcome is recorded on the server");
    },
  },
  {
    name: "GET /api/mcp-servers/{id}/tools on an unreachable server answers 502",
    async run(ctx) {
      const created = await create(ctx, "unreachable-tools", { url: UNREACHABLE_URL });
      const res = await call(ctx, "GET", `${serverPath(created.id)}/tools`);
      ctx.validate(res, "listMcpServerTools", 502);
      const problem = res.json as Problem;
      assert.ok(["connect", "blocked"].includes(problem.connectionError?.class ?? ""), `connectionError.class is ${problem.connectionError?.class}`);
    },
  },
];

/** Deletes every record in the workspace whose name starts with the prefix; returns how many. */
export async function cleanup(ctx: ContractContext): Promise<number> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await call(ctx, "GET", listPath(ctx.workspace, `&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
    ctx.validate(res, "listMcpServers", 200);
    const page = res.json as McpServerList;
    ids.push(...page.data.filter((s) => s.name.startsWith(ctx.namePrefix)).map((s) => s.id));
    cursor = page.nextCursor;
  } while (cursor);
  for (const id of ids) {
    const res = await call(ctx, "DELETE", serverPath(id));
    // 404: deleted meanwhile, which is what we want.
    if (res.status !== 404) ctx.validate(res, "deleteMcpServer", 204);
  }
  return ids.length;
}

/** One line for a failed check, whatever was thrown. */
export function failureReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  const text = err.message + (cause ? ` (${cause.code ?? cause.message})` : "");
  const line = text.split("\n").map((l) => l.trim()).filter(Boolean).join(" | ");
  return line.length > 500 ? line.slice(0, 500) + "…" : line;
}
