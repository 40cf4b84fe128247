// Shared pieces of the benchmark: stores seeded outside the server, server processes,
// CPU accounting from /proc, and one autocannon phase with exact latencies.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import Database from "better-sqlite3";
import pg from "pg";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { createSecretBox, originOf, parseKey } from "../server/data/secrets.js";
import { namespaceOf } from "../server/domain/names.js";

export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
export const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux; /proc/<pid>/stat counts in these ticks

export function newEncryptionKey(): string {
  return randomBytes(32).toString("base64");
}

const silent = createLogger("silent");

/** Migrates the store and mints a token through the product's own composition root. */
export async function migrateAndMint(databaseUrl: string, key: string, workspaces: string[]): Promise<{ token: string; tokenId: string }> {
  const services = await openServices(
    readConfig({ DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: key, LOG_LEVEL: "silent" }),
    silent,
  );
  try {
    const { token, record } = await services.tokens.mint({ userId: "usr_bench", workspaces, name: "bench" });
    return { token, tokenId: record.id };
  } finally {
    await services.db.close();
  }
}

type Row = Record<string, string | number | null>;

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID for time `ms` with 16 random characters from `random` (ulid's own PRNG reads one byte per character: too slow for 100,000). */
function ulidAt(ms: number, random: Buffer, offset: number): string {
  let time = "";
  for (let i = 0; i < 10; i++, ms = Math.floor(ms / 32)) time = CROCKFORD[ms % 32] + time;
  let rand = "";
  for (let i = 0; i < 16; i++) rand += CROCKFORD[random[offset + i] & 31];
  return time + rand;
}

/**
 * Seed rows as the migration's columns; every second record has a real sealed API key.
 * `namespaces`: fill the namespace column as the product's create does (the workspace
 * endpoint's lookup reads it; the REST rows never do, so their seed leaves it null).
 */
function* seedRows(count: number, workspaceId: string, key: string, namespaces = false): Generator<Row> {
  const box = createSecretBox([parseKey(key, "bench key")]);
  const random = randomBytes(16 * count);
  const start = Date.now() - 86_400_000 - count; // a day ago, one millisecond apart: ids sort as created
  const headers = JSON.stringify({ "X-Team": "platform" });
  const config = JSON.stringify({ repo: "acme/tools", branch: "main" });
  for (let i = 0; i < count; i++) {
    const id = `mcp_${ulidAt(start + i, random, 16 * i)}`;
    const at = new Date(start + i).toISOString();
    const apiKey = i % 2 === 0;
    const name = `seed-${String(i).padStart(6, "0")}`;
    const url = `https://mcp${i % 97}.example.com/mcp`;
    yield {
      id,
      workspace_id: workspaceId,
      name,
      name_key: name,
      ...(namespaces ? { namespace: namespaceOf(name) } : {}),
      url,
      auth_type: apiKey ? "api_key" : "none",
      // Bound to the server's origin as the product seals it (older ciphertexts are re-sealed at start-up).
      api_key_enc: apiKey ? box.seal(`sk_live_${i}`, { recordId: id, workspaceId, field: "apiKey", origin: originOf(url) }) : null,
      oauth_client_id: null,
      oauth_client_secret_enc: null,
      oauth_token_endpoint: null,
      oauth_authorization_endpoint: null,
      oauth_scopes: null,
      oauth_access_token_enc: null,
      oauth_refresh_token_enc: null,
      oauth_expires_at: null,
      headers,
      connector_id: null, // a connectorId must name a catalog entry; connectorConfig alone stays free-form
      connector_config: config,
      connector_status: "",
      last_checked_at: null,
      last_error: null,
      created_by: "usr_bench",
      created_at: at,
      updated_at: at,
      version: 1,
    };
  }
}

/** Seeds an SQLite file (already migrated) with better-sqlite3 in one transaction. */
export function seedSqlite(path: string, workspaceId: string, count: number, key: string, opts: { namespaces?: boolean } = {}): string[] {
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    const rows = seedRows(count, workspaceId, key, opts.namespaces);
    const first = rows.next().value as Row;
    const columns = Object.keys(first);
    const insert = db.prepare(`INSERT INTO mcp_servers (${columns.join(", ")}) VALUES (${columns.map((c) => "@" + c).join(", ")})`);
    const ids: string[] = [];
    db.transaction(() => {
      insert.run(first);
      ids.push(first.id as string);
      for (const row of rows) {
        insert.run(row);
        ids.push(row.id as string);
      }
    })();
    db.pragma("wal_checkpoint(TRUNCATE)");
    db.exec("ANALYZE");
    return ids;
  } finally {
    db.close();
  }
}

