// A bounded mixed workload against the running server: creates (colliding names, retried
// Idempotency-Keys), reads, paged lists, patches and secret changes (several writers on the
// same records, with and without If-Match) and deletes, across tokens and workspaces. Then
// the store itself is checked: unique names, no orphaned secrets, every acknowledged write
// there, no value nobody wrote, an audit event per write, and no 5xx along the way.
//
// Bounded in count and time: SOAK_OPS (default 1500) operations or SOAK_MS (default 20000)
// milliseconds, whichever ends first; SOAK_SEED picks the mix. Loopback only.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { responseValidator, type ValidateResponse } from "./contract/validate-response.js";
import { describeExchange, send, Tally, type WireRequest, type WireResponse } from "./fuzz/harness.js";
import { startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const OPS = Number(process.env.SOAK_OPS ?? 1500);
const TIME_CAP_MS = Number(process.env.SOAK_MS ?? 20_000);
const SEED = Number(process.env.SOAK_SEED ?? 20261124);
const WORKERS = 8;
const NAMES_PER_WORKSPACE = 24;

/** mulberry32: a small seeded generator, so a run's mix can be asked for again. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)],
  };
}
type Rng = ReturnType<typeof rng>;

/** What the server acknowledged (2xx) about one record. */
interface Acked {
  workspaceId: string;
  names: Set<string>;
  apiKeys: Set<string>;
  clientSecrets: Set<string>;
  /** Versions named by the ETags of acknowledged creates and patches. */
  versions: Set<number>;
  deleted: boolean;
}

interface Caller {
  token: string;
  user: string;
  workspaces: string[];
}

let srv: TestServer;
let validate: ValidateResponse;
let callers: Caller[];
const workspaces = [uniqueWorkspace("soak"), uniqueWorkspace("soak"), uniqueWorkspace("soak")];
const acked = new Map<string, Acked>();
const hot = new Map<string, string[]>(); // workspace → records several writers patch at once
const ops = new Tally();
const faults: string[] = [];
let started = 0;
let finished = 0;
let issued = 0;
let requests = 0;

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_RATE_LIMIT: "1000000", MCP_API_CONNECT_TIMEOUT_MS: "1000", LOG_LEVEL: "warn" } });
  validate = responseValidator();
  const plan: [string, string[]][] = [
    ["usr_soak_a", [workspaces[0]]],
    ["usr_soak_b", [workspaces[1]]],
    ["usr_soak_c", [workspaces[2]]],
    ["usr_soak_d", [workspaces[0], workspaces[1]]],
  ];
  callers = await Promise.all(plan.map(async ([user, ws]) => ({ token: await srv.token(ws, user), user, workspaces: ws })));
});

afterAll(async () => {
  await srv?.stop();
});

const OPERATION: Record<string, string> = {
  "POST /api/mcp-servers": "createMcpServer",
  "GET /api/mcp-servers": "listMcpServers",
  "GET /api/mcp-servers/{id}": "getMcpServer",
  "PATCH /api/mcp-servers/{id}": "updateMcpServer",
  "DELETE /api/mcp-servers/{id}": "deleteMcpServer",
};

