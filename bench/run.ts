// `npm run bench`: the real server (SQLite, and PostgreSQL when BENCH_DATABASE_URL is set)
// and a bare node:http baseline, each in its own process, driven by autocannon from this
// one. Prints operation × store → req/s, p50/p99, server CPU per request, checks the
// targets, and writes bench/results/<timestamp>.json and bench/results/latest.json.
//   BENCH_SECONDS (5), BENCH_WARMUP_REQUESTS (5000), BENCH_WARMUP_SECONDS (10: the warm-up's cap),
//   BENCH_CONNECTIONS (10), BENCH_SEED (100000),
//   BENCH_CONNECT_TIMEOUT_MS (2000: the product's MCP_API_CONNECT_TIMEOUT_MS), BENCH_LIST_RATE (5 lists/s)
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isDeepStrictEqual } from "node:util";
import { namespaceOf } from "../server/domain/names.js";
import { LEFT_OUT_META } from "../server/domain/workspace-gateway.js";
import {
  OPERATIONS,
  REPO_ROOT,
  benchChildrenCpuMicros,
  cpuMicrosByName,
  machineBusyMicros,
  cleanupPostgres,
  deepCursor,
  httpJson,
  migrateAndMint,
  newEncryptionKey,
  operationSpecs,
  runPhase,
  runPhaseBeside,
  seedMembers,
  startHangingServer,
  seedPostgres,
  seedSqlite,
  startServer,
  stopAll,
  type BenchTarget,
  type Operation,
  type PhaseResult,
  type RequestSpec,
  type SeedMember,
  type ServerProcess,
} from "./lib.js";

type Hanging = Awaited<ReturnType<typeof startHangingServer>>;

interface Target extends BenchTarget {
  store: "baseline-sqlite" | "api-sqlite" | "baseline-postgres" | "api-postgres";
  kind: "baseline" | "api";
  databaseUrl: string;
}

const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const config = {
  seconds: num("BENCH_SECONDS", 5),
  // Each phase first sends the same requests unmeasured: this many, or for at most this long.
  warmupRequests: num("BENCH_WARMUP_REQUESTS", 5_000),
  warmupSeconds: num("BENCH_WARMUP_SECONDS", 10),
  connections: num("BENCH_CONNECTIONS", 10),
  seed: num("BENCH_SEED", 100_000),
  deepTarget: 50_000, // records walked before taking the deep cursor
  walkBudgetMs: 8_000, // …or as deep as this allows (reported)
  // How long a list waits for a member (the product's MCP_API_CONNECT_TIMEOUT_MS; its default, 10 s, outlasts a row).
  connectTimeoutMs: num("BENCH_CONNECT_TIMEOUT_MS", 2_000),
  // The isolation rows' second agent: tools/list at this offered rate, whatever the answers take.
  listRate: num("BENCH_LIST_RATE", 5),
};
// The whole run gives up after this long (the per-phase warm-ups of 163ec72 take it past 5 minutes).
const HARD_LIMIT_MS = 900_000;
// The workspace-endpoint row's workspace: the bench upstream's record and this many others
// (seeded before the server starts, namespaces filled as a create fills them), the same in
// every run; the write workspace, which it used before, grows with the create phase's speed.
const ENDPOINT_WORKSPACE_RECORDS = 2_000;
// The workspace-endpoint target is read from this many pairs measured at the same time: two
// fresh servers of the same build (twins, on copies of the same store) side by side, one taking
// the per-server call and the other the workspace call, their roles swapped every pair; the
// check takes the median of the pairs' ratios. A server's CPU per call still falls for tens of
// seconds after its first calls (JIT), and other work on the machine comes and goes, so one row
// of each, a minute apart (or even back to back), measured those as much as the two endpoints.
const WORKSPACE_PAIRS = 4;
const WORKSPACE_WARM_PAIRS = 4;
// The gateway's 2× target is read from this many blocks of rounds alternated after the rows
// (relay baseline, gateway, gateway, relay baseline: a drift in the machine cancels within a
// block), the median of the blocks' ratios. The two rows alone are a phase and a warm-up
// apart, and the relay baseline's CPU per call moved almost 2× between runs minutes apart
// (167 and 305 µs on 2026-12-03), more than the target's margin.
const GATEWAY_BLOCKS = 3;
// Over this 1-minute load average the machine was not quiet: the run says so.
const LOAD_WARNING = 1.5;
// …and over this share of one CPU used by processes other than the bench's own during the
// measured phases (the load average counts the bench's three busy processes too).
const OTHERS_WARNING_CORES = 0.1;
const RATE_LIMIT = 1_000_000_000;

interface Row extends PhaseResult {
  operation: Operation;
  store: Target["store"];
  /** CPU per request against the SQLite baseline's (the issue's targets). */
  cpuRatioToBaseline: number | null;
  /** …and against the bare baseline on the row's own store (the same as above for SQLite). */
  cpuRatioToStoreBaseline: number | null;
}

/** The bare baseline on the same store as `store`. */
const storeBaseline = (store: Target["store"]): Target["store"] => (store.endsWith("postgres") ? "baseline-postgres" : "baseline-sqlite");
const isBaseline = (store: string) => store.startsWith("baseline-");

interface StoreRun {
  store: Target["store"];
  startupMs: number;
  /** Spawn to the first 200 from /readyz: the app built and the store migrated (the API answers /healthz before that). */
  readyMs: number | null;
  deepDepth: number;
  walkMs: number;
  sample: unknown;
}

const runId = Date.now().toString(36);
const started = performance.now();
const log = (msg: string) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

interface Prepared {
  target: Target;
  server: ServerProcess;
  specs: Record<Operation, RequestSpec>;
  run: StoreRun;
}

/** What a server of the run is started with. */
function serverEnv(t: Target): Record<string, string> {
  return {
    DATABASE_URL: t.databaseUrl,
    MCP_API_ENCRYPTION_KEY: key,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
    BASELINE_WORKSPACES: `${t.readWorkspace},${t.writeWorkspace}`,
    // The limiter still runs (its cost is measured) but never refuses the bench's one token.
    MCP_API_RATE_LIMIT: String(RATE_LIMIT),
    // The gateway row's upstream is on loopback.
    MCP_API_ALLOW_PRIVATE_NETWORK: "true",
    MCP_API_CONNECT_TIMEOUT_MS: String(config.connectTimeoutMs),
    // The relay baseline forwards to the same upstream as the gateway.
    BASELINE_RELAY_UPSTREAM: upstreamUrl(),
  };
}