/** Seeds PostgreSQL (already migrated) with column arrays through unnest, 10,000 rows a statement, in one transaction. */
export async function seedPostgres(url: string, workspaceId: string, count: number, key: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const ids: string[] = [];
    await client.query("BEGIN");
    let batch: Row[] = [];
    const flush = async () => {
      const columns = Object.keys(batch[0]);
      const arrays = columns.map((c) => batch.map((r) => r[c]));
      const types = columns.map((c) => (c === "version" ? "int[]" : "text[]"));
      await client.query(
        `INSERT INTO mcp_servers (${columns.join(", ")}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}`).join(", ")})`,
        arrays,
      );
      batch = [];
    };
    for (const row of seedRows(count, workspaceId, key)) {
      batch.push(row);
      ids.push(row.id as string);
      if (batch.length === 10_000) await flush();
    }
    if (batch.length) await flush();
    await client.query("COMMIT");
    await client.query("ANALYZE mcp_servers");
    return ids;
  } finally {
    await client.end();
  }
}

/** Removes what the bench wrote to PostgreSQL: rows of its workspaces and token in any table that has such a column. */
export async function cleanupPostgres(url: string, workspaces: string[], tokenId: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND column_name IN ('workspace_id', 'token_id', 'bucket')`,
    );
    // Dependants first, the records and the token last.
    const rank = (t: string) => (t === "mcp_servers" ? 1 : t === "api_tokens" ? 2 : 0);
    rows.sort((a, b) => rank(a.table_name) - rank(b.table_name));
    await client.query("BEGIN");
    for (const { table_name: table, column_name: column } of rows) {
      const values = column === "workspace_id" ? workspaces : column === "token_id" ? [tokenId] : [`token:${tokenId}`];
      await client.query(`DELETE FROM "${table}" WHERE "${column}" = ANY($1)`, [values]);
    }
    await client.query("DELETE FROM api_tokens WHERE id = $1", [tokenId]);
    await client.query("COMMIT");
  } finally {
    await client.end();
  }
}

/** One member of a bench workspace; `expiredOAuth`: an OAuth record whose access token expired an hour ago, with a refresh token, renewed at `tokenEndpoint`. */
export interface SeedMember {
  workspaceId: string;
  name: string;
  url: string;
  expiredOAuth?: { tokenEndpoint: string };
}

/**
 * Creates records through the product's own use case (before the server starts), and for an
 * expired OAuth member seals tokens as a completed authorization would have left them, an
 * hour past their expiry, so that the first use must refresh them. Returns the record ids.
 */
export async function seedMembers(databaseUrl: string, key: string, tokenId: string, members: SeedMember[]): Promise<string[]> {
  const services = await openServices(readConfig({ DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: key, LOG_LEVEL: "silent" }), silent);
  try {
    const actor = { tokenId, userId: "usr_bench", workspaces: [...new Set(members.map((m) => m.workspaceId))], scope: "admin" as const };
    const ids: string[] = [];
    for (const m of members) {
      const oauth = m.expiredOAuth;
      const created = await services.servers.create(actor, {
        workspaceId: m.workspaceId,
        name: m.name,
        url: m.url,
        ...(oauth
          ? { authType: "oauth", oauthClientId: "bench-client", oauthClientSecret: "bench-client-secret", oauthTokenEndpoint: oauth.tokenEndpoint, oauthAuthorizationEndpoint: `${originOf(oauth.tokenEndpoint)}/authorize` }
          : {}),
      });
      const id = created.server.id;
      ids.push(id);
      if (!oauth) continue;
      const seal = (field: "oauthAccessToken" | "oauthRefreshToken", value: string) => services.box.seal(value, { recordId: id, workspaceId: m.workspaceId, field, origin: originOf(m.url) });
      const hour = 3_600_000;
      await services.db
        .knex("mcp_servers")
        .where({ id })
        .update({
          oauth_access_token_enc: seal("oauthAccessToken", `bench-access-${id}`),
          oauth_refresh_token_enc: seal("oauthRefreshToken", `bench-refresh-${id}`),
          oauth_obtained_at: new Date(Date.now() - 2 * hour).toISOString(),
          oauth_expires_at: new Date(Date.now() - hour).toISOString(),
          // As a finished discovery leaves it: the renewal goes straight to the token endpoint.
          oauth_issuer: originOf(oauth.tokenEndpoint),
          oauth_token_auth_method: "client_secret_basic",
          connector_status: "connected",
        });
    }
    return ids;
  } finally {
    await services.db.close();
  }
}

