// A fuzzer that speaks the spec: for every operation in openapi.yaml, requests generated
// from its schemas (valid ones, and valid ones with one thing broken) against the real
// server. Whatever comes back: never a 5xx, always what the spec documents, a request that
// breaks the contract is refused, and a refused request changes nothing in the store.
//
// Seeded and bounded: FUZZ_SEED (default 20261124) and FUZZ_RUNS (pairs of requests per
// operation, default 50). Longer locally: FUZZ_RUNS=2000 npx vitest run test/fuzz.test.ts.
// FUZZ_KEEP_GOING=1 collects every failure instead of stopping (and shrinking) at the first.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { MAX_HEADER_BYTES } from "../server/app.js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadSpec, specSchemas, valueAt, type JsonObject } from "./contract/spec.js";
import { responseValidator, type ValidateResponse } from "./contract/validate-response.js";
import { SchemaArbitraries } from "./fuzz/arbitrary.js";
import { describeExchange, send, snapshotDiff, storeSnapshot, Tally, Unsendable, type WireRequest, type WireResponse } from "./fuzz/harness.js";
import { contractBreaks, isPlaceholder, operationsOf, paramText, requestArbitraries, type Operation, type PlanHints, type RequestPlan } from "./fuzz/requests.js";
import { startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const RUNS = Number(process.env.FUZZ_RUNS ?? 50);
const KEEP_GOING = process.env.FUZZ_KEEP_GOING === "1";

// Generated URLs name loopback only: the SSRF guard refuses them before any socket opens,
// and none needs DNS (`localhost` comes from /etc/hosts), so nothing leaves the machine.
const URL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "127.1.2.3"];

// Tried wherever a schema accepts them.
const INTERESTING = [
  "__proto__",
  "constructor",
  "toString",
  "Host",
  "Authorization",
  "authorization",
  "Mcp-Session-Id",
  "Content-Length",
  "X-Team",
  "GitHub",
  "github",
  "İstanbul",
  "ǅ",
  "Straße",
  "日本語",
  "😀",
  "e\u0301",
  "\u200b",
  "\u0000",
  "a\u0000b",
  "null",
  "*",
  '"v1"',
  "W/\"v1\"",
  " ",
];

const spec = loadSpec();
const operations = operationsOf(spec);
const statuses = new Tally();
const kinds = new Tally();
const failures: string[] = [];

let srv: TestServer;
let validate: ValidateResponse;
let token: string;
let otherToken: string;
let revokedToken: string;
const workspaces = [uniqueWorkspace("fuzz"), uniqueWorkspace("fuzz")];
const otherWorkspace = uniqueWorkspace("fuzzother");
const pools = { live: [] as string[], deleted: [] as string[], foreign: [] as string[] };
// Names the fuzzer also generates (in other letter cases too), to meet the 409.
const TAKEN_NAMES = ["fuzz-seed", "FUZZ-SEED", "Fuzz-Record-3", "fuzz-record-4"];
let seeded = 0;

beforeAll(async () => {
  srv = await startServer({
    env: { MCP_API_RATE_LIMIT: "1000000", MCP_API_CONNECT_TIMEOUT_MS: "1000", LOG_LEVEL: "warn", MCP_API_OAUTH_RETURN_URLS: "http://127.0.0.1/,https://localhost/" },
  });
  validate = responseValidator(spec);
  token = await srv.token(workspaces, "usr_fuzz");
  otherToken = await srv.token([otherWorkspace], "usr_other");
  const revoked = await srv.services.tokens.mint({ userId: "usr_revoked", workspaces });
  await srv.services.tokens.revoke(revoked.record.id);
  revokedToken = revoked.token;
  for (let i = 0; i < 2; i++) pools.foreign.push(await createRecord(otherToken, otherWorkspace, i));
  for (let i = 0; i < 2; i++) {
    const id = await createRecord(token, workspaces[0], i);
    await sendOk({ method: "DELETE", target: `/api/mcp-servers/${id}`, headers: { authorization: `Bearer ${token}` } }, 204);
    pools.deleted.push(id);
  }
  await createRecord(token, workspaces[0], 0, "fuzz-seed");
  // A catalog of more than one connector, so that listConnectors issues cursors too.
  const connectors = ["io.github.fuzz/alpha", "io.github.fuzz/beta", "io.github.fuzz/gamma"].map((name) => ({
    label: name,
    document: { name, description: "A connector to fuzz.", version: "1.0.0", remotes: [{ type: "streamable-http", url: "http://127.0.0.1:9/mcp" }] },
  }));
  const imported = await srv.services.connectors.importDocuments(connectors);
  if (!imported.ok) throw new Error(`fuzz catalog: ${imported.problems.join("; ")}`);
});