async function call(kind: string, caller: Caller, method: string, target: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<WireResponse> {
  const req: WireRequest = { method, target, headers: { authorization: `Bearer ${caller.token}`, ...options.headers } };
  if (options.body !== undefined) {
    req.body = JSON.stringify(options.body);
    req.headers["content-type"] = "application/json";
  }
  requests++;
  const res = await send(srv.baseUrl, req);
  ops.add(kind, res.status);
  const route = `${method} ${target.split("?")[0].replace(/^\/api\/mcp-servers\/[^/]+$/, "/api/mcp-servers/{id}")}`;
  if (res.status >= 500) faults.push(`${kind}: answered ${res.status}\n${describeExchange(req, res)}`);
  try {
    validate(res, OPERATION[route], res.status);
  } catch (err) {
    faults.push(`${kind}: ${(err as Error).message}\n${describeExchange(req, res)}`);
  }
  return res;
}

const versionOf = (res: WireResponse) => Number(/^"v(\d+)"$/.exec(res.headers.get("etag") ?? "")?.[1] ?? NaN);

function ack(id: string, workspaceId: string): Acked {
  let a = acked.get(id);
  if (!a) {
    a = { workspaceId, names: new Set(), apiKeys: new Set(), clientSecrets: new Set(), versions: new Set(), deleted: false };
    acked.set(id, a);
  }
  return a;
}

/** A name from a small pool per workspace, in a random letter case: creates and renames collide. */
function name(r: Rng): string {
  const base = `soak-${r.int(NAMES_PER_WORKSPACE)}`;
  return r.chance(0.3) ? base.toUpperCase() : base;
}

/** Records the caller can reach, hot ones first when asked. */
function target(r: Rng, caller: Caller, preferHot: boolean): { id: string; workspaceId: string } | null {
  const ws = r.pick(caller.workspaces);
  const hotIds = (hot.get(ws) ?? []).filter((id) => !acked.get(id)?.deleted);
  if (preferHot && hotIds.length > 0 && r.chance(0.75)) return { id: r.pick(hotIds), workspaceId: ws };
  const ids = [...acked].filter(([, a]) => a.workspaceId === ws && (!a.deleted || r.chance(0.05))).map(([id]) => id);
  return ids.length === 0 ? null : { id: r.pick(ids), workspaceId: ws };
}

async function create(r: Rng, caller: Caller, worker: number, n: number) {
  const workspaceId = r.pick(caller.workspaces);
  const authType = r.pick(["none", "api_key", "oauth"] as const);
  const body: Record<string, unknown> = { workspaceId, name: name(r), url: `http://127.0.0.1:9/mcp/${worker}-${n}` };
  if (authType === "api_key") Object.assign(body, { authType, apiKey: `sk_${worker}_${n}` });
  if (authType === "oauth") Object.assign(body, { authType, oauthClientId: `client-${worker}`, oauthClientSecret: `cs_${worker}_${n}`, oauthTokenEndpoint: "http://127.0.0.1:9/token" });
  if (r.chance(0.3)) body.connectorConfig = { conn: n };
  const key = r.chance(0.35) ? `soak-${worker}-${n}` : null;
  const headers: Record<string, string> = key ? { "idempotency-key": key } : {};
  const attempts = key && r.chance(0.5) ? (r.chance(0.5) ? 2 : 3) : 1;
  // Retries of one key: sometimes one after the other, sometimes at once.
  const responses = r.chance(0.5)
    ? await Promise.all(Array.from({ length: attempts }, () => call(key ? "create (idempotent)" : "create", caller, "POST", "/api/mcp-servers", { body, headers })))
    : await (async () => {
        const out: WireResponse[] = [];
        for (let i = 0; i < attempts; i++) out.push(await call(key ? "create (idempotent)" : "create", caller, "POST", "/api/mcp-servers", { body, headers }));
        return out;
      })();
  const ids = new Set<string>();
  for (const res of responses) {
    if (res.status !== 201) continue;
    const created = res.json as { id: string };
    ids.add(created.id);
    const a = ack(created.id, workspaceId);
    a.names.add(body.name as string);
    a.versions.add(versionOf(res));
    if (typeof body.apiKey === "string") a.apiKeys.add(body.apiKey);
    if (typeof body.oauthClientSecret === "string") a.clientSecrets.add(body.oauthClientSecret);
    const list = hot.get(workspaceId) ?? [];
    if (list.filter((id) => !acked.get(id)?.deleted).length < 3 && !list.includes(created.id)) hot.set(workspaceId, [...list, created.id]);
  }
  if (ids.size > 1) faults.push(`create with Idempotency-Key ${key} made ${ids.size} records: ${[...ids].join(", ")}`);
}

async function get(r: Rng, caller: Caller) {
  const t = target(r, caller, false);
  if (!t) return;
  await call("get", caller, "GET", `/api/mcp-servers/${t.id}`);
}

async function list(r: Rng, caller: Caller) {
  const ws = r.pick(caller.workspaces);
  const limit = 1 + r.int(10);
  let cursor: string | null = null;
  const seen = new Set<string>();
  for (let page = 0; page < 6; page++) {
    const query: string = `workspaceId=${ws}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await call("list", caller, "GET", `/api/mcp-servers?${query}`);
    if (res.status !== 200) return;
    const body = res.json as { data: { id: string; workspaceId: string }[]; nextCursor: string | null };
    for (const s of body.data) {
      if (s.workspaceId !== ws) faults.push(`list of ${ws} returned ${s.id} of ${s.workspaceId}`);
      // Newest first by id: under concurrent creates a page may miss newer records, never repeat one.
      if (seen.has(s.id)) faults.push(`list of ${ws} returned ${s.id} twice while paging`);
      seen.add(s.id);
    }
    if (!body.nextCursor) return;
    cursor = body.nextCursor;
  }
}

/** A patch to a record: rename (colliding names), url, connector, headers, or credentials. */
function patchBody(r: Rng, worker: number, n: number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (r.chance(0.5)) body.name = name(r);
  if (r.chance(0.3)) body.url = `http://127.0.0.1:9/mcp/p${worker}-${n}`;
  if (r.chance(0.3)) body.connectorConfig = r.chance(0.3) ? null : { conn: `${worker}-${n}` };
  if (r.chance(0.2)) body.headers = r.chance(0.3) ? null : { "X-Worker": String(worker) };
  if (Object.keys(body).length === 0) body.connectorConfig = { worker, n };
  return body;
}

function acknowledgePatch(id: string, workspaceId: string, body: Record<string, unknown>, res: WireResponse) {
  if (res.status !== 200) return;
  const a = ack(id, workspaceId);
  if (typeof body.name === "string") a.names.add(body.name);
  if (typeof body.apiKey === "string") a.apiKeys.add(body.apiKey);
  if (typeof body.oauthClientSecret === "string") a.clientSecrets.add(body.oauthClientSecret);
  a.versions.add(versionOf(res));
}

async function patch(r: Rng, caller: Caller, worker: number, n: number) {
  const t = target(r, caller, true);
  if (!t) return;
  const body = patchBody(r, worker, n);
  const headers: Record<string, string> = {};
  if (r.chance(0.4)) {
    const read = await call("get (for If-Match)", caller, "GET", `/api/mcp-servers/${t.id}`);
    if (read.status !== 200) return;
    headers["if-match"] = read.headers.get("etag")!;
  }
  const res = await call(headers["if-match"] ? "patch (If-Match)" : "patch", caller, "PATCH", `/api/mcp-servers/${t.id}`, { body, headers });
  acknowledgePatch(t.id, t.workspaceId, body, res);
}

/** Several writers patch one record at once from the same read: with If-Match at most one may win. */
async function race(r: Rng, caller: Caller, worker: number, n: number) {
  const t = target(r, caller, true);
  if (!t) return;
  const read = await call("get (for If-Match)", caller, "GET", `/api/mcp-servers/${t.id}`);
  if (read.status !== 200) return;
  const etag = read.headers.get("etag")!;
  const writers = Array.from({ length: 3 + r.int(3) }, (_, i) => ({
    body: { connectorConfig: { race: `${worker}-${n}-${i}` }, ...(r.chance(0.3) ? { name: name(r) } : {}) },
    headers: r.chance(0.5) ? { "if-match": etag } : ({} as Record<string, string>),
  }));
  const results = await Promise.all(writers.map((w) => call(w.headers["if-match"] ? "race patch (If-Match)" : "race patch", caller, "PATCH", `/api/mcp-servers/${t.id}`, w)));
  writers.forEach((w, i) => acknowledgePatch(t.id, t.workspaceId, w.body, results[i]));
  const winners = results.filter((res, i) => res.status === 200 && writers[i].headers["if-match"]);
  if (winners.length > 1) faults.push(`${winners.length} patches with If-Match ${etag} on ${t.id} all succeeded: a lost update`);
}

/** Sets, replaces or clears the API key, switching authType when needed. */
async function secrets(r: Rng, caller: Caller, worker: number, n: number) {
  const t = target(r, caller, true);
  if (!t) return;
  const choice = r.int(4);
  const key = `sk_${worker}_${n}_p`;
  const body: Record<string, unknown> =
    choice === 0 ? { authType: "api_key", apiKey: key } : choice === 1 ? { apiKey: key } : choice === 2 ? { authType: "none" } : { apiKey: null };
  const res = await call(["secret: switch to api_key", "secret: replace", "secret: switch to none", "secret: clear"][choice], caller, "PATCH", `/api/mcp-servers/${t.id}`, { body });
  acknowledgePatch(t.id, t.workspaceId, body, res);
}

async function remove(r: Rng, caller: Caller) {
  const t = target(r, caller, r.chance(0.2));
  if (!t) return;
  const headers: Record<string, string> = {};
  if (r.chance(0.3)) {
    const read = await call("get (for If-Match)", caller, "GET", `/api/mcp-servers/${t.id}`);
    if (read.status === 200) headers["if-match"] = read.headers.get("etag")!;
  }
  const res = await call(headers["if-match"] ? "delete (If-Match)" : "delete", caller, "DELETE", `/api/mcp-servers/${t.id}`, { headers });
  if (res.status === 204) ack(t.id, t.workspaceId).deleted = true;
}

const MIX: [number, (r: Rng, caller: Caller, worker: number, n: number) => Promise<void>][] = [
  [22, create],
  [14, (r, c) => get(r, c)],
  [8, (r, c) => list(r, c)],
  [26, patch],
  [8, race],
  [12, secrets],
  [10, (r, c) => remove(r, c)],
];
const MIX_TOTAL = MIX.reduce((s, [w]) => s + w, 0);

async function worker(index: number) {
  const r = rng(SEED + index);
  for (let n = 0; ; n++) {
    if (issued >= OPS || performance.now() - started > TIME_CAP_MS) return;
    issued++;
    let roll = r.int(MIX_TOTAL);
    const [, op] = MIX.find(([w]) => (roll -= w) < 0)!;
    await op(r, r.pick(callers), index, n);
  }
}

describe("soak: a mixed concurrent workload, then the store checked", () => {
  test("when 8 workers create, read, list, patch and delete at once, then the store stays consistent", async () => {
    started = performance.now();
    await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));
    finished = performance.now();

    const knex = srv.services.db.knex;
    const rows: Record<string, any>[] = await knex("mcp_servers").whereIn("workspace_id", workspaces).select();
    const events: { server_id: string; type: string }[] = await knex("audit_events").whereIn("workspace_id", workspaces).select("server_id", "type");
    const problems: string[] = [];

    // No duplicate names, compared case-insensitively per workspace; name_key follows name.
    const byName = new Map<string, string>();
    for (const row of rows) {
      const key = `${row.workspace_id}/${String(row.name).toLowerCase()}`;
      if (byName.has(key)) problems.push(`duplicate name ${key}: ${byName.get(key)} and ${row.id}`);
      byName.set(key, row.id);
      if (row.name_key !== String(row.name).toLowerCase()) problems.push(`${row.id}: name_key ${row.name_key} does not follow name ${row.name}`);
    }

    // No orphaned secrets: each secret belongs to the record's authType, and opens.
    for (const row of rows) {
      if (row.api_key_enc !== null && row.auth_type !== "api_key") problems.push(`${row.id}: an API key is stored on an ${row.auth_type} record`);
      if (row.api_key_enc === null && row.auth_type === "api_key") problems.push(`${row.id}: an api_key record without an API key`);
      for (const col of ["oauth_client_secret_enc", "oauth_access_token_enc", "oauth_refresh_token_enc", "oauth_client_id", "oauth_token_endpoint", "oauth_scopes"]) {
        if (row[col] !== null && row.auth_type !== "oauth") problems.push(`${row.id}: ${col} is set on an ${row.auth_type} record`);
      }
      try {
        const opened = await srv.services.servers.openSecrets(row.workspace_id, row.id);
        const a = acked.get(row.id);
        if (opened.apiKey !== null && a && !a.apiKeys.has(opened.apiKey)) problems.push(`${row.id}: the stored API key is none that was acknowledged`);
        if (opened.oauthClientSecret !== null && a && !a.clientSecrets.has(opened.oauthClientSecret)) problems.push(`${row.id}: the stored client secret is none that was acknowledged`);
      } catch (err) {
        problems.push(`${row.id}: a stored secret does not open: ${(err as Error).message}`);
      }
    }

    // Every acknowledged create is there unless an acknowledged delete removed it, and nothing else is.
    const present = new Map(rows.map((row) => [row.id as string, row]));
    for (const [id, a] of acked) {
      if (!a.deleted && !present.has(id)) problems.push(`${id}: acknowledged, never deleted, but missing`);
      if (a.deleted && present.has(id)) problems.push(`${id}: deleted (204) but still there`);
    }
    for (const id of present.keys()) if (!acked.has(id)) problems.push(`${id}: present, but no create of it was acknowledged`);

    // No value that nobody wrote; no acknowledged version rolled back; one audit event per write.
    const eventCount = new Map<string, number>();
    const deletedEvents = new Set<string>();
    for (const e of events) {
      eventCount.set(e.server_id, (eventCount.get(e.server_id) ?? 0) + 1);
      if (e.type === "deleted") deletedEvents.add(e.server_id);
    }
    for (const [id, a] of acked) {
      const row = present.get(id);
      const writes = a.versions.size + (a.deleted ? 1 : 0);
      const n = eventCount.get(id) ?? 0;
      if (n < writes) problems.push(`${id}: ${writes} acknowledged write(s) but ${n} audit event(s)`);
      if (a.deleted && !deletedEvents.has(id)) problems.push(`${id}: deleted without a deleted event`);
      if (!row) continue;
      if (!a.names.has(row.name)) problems.push(`${id}: name ${JSON.stringify(row.name)} was never acknowledged (acknowledged: ${[...a.names].join(", ")})`);
      if (row.version < Math.max(...a.versions)) problems.push(`${id}: at version ${row.version}, below the acknowledged v${Math.max(...a.versions)}`);
      if (n !== row.version) problems.push(`${id}: version ${row.version} but ${n} audit event(s); every write records one`);
    }

    const seconds = (finished - started) / 1000;
    console.log(
      [
        `soak: ${issued} operations, ${requests} requests in ${seconds.toFixed(1)} s (${(requests / seconds).toFixed(0)} req/s), ${WORKERS} workers, store ${srv.services.db.dialect}`,
        `soak: ${acked.size} records acknowledged, ${[...acked.values()].filter((a) => a.deleted).length} deleted, ${rows.length} in the store, ${events.length} audit events`,
        ops.format("soak: statuses per kind of request"),
      ].join("\n"),
    );
    expect(faults, faults.slice(0, 5).join("\n\n")).toEqual([]);
    expect(problems).toEqual([]);
    expect(issued).toBeGreaterThan(0);
  }, TIME_CAP_MS + 60_000);
});