/** A loopback HTTP server that takes requests and never answers them: a hanging token endpoint or MCP upstream. */
export async function startHangingServer(): Promise<{ origin: string; seen: () => string[]; reset: () => void; close: () => Promise<void> }> {
  let seen: string[] = [];
  const srv = createServer((req) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen: () => seen,
    reset: () => void (seen = []),
    close: () => {
      srv.closeAllConnections();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** One HTTP request to 127.0.0.1 without keep-alive. */
export function httpJson(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { host: "127.0.0.1", port, method, path, agent: false, timeout: 10_000, headers: { ...headers, ...(payload ? { "content-type": "application/json" } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export interface ServerProcess {
  name: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Spawn to the first 200 from GET /healthz. */
  startupMs: number;
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<ServerProcess>();
// The CPU of the servers already stopped, read just before each was stopped (benchChildrenCpuMicros).
let stoppedCpuUs = 0;

/** Spawns `node [nodeArgs] <script.js>` or `node [nodeArgs] --import tsx <script.ts>` (no npx wrapper: child.pid is the server) and waits for /healthz. */
export async function startServer(
  name: string,
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<ServerProcess> {
  const port = await freePort();
  let out = "";
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, ...(script.endsWith(".js") ? [] : ["--import", "tsx"]), script], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (c: Buffer) => {
    out = (out + c.toString("utf8")).slice(-8000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));

  const server: ServerProcess = {
    name,
    port,
    pid: child.pid!,
    child,
    startupMs: NaN,
    output: () => out,
    async stop() {
      running.delete(server);
      if (exited) return;
      try {
        stoppedCpuUs += cpuMicros(child.pid!);
      } catch {
        // already gone
      }
      child.kill("SIGTERM");
      const killed = await Promise.race([exit.then(() => true), sleep(5000).then(() => false)]);
      if (!killed) {
        child.kill("SIGKILL");
        await exit;
      }
    },
  };
  running.add(server);

  // A generous limit: on a loaded shared machine start-up takes seconds (it is reported, not bounded here).
  for (const deadline = performance.now() + 60_000; performance.now() < deadline; ) {
    if (exited) throw new Error(`${name} exited during start-up:\n${out}`);
    try {
      const res = await httpJson(port, "GET", "/healthz");
      if (res.status === 200) {
        server.startupMs = performance.now() - t0;
        return server;
      }
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  await server.stop();
  throw new Error(`${name} did not answer /healthz within the start-up limit:\n${out}`);
}

/** Stops every server still running (also used on error and on SIGINT). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}

/** All the CPU the servers of this run used so far (running and stopped), in microseconds. */
export function benchChildrenCpuMicros(): number {
  let total = stoppedCpuUs;
  for (const s of running) {
    try {
      total += cpuMicros(s.pid);
    } catch {
      // exited between the set and the read
    }
  }
  return total;
}

/**
 * The machine's busy time on all CPUs (user, nice and system in /proc/stat), in microseconds.
 * Interrupt time is left out: it is not charged to any process's /proc/<pid>/stat, and
 * loopback traffic between the bench's own processes makes most of it.
 */
export function machineBusyMicros(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/);
  return ((Number(fields[1]) + Number(fields[2]) + Number(fields[3])) * 1e6) / CLK_TCK;
}

/** The CPU of every live process whose name (comm) is `comm`, in microseconds: PostgreSQL's server and backends. */
export function cpuMicrosByName(comm: string): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) === comm) total += cpuMicros(Number(entry));
    } catch {
      // exited while listed
    }
  }
  return total;
}

/** utime + stime of a process, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
  const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15
  return (ticks * 1e6) / CLK_TCK;
}

export interface RequestSpec {
  method: "GET" | "POST" | "PATCH";
  /** Headers besides Authorization and Content-Type (the MCP requests' Accept and protocol version). */
  headers?: Record<string, string>;
  /** Called for every request: path and body may vary. */
  next(): { path: string; body?: string };
  /** A 2xx answer that still failed (a JSON-RPC error in an MCP answer): counted in `errors`, its first text kept in `firstError`. */
  failed?(body: string): boolean;
}

export interface PhaseResult {
  requests: number;
  non2xx: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  cpuUsPerRequest: number;
  statusCodes: Record<string, number>;
  /** The first answer `failed` caught, cut to 300 characters. */
  firstError?: string;
  /** The measured run on the monotonic clock, in µs (to cut a --cpu-prof profile to it). */
  windowUs: { from: number; to: number };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

interface Failures {
  count: number;
  first?: string;
}

function cannon(port: number, token: string, spec: RequestSpec, seconds: number, connections: number, record?: number[], overallRate?: number, failures?: Failures, amount?: number) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...spec.headers };
  const failed = spec.failed;
  // autocannon keeps answers' bodies only for an onResponse: only when asked.
  const onResponse =
    failed && failures
      ? (status: number, body: string) => {
          if (status >= 300 || !failed(body)) return;
          failures.count++;
          failures.first ??= body.slice(0, 300);
        }
      : undefined;
  if (spec.method !== "GET") headers["content-type"] = "application/json";
  return new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections,
        // With an amount, autocannon stops after that many requests; `seconds` then caps it (below).
        ...(amount ? { amount } : { duration: seconds }),
        timeout: 10,
        ...(overallRate ? { overallRate } : {}),
        requests: [
          {
            method: spec.method,
            headers,
            setupRequest: (req) => {
              const { path, body } = spec.next();
              return { ...req, path, ...(body === undefined ? {} : { body }) };
            },
            ...(onResponse ? { onResponse } : {}),
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    if (amount) {
      const cap = setTimeout(() => instance.stop(), seconds * 1000);
      instance.once("done", () => clearTimeout(cap));
    }
    // autocannon's own histogram keeps whole milliseconds; keep exact ones for p50/p99.
    if (record) instance.on("response", (_client, _status, _bytes, responseTime) => record.push(responseTime));
  });
}

function summary(result: autocannon.Result, latencies: number[], seconds: number, cpuUs: number, window: { from: number; to: number }, failures: Failures): PhaseResult {
  const sorted = Float64Array.from(latencies).sort();
  const requests = result.requests.total;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats as unknown as Record<string, { count: number }>)) statusCodes[code] = count;
  return {
    requests,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts + failures.count,
    rps: requests / (result.duration || seconds),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    cpuUsPerRequest: cpuUs / Math.max(1, requests),
    statusCodes,
    ...(failures.first ? { firstError: failures.first } : {}),
    windowUs: window,
  };
}