afterAll(async () => {
  console.log(statuses.format(`fuzz: statuses per operation (seed ${SEED}, ${RUNS} runs of a valid and a broken request each)`));
  console.log(kinds.format("fuzz: requests per operation by kind"));
  if (failures.length > 0) console.log(`fuzz: ${failures.length} failure(s)\n\n${failures.join("\n\n")}`);
  await srv?.stop();
});

/** Records of every auth type, so that patches, checks and deletes meet real ones. */
async function createRecord(tok: string, workspaceId: string, i: number, name = `fuzz-record-${seeded}`): Promise<string> {
  const n = seeded++;
  const variants = [
    { authType: "none", headers: { "X-Team": "fuzz" } },
    { authType: "api_key", apiKey: `sk_fuzz_${n}` },
    { authType: "oauth", oauthClientId: "fuzz-client", oauthClientSecret: "fuzz-secret", oauthTokenEndpoint: "http://127.0.0.1/token" },
    { authType: "oauth", oauthClientId: "fuzz-client", oauthTokenEndpoint: "http://127.0.0.1:9/token", oauthAuthorizationEndpoint: "http://127.0.0.1:9/authorize" },
    { authType: "oauth", oauthClientId: "fuzz-discover" },
  ];
  const body = JSON.stringify({ workspaceId, name, url: "http://127.0.0.1:9/mcp", ...variants[(n + i) % variants.length] });
  const res = await sendOk({ method: "POST", target: "/api/mcp-servers", headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" }, body }, 201);
  return (res.json as { id: string }).id;
}

async function sendOk(req: WireRequest, status: number): Promise<WireResponse> {
  const res = await send(srv.baseUrl, req);
  if (res.status !== status) throw new Error(`setup: expected ${status}\n${describeExchange(req, res)}`);
  return res;
}

async function ensurePool() {
  const ids = new Set((await srv.services.db.knex("mcp_servers").whereIn("workspace_id", workspaces).select("id")).map((r: { id: string }) => r.id));
  pools.live = pools.live.filter((id) => ids.has(id));
  for (const id of ids) if (!pools.live.includes(id)) pools.live.push(id);
  while (pools.live.length < 8) pools.live.push(await createRecord(token, workspaces[pools.live.length % 2], 0));
  if (++poolChecks % 50 === 0) await trimStore();
}

// Every request snapshots the whole store twice; keeping it small keeps long runs linear.
const KEEP = { records: 40, rows: 300 };
let poolChecks = 0;

async function trimStore() {
  const knex = srv.services.db.knex;
  for (const id of pools.live.splice(0, Math.max(0, pools.live.length - KEEP.records))) {
    await sendOk({ method: "DELETE", target: `/api/mcp-servers/${id}`, headers: { authorization: `Bearer ${token}` } }, 204);
  }
  for (const [table, order] of [["audit_events", "id"], ["idempotency_keys", "created_at"], ["oauth_states", "created_at"]]) {
    if (!(await knex.schema.hasTable(table))) continue;
    const [{ n }] = await knex(table).count({ n: "*" });
    if (Number(n) <= KEEP.rows * 2) continue;
    const cutoff = await knex(table).orderBy(order, "desc").offset(KEEP.rows).first(order);
    if (cutoff) await knex(table).where(order, "<=", cutoff[order]).delete();
  }
}

const schemas = specSchemas(spec);
const plainArbs = new SchemaArbitraries({ spec, schemas, urlHosts: URL_HOSTS, interestingStrings: INTERESTING });
const schemaAt = (ptr: string) => (valueAt(spec, ptr) === undefined ? null : ptr);
const workspaceArb = (ptr: string | null) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...workspaces), weight: 8 },
    { arbitrary: fc.constant(otherWorkspace), weight: 1 },
    ...(ptr ? [{ arbitrary: plainArbs.valid(ptr), weight: 1 }] : []),
  );
const namePtr = schemaAt("/components/schemas/ServerName");
const bodyOverrides: Record<string, fc.Arbitrary<unknown>> = { "/workspaceId": workspaceArb(schemaAt("/components/schemas/WorkspaceId")) };
if (namePtr) bodyOverrides["/name"] = fc.oneof({ arbitrary: plainArbs.valid(namePtr), weight: 6 }, { arbitrary: fc.constantFrom(...TAKEN_NAMES), weight: 1 });
const arbs = new SchemaArbitraries({ spec, schemas, urlHosts: URL_HOSTS, interestingStrings: INTERESTING, overrides: bodyOverrides });