/** Starts one server (start-up timed alone), checks it answers, and walks to the deep cursor. */
async function prepare(t: Target): Promise<Prepared> {
  // The API as production runs it: compiled (`npm run bench` builds first), logging at info.
  const script = t.kind === "baseline" ? "bench/baseline-server.ts" : "dist/server/main.js";
  const env = serverEnv(t);
  log(`${t.store}: starting ${script}`);
  const server = await startServer(t.store, script, env);
  try {
    log(`${t.store}: answered /healthz ${server.startupMs.toFixed(0)} ms after spawn (pid ${server.pid})`);
    const readyMs = t.kind === "api" ? server.startupMs + (await untilReady(server.port)) : null;
    if (readyMs !== null) log(`${t.store}: answered /readyz ${readyMs.toFixed(0)} ms after spawn`);
    const sampleRes = await httpJson(server.port, "GET", `/api/mcp-servers/${t.ids[7]}`, { authorization: `Bearer ${t.token}` });
    if (sampleRes.status !== 200) throw new Error(`${t.store}: GET by id got ${sampleRes.status}: ${JSON.stringify(sampleRes.body)}`);
    const deep = await deepCursor(server.port, t, config);
    log(`${t.store}: deep cursor at ${deep.depth} records (walked in ${(deep.ms / 1000).toFixed(1)} s)`);
    return {
      target: t,
      server,
      specs: operationSpecs(t, deep.cursor, runId),
      run: { store: t.store, startupMs: server.startupMs, readyMs, deepDepth: deep.depth, walkMs: deep.ms, sample: sampleRes.body },
    };
  } catch (err) {
    console.error(`--- ${t.store} output ---\n${server.output()}`);
    throw err;
  }
}

/** Milliseconds until /readyz answers 200 (a request made before the app is built waits for it, so one usually suffices). */
async function untilReady(port: number): Promise<number> {
  const t0 = performance.now();
  for (const deadline = t0 + 60_000; performance.now() < deadline; ) {
    if ((await httpJson(port, "GET", "/readyz")).status === 200) return performance.now() - t0;
    await sleep(5);
  }
  throw new Error("/readyz did not answer 200 within 60 s");
}

/** One operation on one store; stores run back to back per operation so they see the same machine. */
async function measure(p: Prepared, operation: Operation): Promise<Row> {
  const r = await runPhase(p.server, p.target.token, p.specs[operation], config);
  const bad = r.non2xx || r.errors ? `  (${r.non2xx} non-2xx, ${r.errors} errors: ${JSON.stringify(r.statusCodes)})` : "";
  log(`${p.target.store} ${operation}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99Ms.toFixed(1)} ms, ${r.cpuUsPerRequest.toFixed(0)} µs CPU/req${bad}`);
  if (bad) {
    const { path, body } = p.specs[operation].next();
    const res = await httpJson(p.server.port, p.specs[operation].method, path, { authorization: `Bearer ${p.target.token}` }, body && JSON.parse(body));
    console.error(`  e.g. ${p.specs[operation].method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
  }
  return { operation, store: p.target.store, cpuRatioToBaseline: null, cpuRatioToStoreBaseline: null, ...r };
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
const fmt = (v: number | null, digits = 1) => (v === null || Number.isNaN(v) ? "–" : v.toFixed(digits));

function printTable(rows: Row[]) {
  const head = ["operation", "store", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "× SQLite baseline", "× same-store baseline", "non-2xx/err"];
  const body = rows.map((r) => [
    r.operation,
    r.store,
    fmt(r.rps, 0),
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    fmt(r.cpuUsPerRequest, 0),
    r.cpuRatioToBaseline === null ? "" : `${fmt(r.cpuRatioToBaseline, 2)}×`,
    r.cpuRatioToStoreBaseline === null ? "" : `${fmt(r.cpuRatioToStoreBaseline, 2)}×`,
    r.non2xx || r.errors ? `${r.non2xx}/${r.errors}` : "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
}

interface TargetCheck {
  store: string;
  target: string;
  measured: string;
  pass: boolean;
}

function checkTargets(rows: Row[], runs: StoreRun[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const get = (store: string, op: Operation) => rows.find((r) => r.store === store && r.operation === op)!;
  for (const run of runs.filter((r) => !isBaseline(r.store))) {
    const s = run.store;
    const clean = (r: Row) => r.non2xx === 0 && r.errors === 0;
    const ratio = (op: Operation, max: number, label: string) => {
      const r = get(s, op);
      checks.push({ store: s, target: `${label} CPU/request ≤ ${max}× baseline`, measured: `${fmt(r.cpuRatioToBaseline, 2)}×`, pass: clean(r) && (r.cpuRatioToBaseline ?? Infinity) <= max });
    };
    ratio("get", 6, "GET by id");
    ratio("list", 2, "list first page");
    ratio("create", 4, "create");
    ratio("patch", 4, "patch");
    // PostgreSQL's rows against its own bare baseline too (node:http + pg, named statements), beside the checks above.
    const base = storeBaseline(s);
    if (base !== "baseline-sqlite" && runs.some((r) => r.store === base)) {
      const sameStore = (op: Operation, max: number, label: string) => {
        const r = get(s, op);
        checks.push({ store: s, target: `${label} CPU/request ≤ ${max}× the ${base} baseline`, measured: `${fmt(r.cpuRatioToStoreBaseline, 2)}×`, pass: clean(r) && (r.cpuRatioToStoreBaseline ?? Infinity) <= max });
      };
      sameStore("get", 6, "GET by id");
      sameStore("list", 2, "list first page");
      sameStore("create", 4, "create");
      sameStore("patch", 4, "patch");
    }
    const first = get(s, "list");
    const deep = get(s, "list-deep");
    checks.push({
      store: s,
      target: `deep list p50 ≤ 1.3× first page p50 (at ${run.deepDepth} records)`,
      measured: `${fmt(deep.p50Ms, 2)} vs ${fmt(first.p50Ms, 2)} ms = ${fmt(deep.p50Ms / first.p50Ms, 2)}×`,
      pass: clean(deep) && deep.p50Ms <= 1.3 * first.p50Ms,
    });
    const mine = rows.filter((r) => r.store === s);
    const worst = mine.reduce((a, b) => (b.p99Ms > a.p99Ms ? b : a));
    if (s === "api-sqlite") {
      checks.push({
        store: s,
        target: `p99 < 10 ms for every operation at ${config.connections} connections`,
        measured: `worst ${worst.operation} ${fmt(worst.p99Ms, 2)} ms`,
        pass: mine.every((r) => clean(r) && r.p99Ms < 10),
      });
    }
    if (s === "api-postgres") {
      const g = get(s, "get");
      checks.push({ store: s, target: "GET by id p50 < 2 ms", measured: `${fmt(g.p50Ms, 2)} ms`, pass: clean(g) && g.p50Ms < 2 });
    }
    checks.push({ store: s, target: "start-up (spawn → first 200 from /healthz) < 300 ms", measured: `${fmt(run.startupMs, 0)} ms`, pass: run.startupMs < 300 });
  }
  return checks;
}

/** One row of the gateway table: who answers tools/call, at which path, with how many agents at once. */
interface GatewayRow extends PhaseResult {
  path: string;
  connections: number;
  /** What the CPU figure is of (the process answering the row's requests). */
  process: string;
  cpuRatioToRelay: number | null;
}

let upstream: ServerProcess | null = null;
const upstreamUrl = () => (upstream ? `http://127.0.0.1:${upstream.port}/mcp` : "");

/** One pair of the workspace target: CPU per call of each endpoint, measured at the same time in two processes. */
interface WorkspacePair {
  perServerUs: number;
  workspaceUs: number;
  /** Which of the two twins took the workspace call. */
  workspaceOn: "a" | "b";
  ratio: number;
  failed: number;
}

const TOOLS_CALL = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: "bench" } } });