/**
 * As runPhase, with a second stream of requests in the same window: `side` at a fixed
 * offered rate (requests per second over its connections), so that it asks the same of the
 * server whether its answers come at once or hang. The main result's CPU per request is all
 * the server's CPU in the window (the side's work included) over the main requests.
 */
export async function runPhaseBeside(
  server: ServerProcess,
  token: string,
  spec: RequestSpec,
  side: { spec: RequestSpec; connections: number; rate: number },
  opts: PhaseOptions,
): Promise<{ main: PhaseResult; side: PhaseResult }> {
  await warmUp(server, token, spec, opts);
  const latencies: number[] = [];
  const sideLatencies: number[] = [];
  const cpuBefore = cpuMicros(server.pid);
  const from = Number(process.hrtime.bigint() / 1000n);
  const failures: Failures = { count: 0 };
  const sideFailures: Failures = { count: 0 };
  const [result, sideResult] = await Promise.all([
    cannon(server.port, token, spec, opts.seconds, opts.connections, latencies, undefined, failures),
    cannon(server.port, token, side.spec, opts.seconds, side.connections, sideLatencies, side.rate, sideFailures),
  ]);
  const to = Number(process.hrtime.bigint() / 1000n);
  const cpu = cpuMicros(server.pid) - cpuBefore;
  return { main: summary(result, latencies, opts.seconds, cpu, { from, to }, failures), side: summary(sideResult, sideLatencies, opts.seconds, NaN, { from, to }, sideFailures) };
}

export interface PhaseOptions {
  /** The warm-up ends after this many requests (none: it runs `warmupSeconds`)… */
  warmupRequests?: number;
  /** …or after this many seconds, whichever comes first. */
  warmupSeconds: number;
  seconds: number;
  connections: number;
}