const CREDENTIALS = ["apiKey", "oauthClientId", "oauthClientSecret", "oauthTokenEndpoint", "oauthAuthorizationEndpoint", "oauthScopes", "oauthClientAuthMethod", "oauthClientPrivateKey"];
// A schema-valid string is almost never a private key: valid requests use a real one.
const FUZZ_PRIVATE_KEY = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
const MANAGED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "expect", "mcp-session-id", "proxy-authorization", "proxy-authenticate", "proxy-connection"]);

/** Bends a schema-valid create or patch toward one the domain rules accept too. */
function coherent(operationId: string, body: unknown, choice: number): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  if (operationId !== "createMcpServer" && operationId !== "updateMcpServer") return body;
  const o = Object.assign(Object.create(null), body) as Record<string, unknown>;
  const authType = (o.authType as string | undefined) ?? (operationId === "createMcpServer" ? "none" : undefined);
  const keep = authType === "api_key" ? ["apiKey"] : authType === "oauth" ? CREDENTIALS.filter((c) => c !== "apiKey") : [];
  for (const c of CREDENTIALS) if (!keep.includes(c)) delete o[c];
  if (authType === "api_key" && o.apiKey == null) o.apiKey = `sk_fuzz_${choice}`;
  if (authType === "oauth") {
    if (o.oauthClientId == null) o.oauthClientId = "fuzz-client";
    if (o.oauthTokenEndpoint == null) o.oauthTokenEndpoint = "http://127.0.0.1/token";
    if (o.oauthClientPrivateKey != null || o.oauthClientAuthMethod === "private_key_jwt") o.oauthClientPrivateKey = FUZZ_PRIVATE_KEY;
  }
  if (o.headers && typeof o.headers === "object") {
    const headers: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o.headers)) {
      const lower = k.toLowerCase();
      if (MANAGED_HEADERS.has(lower) || (lower === "authorization" && authType !== "none") || Object.keys(headers).some((h) => h.toLowerCase() === lower)) continue;
      Object.defineProperty(headers, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    o.headers = headers;
  }
  return { ...o };
}

function hintsFor(op: Operation): PlanHints {
  const params: Record<string, fc.Arbitrary<unknown>> = {};
  for (const p of op.params) {
    const key = `${p.in}:${p.name}`;
    const own = plainArbs.valid(p.schemaPointer);
    if (p.in === "path" && p.name === "id") {
      const record = (pool: "live" | "deleted" | "foreign") => fc.nat().map((index) => ({ placeholder: "record" as const, pool, index }));
      params[key] = fc.oneof({ arbitrary: record("live"), weight: 12 }, { arbitrary: record("deleted"), weight: 2 }, { arbitrary: record("foreign"), weight: 2 }, { arbitrary: own, weight: 3 });
    } else if (p.name === "workspaceId") params[key] = workspaceArb(p.schemaPointer);
    else if (p.in === "query" && ISSUERS[p.name]) params[key] = fc.oneof({ arbitrary: fc.constant({ placeholder: "issued" as const, param: p.name }), weight: 3 }, { arbitrary: own, weight: 1 });
    else if (p.name.toLowerCase() === "if-match") {
      params[key] = fc.oneof(
        { arbitrary: fc.constant({ placeholder: "etag" as const, which: "current" as const }), weight: 4 },
        { arbitrary: fc.constant({ placeholder: "etag" as const, which: "stale" as const }), weight: 2 },
        { arbitrary: fc.constant("*"), weight: 1 },
        { arbitrary: own, weight: 1 },
      );
    } else if (p.name.toLowerCase() === "idempotency-key") params[key] = fc.oneof({ arbitrary: own, weight: 3 }, { arbitrary: fc.constantFrom("fuzz-key-1", "fuzz-key-2"), weight: 1 });
  }
  return { params, coherent };
}

const pick = (list: string[], index: number) => (list.length === 0 ? "mcp_00000000000000000000000000" : list[index % list.length]);

function authorization(plan: RequestPlan): string | undefined {
  switch (plan.auth) {
    case "valid":
      return `Bearer ${token}`;
    case "none":
      return undefined;
    case "malformed":
      return "Bearer not a token";
    case "unknown":
      return `Bearer mcpk_${randomBytes(32).toString("base64url")}`;
    case "revoked":
      return `Bearer ${revokedToken}`;
  }
}