/**
 * The bench upstream's record, in the workspace-endpoint row's workspace (the per-server
 * endpoint finds it by id, whatever its workspace holds), and the two calls of it: through
 * /api/mcp-servers/{id}/mcp, and through the workspace endpoint, where the call finds its member
 * beside ENDPOINT_WORKSPACE_RECORDS others by one index probe on the namespace.
 */
async function benchUpstreamCalls(server: ServerProcess, token: string, endpointWorkspace: string) {
  const created = await httpJson(server.port, "POST", "/api/mcp-servers", { authorization: `Bearer ${token}` }, {
    workspaceId: endpointWorkspace,
    name: `bench upstream ${runId}`,
    url: upstreamUrl(),
  });
  if (created.status !== 201) throw new Error(`gateway row: create got ${created.status}: ${JSON.stringify(created.body)}`);
  const id = (created.body as { id: string }).id;
  const wsBody = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: `${namespaceOf(`bench upstream ${runId}`)}__echo`, arguments: { text: "bench" } } });
  return { perServer: { url: `/api/mcp-servers/${id}/mcp`, body: TOOLS_CALL }, workspace: { url: `/api/workspaces/${endpointWorkspace}/mcp`, body: wsBody } };
}

/**
 * The gateway rows: tools/call of one upstream tool (1) straight to the upstream, (2) through
 * the bare node:http relay baseline (bench/baseline-server.ts, kept-alive, nothing else), and
 * (3) through /api/mcp-servers/{id}/mcp (token, rate limit, validation, record and credential,
 * policy, the tool_called event), at the same concurrency. A further row is one more entry
 * in `paths` below. The first three are then run again with one agent calling in sequence:
 * at 10 connections a closed loop's p50 is about connections ÷ throughput (Little's law), so
 * on this 2-core machine, where the load generator, the upstream and the server under test
 * share the CPUs, it measures CPU per call again rather than what the gateway adds to a call.
 * One agent at a time measures that: no call waits behind another.
 */
interface GatewayBlock {
  relayUs: number;
  gatewayUs: number;
  ratio: number;
  failed: number;
}

async function measureGateway(api: Prepared, baseline: Prepared, endpointWorkspace: string): Promise<{ rows: GatewayRow[]; blocks: GatewayBlock[] }> {
  const body = TOOLS_CALL;
  const calls = await benchUpstreamCalls(api.server, api.target.token, endpointWorkspace);
  // A hanging member beside the workspace endpoint's is measureIsolation's.
  const paths: { path: string; process: string; server: ServerProcess; url: string; body?: string }[] = [
    { path: "direct", process: "upstream", server: upstream!, url: "/mcp" },
    { path: "relay baseline", process: "baseline", server: baseline.server, url: "/relay/mcp" },
    { path: "gateway", process: "product", server: api.server, ...calls.perServer },
    { path: "workspace endpoint", process: "product", server: api.server, ...calls.workspace },
  ];
  const rows: GatewayRow[] = [];
  for (const p of paths) {
    const r = await runPhase(p.server, api.target.token, { method: "POST", headers: MCP_HEADERS, next: () => ({ path: p.url, body: p.body ?? body }), failed: rpcFailed }, config);
    log(`tools/call ${p.path}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(1)} ms, ${r.cpuUsPerRequest.toFixed(0)} µs CPU/call (${p.process})${r.firstError ? `; ${r.errors} failed, e.g. ${r.firstError}` : ""}`);
    rows.push({ path: p.path, connections: config.connections, process: p.process, cpuRatioToRelay: null, ...r });
  }
  for (const p of paths.slice(0, 3)) {
    const r = await runPhase(p.server, api.target.token, { method: "POST", headers: MCP_HEADERS, next: () => ({ path: p.url, body: p.body ?? body }), failed: rpcFailed }, { ...config, connections: 1 });
    log(`tools/call ${p.path}, 1 agent: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(1)} ms, ${r.cpuUsPerRequest.toFixed(0)} µs CPU/call (${p.process})${r.firstError ? `; ${r.errors} failed, e.g. ${r.firstError}` : ""}`);
    rows.push({ path: p.path, connections: 1, process: p.process, cpuRatioToRelay: null, ...r });
  }
  for (const n of [config.connections, 1]) {
    const relay = rows.find((r) => r.path === "relay baseline" && r.connections === n)!;
    for (const r of rows) if (r.connections === n && r.process !== "upstream" && r !== relay) r.cpuRatioToRelay = r.cpuUsPerRequest / relay.cpuUsPerRequest;
  }
  // Both are warm now: rounds alternated without a further warm-up.
  const [relayPath, gatewayPath] = [paths[1], paths[2]];
  const alternate = (p: (typeof paths)[number]) =>
    runPhase(p.server, api.target.token, { method: "POST", headers: MCP_HEADERS, next: () => ({ path: p.url, body: p.body ?? body }), failed: rpcFailed }, { ...config, warmupSeconds: 0 });
  const blocks: GatewayBlock[] = [];
  for (let i = 0; i < GATEWAY_BLOCKS; i++) {
    const r1 = await alternate(relayPath);
    const g1 = await alternate(gatewayPath);
    const g2 = await alternate(gatewayPath);
    const r2 = await alternate(relayPath);
    const perCall = (a: PhaseResult, b: PhaseResult) => (a.cpuUsPerRequest * a.requests + b.cpuUsPerRequest * b.requests) / Math.max(1, a.requests + b.requests);
    const block = { relayUs: perCall(r1, r2), gatewayUs: perCall(g1, g2), ratio: 0, failed: [r1, g1, g2, r2].reduce((n, r) => n + r.non2xx + r.errors, 0) };
    block.ratio = block.gatewayUs / block.relayUs;
    log(`gateway block ${i + 1} (relay, gateway, gateway, relay): gateway ${block.gatewayUs.toFixed(0)}, relay ${block.relayUs.toFixed(0)} µs CPU/call = ${block.ratio.toFixed(2)}×`);
    blocks.push(block);
  }
  return { rows, blocks };
}