/**
 * The same requests, not measured, so that V8 has compiled the operation's code before the
 * window opens. Its optimising tiers start after a number of calls, not of seconds: on a slow
 * or busy machine a fixed second of warm-up leaves the first thousands of calls' compilation
 * (on V8's background threads, which /proc counts as the server's CPU) in the window.
 */
async function warmUp(server: ServerProcess, token: string, spec: RequestSpec, opts: PhaseOptions): Promise<void> {
  if (opts.warmupSeconds <= 0) return;
  await cannon(server.port, token, spec, opts.warmupSeconds, opts.connections, undefined, undefined, undefined, opts.warmupRequests);
}

/** Warm-up, then a measured run with the server's CPU time read before and after. */
export async function runPhase(
  server: ServerProcess,
  token: string,
  spec: RequestSpec,
  opts: PhaseOptions,
): Promise<PhaseResult> {
  await warmUp(server, token, spec, opts);
  const latencies: number[] = [];
  const failures: Failures = { count: 0 };
  const cpuBefore = cpuMicros(server.pid);
  const from = Number(process.hrtime.bigint() / 1000n);
  const result = await cannon(server.port, token, spec, opts.seconds, opts.connections, latencies, undefined, failures);
  const to = Number(process.hrtime.bigint() / 1000n);
  return summary(result, latencies, opts.seconds, cpuMicros(server.pid) - cpuBefore, { from, to }, failures);
}

export const OPERATIONS = ["get", "list", "list-deep", "create", "patch"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** What the requests of one store need: its token, workspaces and seeded ids (oldest first). */
export interface BenchTarget {
  store: string;
  token: string;
  readWorkspace: string;
  writeWorkspace: string;
  ids: string[];
}

/** Walks the list with limit=100 to `deepTarget` records (bounded by count and time); returns the cursor there. */
export async function deepCursor(
  port: number,
  t: BenchTarget,
  limits: { deepTarget: number; walkBudgetMs: number },
): Promise<{ cursor: string; depth: number; ms: number }> {
  const auth = { authorization: `Bearer ${t.token}` };
  const t0 = performance.now();
  let cursor: string | null = null;
  let depth = 0;
  for (let page = 0; page < Math.ceil(limits.deepTarget / 100); page++) {
    const q = `/api/mcp-servers?workspaceId=${t.readWorkspace}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await httpJson(port, "GET", q, auth);
    if (res.status !== 200) throw new Error(`${t.store}: walking the list got ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    depth += res.body.data.length;
    if (!res.body.nextCursor) break;
    cursor = res.body.nextCursor;
    if (performance.now() - t0 > limits.walkBudgetMs) break;
  }
  if (!cursor) throw new Error(`${t.store}: the list has no second page`);
  return { cursor, depth, ms: performance.now() - t0 };
}

export const PAGE_SIZE = 20;

/** The requests of each operation: ids rotate, create names are unique, patches change connectorConfig (connectorId must name a catalog entry). */
export function operationSpecs(t: BenchTarget, deep: string, runId: string): Record<Operation, RequestSpec> {
  const readIds = t.ids.filter((_, i) => i % 100 === 7); // 1,000 ids spread over the list
  const patchIds = t.ids.filter((_, i) => i % 500 === 3); // 200 ids: concurrent requests hit different records
  const listPath = `/api/mcp-servers?workspaceId=${t.readWorkspace}&limit=${PAGE_SIZE}`;
  let n = 0;
  return {
    get: { method: "GET", next: () => ({ path: `/api/mcp-servers/${readIds[n++ % readIds.length]}` }) },
    list: { method: "GET", next: () => ({ path: listPath }) },
    "list-deep": { method: "GET", next: () => ({ path: `${listPath}&cursor=${encodeURIComponent(deep)}` }) },
    create: {
      method: "POST",
      next: () => ({
        path: "/api/mcp-servers",
        body: JSON.stringify({
          workspaceId: t.writeWorkspace,
          name: `bench ${t.store} ${runId} ${n++}`,
          url: "https://mcp.example.com/mcp",
          headers: { "X-Team": "platform" },
          connectorConfig: { repo: "acme/tools", branch: "main" },
        }),
      }),
    },
    patch: {
      method: "PATCH",
      next: () => {
        const i = n++;
        return { path: `/api/mcp-servers/${patchIds[i % patchIds.length]}`, body: JSON.stringify({ connectorConfig: { revision: i } }) };
      },
    },
  };
}