/** Fills the placeholders in and lays the request out as it goes on the wire; `issued` names the server-issued values used. */
async function wire(op: Operation, plan: RequestPlan): Promise<{ req: WireRequest; issued: string[] }> {
  const issued: string[] = [];
  let recordId: string | null = null;
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = plan.path[name];
    if (isPlaceholder(v) && v.placeholder === "record") return (recordId = pick(pools[v.pool], v.index));
    if (typeof v === "object" && v !== null && "rawPath" in v) return (v as { rawPath: string }).rawPath;
    return encodeURIComponent(paramText(v));
  });
  const headers: Record<string, string> = {};
  const auth = authorization(plan);
  if (auth) headers.authorization = auth;
  for (const [name, v] of Object.entries(plan.headers)) {
    if (isPlaceholder(v) && v.placeholder === "etag") {
      const row = recordId ? await srv.services.db.knex("mcp_servers").where({ id: recordId }).first("version") : undefined;
      const version = (row?.version as number | undefined) ?? 1;
      headers[name] = `"v${v.which === "current" ? version : Math.max(0, version - 1)}"`;
    } else headers[name] = paramText(v);
  }
  const query: string[] = [];
  for (const [name, v] of plan.query) {
    let text: string | null;
    if (isPlaceholder(v) && v.placeholder === "issued") {
      text = await ISSUERS[v.param](path, plan);
      if (text !== null) issued.push(v.param);
    } else text = paramText(v);
    if (text !== null) query.push(`${encodeURIComponent(name)}=${encodeURIComponent(text)}`);
  }
  let body: string | undefined;
  if (plan.body) body = "text" in plan.body ? plan.body.text : JSON.stringify(plan.body.value);
  if (plan.contentType !== null && body !== undefined) headers["content-type"] = plan.contentType;
  return { req: { method: op.method, target: path + (query.length > 0 ? `?${query.join("&")}` : ""), headers, body }, issued };
}

/** Values the server hands out, by query parameter name; null when it would not hand one out. */
const ISSUERS: Record<string, (path: string, plan: RequestPlan) => Promise<string | null>> = { cursor: issuedCursor, state: issuedState };