/**
 * The workspace target's pairs: two fresh servers of the same build (twins, each on its own copy
 * of the store as seeded), side by side at the same time, one taking the per-server call and the
 * other the workspace call at BENCH_CONNECTIONS agents each, roles swapped every pair, so that
 * each call is measured on both and both stand in the same state. WORKSPACE_WARM_PAIRS are run
 * first and not counted: after a server's first calls the workspace call's CPU falls for longer
 * than the per-server call's (more of its code is its own to warm; in one run its first 3 s on a
 * fresh server cost 9870 µs per call, 3697 and 2798 µs in its next two turns).
 */
async function measureWorkspacePairs(template: Target, twinDatabaseUrls: [string, string], endpointWorkspace: string): Promise<WorkspacePair[]> {
  const twins = await Promise.all(twinDatabaseUrls.map((databaseUrl, i) => startServer(`api-sqlite twin ${"ab"[i]}`, "dist/server/main.js", serverEnv({ ...template, databaseUrl }))));
  try {
    await Promise.all(twins.map((t) => untilReady(t.port)));
    const token = template.token;
    const calls = await Promise.all(twins.map((t) => benchUpstreamCalls(t, token, endpointWorkspace)));
    const spec = (call: { url: string; body: string }): RequestSpec => ({ method: "POST", headers: MCP_HEADERS, next: () => ({ path: call.url, body: call.body }), failed: rpcFailed });
    const pairs: WorkspacePair[] = [];
    for (let i = -WORKSPACE_WARM_PAIRS; i < WORKSPACE_PAIRS; i++) {
      const w = (i + WORKSPACE_WARM_PAIRS) % 2; // the twin taking the workspace call
      const [a, b] = await Promise.all([runPhase(twins[1 - w], token, spec(calls[1 - w].perServer), config), runPhase(twins[w], token, spec(calls[w].workspace), config)]);
      const pair: WorkspacePair = { perServerUs: a.cpuUsPerRequest, workspaceUs: b.cpuUsPerRequest, workspaceOn: w === 0 ? "a" : "b", ratio: b.cpuUsPerRequest / a.cpuUsPerRequest, failed: a.non2xx + a.errors + b.non2xx + b.errors };
      log(`workspace pair ${i < 0 ? `(warm-up) ${i + WORKSPACE_WARM_PAIRS + 1}` : i + 1} (workspace call on twin ${pair.workspaceOn}): per-server ${a.cpuUsPerRequest.toFixed(0)}, workspace ${b.cpuUsPerRequest.toFixed(0)} µs CPU/call = ${pair.ratio.toFixed(2)}×`);
      if (i >= 0) pairs.push(pair);
    }
    return pairs;
  } finally {
    await Promise.all(twins.map((t) => t.stop()));
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const MCP_HEADERS = { accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" };
const HEALTHY = "healthy";
const rpc = (method: string, params: Record<string, unknown>) => JSON.stringify({ jsonrpc: "2.0", id: 1, method, params });
/** An MCP answer (JSON, or one SSE event) that carries a JSON-RPC error, or a tool result marked isError. */
const rpcFailed = (body: string) => /"error"\s*:\s*\{|"isError"\s*:\s*true/.test(body);

/**
 * The isolation rows' workspaces (issue 21: no member slows another), each holding a member
 * named `healthy` on the bench upstream: alone, beside an OAuth member whose access token
 * expired an hour ago and whose token endpoint takes the refresh and never answers, or beside
 * a member whose MCP upstream takes requests and never answers.
 */
interface IsolationCase {
  label: string;
  workspaceId: string;
  members: SeedMember[];
}

const ISOLATION_TAGS = ["alone", "refresh", "upstream"] as const;
const isolationWorkspace = (tag: (typeof ISOLATION_TAGS)[number]) => `ws_bench_iso_${tag}_${runId}`;

/** The cases, once the bench upstream runs (its URL is the healthy member's). */
function isolationCases(hangingAs: string, hangingUpstream: string): IsolationCase[] {
  const ws = isolationWorkspace;
  const healthy = (workspaceId: string): SeedMember => ({ workspaceId, name: HEALTHY, url: upstreamUrl() });
  return [
    { label: "alone", workspaceId: ws("alone"), members: [healthy(ws("alone"))] },
    {
      label: "+ member whose refresh hangs",
      workspaceId: ws("refresh"),
      members: [healthy(ws("refresh")), { workspaceId: ws("refresh"), name: "refresh hangs", url: upstreamUrl(), expiredOAuth: { tokenEndpoint: `${hangingAs}/token` } }],
    },
    { label: "+ member whose upstream hangs", workspaceId: ws("upstream"), members: [healthy(ws("upstream")), { workspaceId: ws("upstream"), name: "upstream hangs", url: `${hangingUpstream}/mcp` }] },
    // The first case again, last: the spread of the two is this run's noise.
    { label: "alone, again", workspaceId: ws("alone"), members: [] },
  ];
}

interface IsolationRow {
  label: string;
  calls: PhaseResult;
  lists: PhaseResult;
  /** What the hanging peers were asked during the row (the hang was live, not idle). */
  tokenRequests: number;
  upstreamRequests: number;
  /** The reasons one list of the row gave for the members it left out. */
  leftOut: string[];
}

/**
 * tools/call of the healthy member at BENCH_CONNECTIONS agents, while a second agent lists
 * the workspace at BENCH_LIST_RATE (so that the hanging member is opened, and its refresh or
 * upstream awaited, all through the row), in each case of isolationCases.
 */
async function measureIsolation(api: Prepared, cases: IsolationCase[], hanging: { as: Hanging; upstream: Hanging }): Promise<IsolationRow[]> {
  const call = rpc("tools/call", { name: `${HEALTHY}__echo`, arguments: { text: "bench" } });
  const list = rpc("tools/list", {});
  // Enough connections to keep the offered list rate while each list waits the connect timeout.
  const listConnections = Math.ceil(config.listRate * (config.connectTimeoutMs / 1000) * 1.5) + 1;
  const rows: IsolationRow[] = [];
  for (const c of cases) {
    const url = `/api/workspaces/${c.workspaceId}/mcp`;
    const auth = { authorization: `Bearer ${api.target.token}`, ...MCP_HEADERS };
    hanging.as.reset();
    hanging.upstream.reset();
    const sample = httpJson(api.server.port, "POST", url, auth, JSON.parse(list));
    const { main, side } = await runPhaseBeside(
      api.server,
      api.target.token,
      { method: "POST", headers: MCP_HEADERS, next: () => ({ path: url, body: call }), failed: rpcFailed },
      { spec: { method: "POST", headers: MCP_HEADERS, next: () => ({ path: url, body: list }), failed: rpcFailed }, connections: listConnections, rate: config.listRate },
      config,
    );
    const answer = await sample;
    const body = typeof answer.body === "string" ? JSON.parse(/^data: (.*)$/m.exec(answer.body)?.[1] ?? "null") : answer.body;
    const leftOut = ((body?.result?._meta?.[LEFT_OUT_META] ?? []) as { name: string; reason: string; message: string }[]).map((l) => `${l.name}: ${l.reason} (${l.message})`);
    const tools = ((body?.result?.tools ?? []) as { name: string }[]).map((t) => t.name);
    if (!tools.includes(`${HEALTHY}__echo`)) throw new Error(`isolation ${c.label}: tools/list lacks ${HEALTHY}__echo: ${JSON.stringify(answer.body).slice(0, 400)}`);
    const row = { label: c.label, calls: main, lists: side, tokenRequests: hanging.as.seen().filter((r) => r.startsWith("POST /token")).length, upstreamRequests: hanging.upstream.seen().length, leftOut };
    log(
      `isolation ${c.label}: tools/call p50 ${main.p50Ms.toFixed(2)} ms, p99 ${main.p99Ms.toFixed(1)} ms; tools/list p50 ${side.p50Ms.toFixed(1)} ms (${side.requests} lists); ` +
        `token endpoint asked ${row.tokenRequests}×, hanging upstream ${row.upstreamRequests}×; left out: ${leftOut.join("; ") || "none"}` +
        (main.firstError ? `; ${main.errors} failed calls, e.g. ${main.firstError}` : ""),
    );
    rows.push(row);
  }
  return rows;
}

function printIsolation(rows: IsolationRow[]) {
  const alone = rows[0];
  console.log(
    `workspace isolation: tools/call to the healthy member at ${config.connections} agents, beside one agent listing the workspace at ${config.listRate}/s ` +
      `(MCP_API_CONNECT_TIMEOUT_MS=${config.connectTimeoutMs}); × is the ratio to the first row`,
  );
  const head = ["workspace", "calls/s", "p50 ms", "×", "p99 ms", "×", "CPU µs/call", "lists", "list p50 ms", "list p99 ms", "token POSTs", "hung upstream", "non-2xx/err"];
  const body = rows.map((r) => [
    r.label,
    fmt(r.calls.rps, 0),
    fmt(r.calls.p50Ms, 2),
    `${fmt(r.calls.p50Ms / alone.calls.p50Ms, 2)}×`,
    fmt(r.calls.p99Ms, 2),
    `${fmt(r.calls.p99Ms / alone.calls.p99Ms, 2)}×`,
    fmt(r.calls.cpuUsPerRequest, 0),
    String(r.lists.requests),
    fmt(r.lists.p50Ms, 1),
    fmt(r.lists.p99Ms, 1),
    String(r.tokenRequests),
    String(r.upstreamRequests),
    `${r.calls.non2xx + r.lists.non2xx}/${r.calls.errors + r.lists.errors}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => "  " + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(head));
  for (const b of body) console.log(line(b));
  for (const r of rows) if (r.leftOut.length) console.log(`  ${r.label}: a list left out ${r.leftOut.join("; ")}`);
}

/** "Beyond noise": a hanging case's p50 above the slower of the two alone rows by more than 10%. */
function isolationChecks(rows: IsolationRow[]): TargetCheck[] {
  const alone = rows.filter((r) => r.label.startsWith("alone"));
  const ceiling = Math.max(...alone.map((r) => r.calls.p50Ms));
  return rows
    .filter((r) => !r.label.startsWith("alone"))
    .map((r) => ({
      store: "api-sqlite",
      target: `workspace tools/call p50, ${r.label}, ≤ 1.1× the slower alone row`,
      measured: `${fmt(r.calls.p50Ms, 2)} vs ${alone.map((a) => fmt(a.calls.p50Ms, 2)).join("/")} ms = ${fmt(r.calls.p50Ms / ceiling, 2)}×`,
      pass: r.calls.non2xx === 0 && r.calls.errors === 0 && r.calls.p50Ms <= 1.1 * ceiling,
    }));
}

function printGateway(rows: GatewayRow[], blocks: GatewayBlock[], pairs: WorkspacePair[], endpointRecords: number) {
  console.log(`gateway: tools/call at ${config.connections} concurrent agents, then 1 (CPU is the process answering: the upstream directly, else the relay)`);
  console.log(`  (the workspace endpoint's workspace: the upstream's record and ${endpointRecords} others)`);
  const width = Math.max(...rows.map((r) => r.path.length));
  for (const r of rows) {
    if (r.connections === 1 && r.path === "direct") console.log(`  1 agent calling in sequence (p50 is a call's own latency; at ${config.connections} it is about ${config.connections} ÷ req/s):`);
    const bad = r.non2xx || r.errors ? `  ${r.non2xx}/${r.errors} non-2xx/err` : "";
    const ratio = r.cpuRatioToRelay === null ? "" : `  ${fmt(r.cpuRatioToRelay, 2)}× the relay baseline`;
    console.log(`  ${r.path.padEnd(width)}  ${fmt(r.rps, 0).padStart(6)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  ${fmt(r.cpuUsPerRequest, 0)} µs CPU/call (${r.process})${ratio}${bad}`);
  }
  console.log(`  gateway against the relay baseline, ${blocks.length} blocks of alternated rounds (relay, gateway, gateway, relay), ${config.connections} agents (µs CPU/call):`);
  for (const b of blocks) console.log(`    ${fmt(b.gatewayUs, 0)} against ${fmt(b.relayUs, 0)} = ${fmt(b.ratio, 2)}×${b.failed ? `  ${b.failed} non-2xx/err` : ""}`);
  console.log(`  workspace endpoint against the per-server one, ${pairs.length} pairs at the same time in two fresh servers (twins a and b, after ${WORKSPACE_WARM_PAIRS} pairs not counted), ${config.connections} agents each (µs CPU/call):`);
  for (const p of pairs) console.log(`    ${fmt(p.workspaceUs, 0)} against ${fmt(p.perServerUs, 0)} = ${fmt(p.ratio, 2)}× (workspace call on twin ${p.workspaceOn})${p.failed ? `  ${p.failed} non-2xx/err` : ""}`);
}

function gatewayChecks(rows: GatewayRow[], blocks: GatewayBlock[], pairs: WorkspacePair[]): TargetCheck[] {
  const row = (path: string, connections = config.connections) => rows.find((r) => r.path === path && r.connections === connections)!;
  const via = row("gateway");
  const clean = via.non2xx === 0 && via.errors === 0;
  // What the gateway adds to one call: one agent, so that no call queues behind another.
  const direct1 = row("direct", 1);
  const via1 = row("gateway", 1);
  const added = via1.p50Ms - direct1.p50Ms;
  const ws = row("workspace endpoint");
  const wsRatio = ws.cpuUsPerRequest / via.cpuUsPerRequest;
  const pairRatio = median(pairs.map((p) => p.ratio));
  const blockRatio = median(blocks.map((b) => b.ratio));
  return [
    {
      store: "api-sqlite",
      target: "workspace endpoint tools/call CPU ≤ 1.2× the per-server endpoint's (median of side-by-side pairs)",
      measured: `${fmt(pairRatio, 2)}× (pairs ${pairs.map((p) => fmt(p.ratio, 2)).join(", ")}; the rows above ${fmt(wsRatio, 2)}×)`,
      pass: ws.non2xx === 0 && ws.errors === 0 && pairs.every((p) => p.failed === 0) && pairRatio <= 1.2,
    },
    {
      store: "api-sqlite",
      target: "gateway tools/call CPU ≤ 2× the relay baseline's (median of alternated blocks)",
      measured: `${fmt(blockRatio, 2)}× (blocks ${blocks.map((b) => fmt(b.ratio, 2)).join(", ")}; the rows above ${fmt(via.cpuRatioToRelay, 2)}×)`,
      pass: clean && blocks.every((b) => b.failed === 0) && blockRatio <= 2,
    },
    {
      store: "api-sqlite",
      target: "gateway adds ≤ 1 ms to tools/call at p50 (1 agent)",
      measured: `${fmt(via1.p50Ms, 2)} − ${fmt(direct1.p50Ms, 2)} = ${fmt(added, 2)} ms`,
      pass: clean && via1.non2xx === 0 && via1.errors === 0 && added <= 1,
    },
  ];
}

function gitDescribe(): { commit: string | null; dirty: boolean | null } {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const commit = git("rev-parse", "HEAD");
    const dirty = git("status", "--porcelain", "--", "server", "openapi.yaml", "generated", "package.json") !== "";
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/**
 * What the rest of the machine did while the run measured: all its busy CPU less the bench's
 * own (this process with autocannon, the servers it started, PostgreSQL's processes), as
 * seconds of CPU and as the average number of cores it kept busy. The load average cannot tell
 * this: at the end of a run it counts the bench's own busy processes.
 */
function othersMeter(): () => { seconds: number; otherCpuSeconds: number; otherCores: number } {
  const read = () => {
    const self = process.cpuUsage();
    return { at: performance.now(), busy: machineBusyMicros(), own: self.user + self.system + benchChildrenCpuMicros() + cpuMicrosByName("postgres") };
  };
  const start = read();
  return () => {
    const end = read();
    const wallUs = (end.at - start.at) * 1000;
    const others = Math.max(0, end.busy - start.busy - (end.own - start.own));
    return { seconds: wallUs / 1e6, otherCpuSeconds: others / 1e6, otherCores: others / wallUs };
  };
}

const key = newEncryptionKey();
const tmp = mkdtempSync(join(tmpdir(), "mcp-bench-"));
let pgCleanup: (() => Promise<void>) | null = null;

async function main() {
  const load: { before: number[]; after?: number[] } = { before: loadavg() };
  const readWorkspace = `ws_bench_${runId}`;
  const writeWorkspace = `ws_bench_writes_${runId}`;
  const endpointWorkspace = `ws_bench_endpoint_${runId}`;
  const hanging = { as: await startHangingServer(), upstream: await startHangingServer() };
  closeHanging = () => Promise.all([hanging.as.close(), hanging.upstream.close()]).then(() => {});
  const workspaces = [readWorkspace, writeWorkspace, endpointWorkspace, ...ISOLATION_TAGS.map(isolationWorkspace)];

  const template = join(tmp, "template.sqlite");
  const { token, tokenId } = await migrateAndMint(`sqlite:${template}`, key, workspaces);
  let t0 = performance.now();
  const ids = seedSqlite(template, readWorkspace, config.seed, key);
  log(`seeded ${ids.length} records into SQLite in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const endpointRecords = seedSqlite(template, endpointWorkspace, ENDPOINT_WORKSPACE_RECORDS, key, { namespaces: true }).length;
  log(`seeded ${endpointRecords} records into the workspace endpoint's workspace ${endpointWorkspace}`);
  // Each server gets its own copy, so one's writes do not change what the other reads.
  // The twins are the workspace target's (measureWorkspacePairs).
  for (const name of ["baseline", "api", "twin-a", "twin-b"]) copyFileSync(template, join(tmp, `${name}.sqlite`));

  const targets: Target[] = [
    { store: "baseline-sqlite", kind: "baseline", databaseUrl: `sqlite:${join(tmp, "baseline.sqlite")}`, token, readWorkspace, writeWorkspace, ids },
    { store: "api-sqlite", kind: "api", databaseUrl: `sqlite:${join(tmp, "api.sqlite")}`, token, readWorkspace, writeWorkspace, ids },
  ];

  // Both stores in one run: PostgreSQL from BENCH_DATABASE_URL, else the suite's TEST_DATABASE_URL.
  const pgUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (pgUrl) {
    const minted = await migrateAndMint(pgUrl, key, workspaces);
    pgCleanup = () => cleanupPostgres(pgUrl, workspaces, minted.tokenId);
    t0 = performance.now();
    const pgIds = await seedPostgres(pgUrl, readWorkspace, config.seed, key);
    log(`seeded ${pgIds.length} records into PostgreSQL in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // The PostgreSQL baseline shares the database: its creates are named apart (operationSpecs), and reads see the same seed.
    targets.push({ store: "baseline-postgres", kind: "baseline", databaseUrl: pgUrl, token: minted.token, readWorkspace, writeWorkspace, ids: pgIds });
    targets.push({ store: "api-postgres", kind: "api", databaseUrl: pgUrl, token: minted.token, readWorkspace, writeWorkspace, ids: pgIds });
  } else {
    console.log("api-postgres: skipped (set BENCH_DATABASE_URL=postgres://… to include it)");
  }

  upstream = await startServer("mcp-upstream", "bench/mcp-upstream.ts", {});
  // The isolation rows' members, in the API's SQLite copy only (their rows run on SQLite).
  const cases = isolationCases(hanging.as.origin, hanging.upstream.origin);
  await seedMembers(targets[1].databaseUrl, key, tokenId, cases.flatMap((c) => c.members));
  const prepared: Prepared[] = [];
  for (const t of targets) prepared.push(await prepare(t));
  const runs = prepared.map((p) => p.run);
  const othersDuring = othersMeter();
  const rows: Row[] = [];
  for (const operation of OPERATIONS) {
    for (const p of prepared) rows.push(await measure(p, operation));
  }
  const apiSqlite = prepared.find((p) => p.target.store === "api-sqlite")!;
  const { rows: gateway, blocks: gatewayBlocks } = await measureGateway(apiSqlite, prepared.find((p) => p.target.store === "baseline-sqlite")!, endpointWorkspace);
  const pairs = await measureWorkspacePairs(apiSqlite.target, [`sqlite:${join(tmp, "twin-a.sqlite")}`, `sqlite:${join(tmp, "twin-b.sqlite")}`], endpointWorkspace);
  const isolation = await measureIsolation(apiSqlite, cases, hanging);
  const others = othersDuring();
  await stopAll();
  load.after = loadavg();

  const cpuOf = (store: Target["store"], operation: Operation) => rows.find((b) => b.store === store && b.operation === operation)?.cpuUsPerRequest;
  for (const r of rows) {
    if (isBaseline(r.store)) continue;
    r.cpuRatioToBaseline = r.cpuUsPerRequest / cpuOf("baseline-sqlite", r.operation)!;
    const own = cpuOf(storeBaseline(r.store), r.operation);
    r.cpuRatioToStoreBaseline = own === undefined ? null : r.cpuUsPerRequest / own;
  }
  // Same data on each store: its baseline must answer the API's JSON shape exactly.
  const runOf = (store: Target["store"]) => runs.find((r) => r.store === store);
  let sameShape = true;
  for (const [base, api] of [["baseline-sqlite", "api-sqlite"], ["baseline-postgres", "api-postgres"]] as const) {
    const b = runOf(base);
    const a = runOf(api);
    if (!b || !a || isDeepStrictEqual(b.sample, a.sample)) continue;
    sameShape = false;
    console.log(`warning: ${base} and ${api} bodies differ:\n${JSON.stringify(b.sample)}\n${JSON.stringify(a.sample)}`);
  }

  console.log("");
  printTable(rows);
  console.log("");
  console.log(`start-up (spawn → first 200 from /healthz): ${runs.map((r) => `${r.store} ${fmt(r.startupMs, 0)} ms`).join(", ")}`);
  console.log(`ready (spawn → first 200 from /readyz: app built, store migrated): ${runs.filter((r) => r.readyMs !== null).map((r) => `${r.store} ${fmt(r.readyMs!, 0)} ms`).join(", ")}`);
  console.log(`machine: ${cpus().length} CPUs, load average ${load.before.map((l) => l.toFixed(2)).join(" ")} before, ${load.after!.map((l) => l.toFixed(2)).join(" ")} after (1, 5, 15 min)`);
  console.log(`machine: other processes than the bench's kept ${fmt(others.otherCores, 2)} of a CPU busy on average over the ${fmt(others.seconds, 0)} s measured (${fmt(others.otherCpuSeconds, 1)} s of CPU)`);
  if (others.otherCores > OTHERS_WARNING_CORES) console.log(`warning: other work used over ${OTHERS_WARNING_CORES} of a CPU while the run measured: read ratios within this run only`);
  const busiest = Math.max(load.before[0], load.after![0]);
  if (busiest > LOAD_WARNING) {
    console.log(`warning: load average ${busiest.toFixed(2)} is over ${LOAD_WARNING}: other work shared the CPUs, so times and CPU per request are inflated; read ratios within this run only`);
  }
  console.log(`deep list cursor: ${runs.map((r) => `${r.store} at ${r.deepDepth} of ${config.seed} records`).join(", ")}`);
  console.log("");
  printGateway(gateway, gatewayBlocks, pairs, endpointRecords);
  console.log("");
  printIsolation(isolation);
  console.log("");
  const checks = [...checkTargets(rows, runs), ...gatewayChecks(gateway, gatewayBlocks, pairs), ...isolationChecks(isolation)];
  for (const c of checks) console.log(`${c.pass ? "PASS" : "FAIL"}  ${c.store.padEnd(12)}  ${c.target}: ${c.measured}`);
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n${checks.filter((c) => c.pass).length}/${checks.length} targets met; run took ${seconds.toFixed(0)} s`);

  const now = new Date();
  const report = {
    date: now.toISOString(),
    ...gitDescribe(),
    machine: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      loadavg: load,
      others: { seconds: Math.round(others.seconds), cpuSeconds: round(others.otherCpuSeconds, 1), cores: round(others.otherCores, 3) },
    },
    config: { ...config, rateLimitPerMinute: RATE_LIMIT, validateResponses: process.env.MCP_API_VALIDATE_RESPONSES ?? "default (true)" },
    runSeconds: Math.round(seconds),
    startupMs: Object.fromEntries(runs.map((r) => [r.store, Math.round(r.startupMs)])),
    readyMs: Object.fromEntries(runs.filter((r) => r.readyMs !== null).map((r) => [r.store, Math.round(r.readyMs!)])),
    deepDepth: Object.fromEntries(runs.map((r) => [r.store, r.deepDepth])),
    sameJsonShape: sameShape,
    rows: rows.map((r) => ({
      operation: r.operation,
      store: r.store,
      requests: r.requests,
      rps: round(r.rps, 0),
      p50Ms: round(r.p50Ms, 3),
      p99Ms: round(r.p99Ms, 3),
      meanMs: round(r.meanMs, 3),
      cpuUsPerRequest: round(r.cpuUsPerRequest, 1),
      cpuRatioToBaseline: r.cpuRatioToBaseline === null ? null : round(r.cpuRatioToBaseline, 2),
      cpuRatioToStoreBaseline: r.cpuRatioToStoreBaseline === null ? null : round(r.cpuRatioToStoreBaseline, 2),
      non2xx: r.non2xx,
      errors: r.errors,
      statusCodes: r.statusCodes,
    })),
    loadWarning: Math.max(load.before[0], load.after![0]) > LOAD_WARNING,
    othersWarning: others.otherCores > OTHERS_WARNING_CORES,
    workspaceEndpointRecords: endpointRecords + 1,
    gatewayBlocks: gatewayBlocks.map((b) => ({ relayUs: round(b.relayUs, 1), gatewayUs: round(b.gatewayUs, 1), ratio: round(b.ratio, 3), failed: b.failed })),
    workspacePairs: pairs.map((p) => ({ perServerUs: round(p.perServerUs, 1), workspaceUs: round(p.workspaceUs, 1), workspaceOn: p.workspaceOn, ratio: round(p.ratio, 3), failed: p.failed })),
    gateway: gateway.map((g) => ({ path: g.path, connections: g.connections, process: g.process, cpuRatioToRelay: g.cpuRatioToRelay === null ? null : round(g.cpuRatioToRelay, 2), rps: round(g.rps, 0), p50Ms: round(g.p50Ms, 3), p99Ms: round(g.p99Ms, 3), cpuUsPerRequest: round(g.cpuUsPerRequest, 1), non2xx: g.non2xx, errors: g.errors })),
    isolation: {
      connectTimeoutMs: config.connectTimeoutMs,
      listRatePerSecond: config.listRate,
      rows: isolation.map((r) => ({
        workspace: r.label,
        calls: { rps: round(r.calls.rps, 0), p50Ms: round(r.calls.p50Ms, 3), p99Ms: round(r.calls.p99Ms, 3), p50RatioToAlone: round(r.calls.p50Ms / isolation[0].calls.p50Ms, 2), p99RatioToAlone: round(r.calls.p99Ms / isolation[0].calls.p99Ms, 2), cpuUsPerCall: round(r.calls.cpuUsPerRequest, 1), non2xx: r.calls.non2xx, errors: r.calls.errors },
        lists: { requests: r.lists.requests, p50Ms: round(r.lists.p50Ms, 3), p99Ms: round(r.lists.p99Ms, 3), non2xx: r.lists.non2xx, errors: r.lists.errors },
        tokenEndpointRequests: r.tokenRequests,
        hangingUpstreamRequests: r.upstreamRequests,
        leftOut: r.leftOut,
      })),
    },
    targets: checks,
  };
  const dir = join(REPO_ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const stamp = now.toISOString().replace(/:/g, "").replace(/\.\d+Z$/, "Z");
  const text = JSON.stringify(report, null, 2) + "\n";
  writeFileSync(join(dir, `${stamp}.json`), text);
  writeFileSync(join(dir, "latest.json"), text);
  console.log(`wrote bench/results/${stamp}.json and bench/results/latest.json`);
}

let closeHanging: (() => Promise<void>) | null = null;

async function cleanup() {
  await stopAll();
  await closeHanging?.();
  closeHanging = null;
  if (pgCleanup) await pgCleanup().catch((err) => console.error(`bench: PostgreSQL cleanup failed: ${err.message}`));
  pgCleanup = null;
  rmSync(tmp, { recursive: true, force: true });
}

const watchdog = setTimeout(() => {
  console.error(`bench: over ${HARD_LIMIT_MS / 1000} s, giving up`);
  cleanup().finally(() => process.exit(1));
}, HARD_LIMIT_MS);
watchdog.unref();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(cleanup, async (err) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    await cleanup();
    process.exitCode = 1;
  })
  .finally(() => clearTimeout(watchdog));