/** A cursor the server issued for the same listing (a page of one), or null when there is one page. */
async function issuedCursor(path: string, plan: RequestPlan): Promise<string | null> {
  const query = plan.query.filter(([n, v]) => n !== "cursor" && n !== "limit" && !isPlaceholder(v)).map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(paramText(v))}`);
  const res = await send(srv.baseUrl, { method: "GET", target: `${path}?${[...query, "limit=1"].join("&")}`, headers: { authorization: `Bearer ${token}` } });
  const next = (res.json as { nextCursor?: unknown } | undefined)?.nextCursor;
  return typeof next === "string" ? next : null;
}

/** An OAuth state from starting authorization on a record with both endpoints (no discovery, nothing dialled). */
async function issuedState(): Promise<string | null> {
  const row = await srv.services.db.knex("mcp_servers").whereIn("workspace_id", workspaces).where({ auth_type: "oauth" }).whereNotNull("oauth_authorization_endpoint").whereNotNull("oauth_token_endpoint").first("id");
  if (!row) return null;
  const res = await send(srv.baseUrl, { method: "POST", target: `/api/mcp-servers/${row.id}/oauth/authorize`, headers: { authorization: `Bearer ${token}` } });
  const url = (res.json as { authorizationUrl?: string } | undefined)?.authorizationUrl;
  return url ? new URL(url).searchParams.get("state") : null;
}

/**
 * A documented upstream failure (502/504 with an upstream problem type, or the page the
 * OAuth callback shows): the call out ran, and its outcome was recorded.
 */
function upstreamFailure(op: Operation, res: WireResponse): boolean {
  const responses = (valueAt(spec, `/paths/${op.path.replaceAll("~", "~0").replaceAll("/", "~1")}/${op.method.toLowerCase()}/responses`) ?? {}) as JsonObject;
  if ((res.status !== 502 && res.status !== 504) || !(String(res.status) in responses)) return false;
  const type = (res.json as { type?: unknown } | undefined)?.type;
  return (typeof type === "string" && type.startsWith("/problems/upstream")) || res.headers.get("content-type")?.startsWith("text/html") === true;
}

function headBytes(req: WireRequest): number {
  return Buffer.byteLength(`${req.method} ${req.target} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}`, "latin1");
}

/** The fault the server logged for this response, if it logged one. */
function serverFault(res: WireResponse): string {
  const requestId = res.headers.get("x-request-id");
  const line = requestId ? srv.logs.find((l) => l.includes(requestId) && /"level":5\d/.test(l)) : undefined;
  if (!line) return "";
  const err = (JSON.parse(line) as { err?: { type?: string; message?: string; code?: string } }).err;
  const message = err?.message ?? "";
  // A driver error repeats the whole statement first; what went wrong is at the end.
  const cut = message.lastIndexOf(" - ");
  return `\nserver logged: ${err?.type ?? "error"}${err?.code ? ` ${err.code}` : ""}: ${(cut >= 0 ? message.slice(cut + 3) : message).slice(0, 300)}`;
}

async function exercise(op: Operation, plan: RequestPlan) {
  const { req, issued } = await wire(op, plan);
  // A cursor the server would not issue (the listing has one page) is left out of the request: judge what was sent.
  const sent = { ...plan, query: plan.query.filter(([n, v]) => !(isPlaceholder(v) && v.placeholder === "issued" && !issued.includes(n))) };
  const breaks = contractBreaks(op, sent, arbs);
  const before = await storeSnapshot(srv);
  let res: WireResponse;
  try {
    res = await send(srv.baseUrl, req);
  } catch (err) {
    if (err instanceof Unsendable) {
      kinds.add(op.operationId, "unsendable");
      return;
    }
    throw err;
  }
  statuses.add(op.operationId, res.status);
  kinds.add(op.operationId, plan.mutation === null ? "valid" : "broken");
  if (breaks.length > 0) kinds.add(op.operationId, "breaks-contract");

  const problems: string[] = [];
  const upstream = upstreamFailure(op, res);
  // Node's HTTP parser refuses a request head over the server's limit with a bare 431 before
  // the app sees it; the limit leaves room for every spec-valid query, so only a longer head may get it.
  const headTooLarge = res.status === 431 && headBytes(req) > MAX_HEADER_BYTES;
  if (headTooLarge) kinds.add(op.operationId, "head-over-limit");
  if (res.status >= 500 && !upstream) problems.push(`answered ${res.status}`);
  try {
    if (!headTooLarge) validate(res, op.operationId, res.status);
  } catch (err) {
    problems.push(`response breaks the spec: ${(err as Error).message}`);
  }
  const problemStatus = (res.json as { status?: unknown } | undefined)?.status;
  if (res.headers.get("content-type")?.startsWith("application/problem+json") && problemStatus !== res.status) {
    problems.push(`problem body says status ${String(problemStatus)}, the response is ${res.status}`);
  }
  if (breaks.length > 0 && res.status < 400) problems.push(`accepted a request that breaks the contract: ${breaks.join("; ")}`);
  // A live OAuth state is single-use: the callback consumes it and records the outcome, even a failed one.
  const consumesState = issued.includes("state");
  if (res.status >= 400 && !upstream && !consumesState) {
    const diff = snapshotDiff(before, await storeSnapshot(srv));
    if (diff) problems.push(`refused with ${res.status}, yet the store changed:\n${diff}`);
  }

  if (op.method === "DELETE" && res.status === 204 && /\/api\/mcp-servers\/[^/]+$/.test(op.path)) {
    const id = decodeURIComponent(req.target.split("?")[0].split("/").pop()!);
    pools.live = pools.live.filter((x) => x !== id);
    pools.deleted.push(id);
  }
  if (op.operationId === "createMcpServer" && res.status === 201) pools.live.push((res.json as { id: string }).id);

  if (problems.length > 0) {
    const message = `${op.operationId} (${plan.mutation ?? "valid request"}): ${problems.join("\n")}\n${describeExchange(req, res)}${serverFault(res)}`;
    if (!KEEP_GOING) throw new Error(message);
    failures.push(message);
  }
}

describe("fuzzing every operation of openapi.yaml", () => {
  test.each(operations.map((op) => [`${op.method} ${op.path} (${op.operationId})`, op] as const))(
    "%s: when valid and broken requests come, then no 5xx, every answer as documented, broken ones refused, refusals change nothing",
    async (_label, op) => {
      const { valid, invalid } = requestArbitraries(op, arbs, hintsFor(op));
      await fc.assert(
        fc.asyncProperty(valid, invalid, async (good, broken) => {
          await ensurePool();
          await exercise(op, good);
          await exercise(op, broken);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    },
    60_000 + RUNS * 1_000,
  );

  test.runIf(KEEP_GOING)("then no failure was collected along the way", () => {
    expect(failures).toEqual([]);
  });
});
