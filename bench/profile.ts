// Profiles the API server (SQLite) on one operation: `node --cpu-prof dist/server/main.js` (the
// compiled server, as the bench runs it: `npm run build` first)
// under autocannon, then summarises the profile for the measured window and for start-up.
//   npx tsx bench/profile.ts <get|list|list-deep|create|patch|tools-call|workspace-call> [--seconds 8] [--warmup-requests 5000] [--seed 100000] [--connections 10] [--records 2000] [--out <dir>] [--store postgres]
// --store postgres: the server on BENCH_DATABASE_URL (else TEST_DATABASE_URL), seeded and cleaned up as the bench does.
// tools-call: the gateway's tools/call to bench/mcp-upstream.ts, as the bench's gateway row;
// workspace-call: the same call through the workspace endpoint, as the bench's workspace row.
// --records: other records beside the upstream's in that record's workspace (both calls; default
// 2000, as the bench's workspace row; SQLite only).
// BENCH_LOG_LEVEL=info logs as `npm run bench` does (default here: silent).
// The .cpuprofile stays in --out (default: a temporary directory); it is not for committing.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { printSummary, summarize, type CpuProfile } from "./cpuprofile-summary.js";
import {
  OPERATIONS,
  cleanupPostgres,
  deepCursor,
  httpJson,
  migrateAndMint,
  newEncryptionKey,
  operationSpecs,
  runPhase,
  seedPostgres,
  seedSqlite,
  startServer,
  stopAll,
  type Operation,
  type RequestSpec,
} from "./lib.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string" },
    "warmup-requests": { type: "string" },
    out: { type: "string" },
    top: { type: "string" },
    seed: { type: "string" },
    store: { type: "string" },
    connections: { type: "string" },
    records: { type: "string" },
  },
});
const operation = positionals[0] as Operation | "tools-call" | "workspace-call";
const viaGateway = operation === "tools-call" || operation === "workspace-call";
if (!OPERATIONS.includes(operation as Operation) && !viaGateway) {
  console.error(`usage: npx tsx bench/profile.ts <${OPERATIONS.join("|")}|tools-call|workspace-call> [--seconds 8] [--seed 100000] [--connections 10] [--out dir]`);
  process.exit(2);
}
const seconds = Number(values.seconds ?? 8);
const top = Number(values.top ?? 20);
const out = values.out ?? mkdtempSync(join(tmpdir(), "mcp-profile-"));
const tmp = mkdtempSync(join(tmpdir(), "mcp-profile-db-"));
const pgUrl = values.store === "postgres" ? (process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL) : undefined;
if (values.store === "postgres" && !pgUrl) throw new Error("--store postgres needs BENCH_DATABASE_URL or TEST_DATABASE_URL");
let pgCleanup: (() => Promise<void>) | null = null;

async function main() {
  const key = newEncryptionKey();
  const runId = Date.now().toString(36);
  const t = { store: pgUrl ? "api-postgres" : "api-sqlite", readWorkspace: `ws_bench_${runId}`, writeWorkspace: `ws_bench_writes_${runId}`, token: "", ids: [] as string[] };
  const endpointWorkspace = `ws_bench_endpoint_${runId}`;
  const seed = Number(values.seed ?? 100_000);
  const records = Number(values.records ?? 2_000);
  let databaseUrl: string;
  if (pgUrl) {
    const minted = await migrateAndMint(pgUrl, key, [t.readWorkspace, t.writeWorkspace]);
    pgCleanup = () => cleanupPostgres(pgUrl, [t.readWorkspace, t.writeWorkspace], minted.tokenId);
    t.token = minted.token;
    t.ids = await seedPostgres(pgUrl, t.readWorkspace, seed, key);
    databaseUrl = pgUrl;
  } else {
    const template = join(tmp, "template.sqlite");
    t.token = (await migrateAndMint(`sqlite:${template}`, key, [t.readWorkspace, t.writeWorkspace, endpointWorkspace])).token;
    t.ids = seedSqlite(template, t.readWorkspace, seed, key);
    if (viaGateway && records > 0) seedSqlite(template, endpointWorkspace, records, key, { namespaces: true });
    const db = join(tmp, "api.sqlite");
    copyFileSync(template, db);
    databaseUrl = `sqlite:${db}`;
  }

  const spawnedUs = Number(process.hrtime.bigint() / 1000n);
  const upstream = viaGateway ? await startServer("mcp-upstream", "bench/mcp-upstream.ts", {}) : null;
  const server = await startServer(t.store, "dist/server/main.js", { DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: key, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "silent", MCP_API_RATE_LIMIT: "1000000000", MCP_API_ALLOW_PRIVATE_NETWORK: "true" }, [
    "--cpu-prof",
    "--cpu-prof-dir",
    out,
  ]);
  // /healthz is answered before the app is built (server/http/starting.ts); /readyz by the app, once it is.
  while ((await httpJson(server.port, "GET", "/readyz")).status !== 200) await new Promise((r) => setTimeout(r, 5));
  const readyUs = Number(process.hrtime.bigint() / 1000n);
  const deep = operation === "list-deep" ? (await deepCursor(server.port, t, { deepTarget: 50_000, walkBudgetMs: 8_000 })).cursor : "";
  const workspaceId = pgUrl ? t.writeWorkspace : endpointWorkspace;
  const spec = upstream
    ? await toolsCallSpec(server.port, t.token, workspaceId, `http://127.0.0.1:${upstream.port}/mcp`, operation === "workspace-call")
    : operationSpecs(t, deep, runId)[operation as Operation];
  const r = await runPhase(server, t.token, spec, { ...(values["warmup-requests"] ? { warmupRequests: Number(values["warmup-requests"]), warmupSeconds: 60 } : { warmupSeconds: 2 }), seconds, connections: Number(values.connections ?? 10) });
  await server.stop(); // SIGTERM: main.ts exits, and node writes the profile on exit

  const file = readdirSync(out)
    .filter((f) => f.endsWith(".cpuprofile") && f.includes(`.${server.pid}.0.`)) // thread 0: the main thread
    .map((f) => join(out, f))[0];
  if (!file) throw new Error(`no main-thread profile for pid ${server.pid} in ${out}`);
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;

  console.log(`profile: ${file}`);
  if (upstream) console.log(`the upstream's record is in ${workspaceId}, beside ${pgUrl ? 0 : records} other records`);
  console.log(
    `${operation}: ${r.requests} requests in ${seconds} s (${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms), ` +
      `${r.cpuUsPerRequest.toFixed(0)} µs CPU/req from /proc; non-2xx ${r.non2xx}, errors ${r.errors} (profiling adds overhead)`,
  );
  console.log(`\n===== measured window (${seconds} s of ${operation}) =====`);
  printSummary(summarize(profile, r.windowUs), top, r.requests);
  console.log(`\n===== start-up: spawn → first 200 from /readyz (${((readyUs - spawnedUs) / 1000).toFixed(0)} ms under --cpu-prof) =====`);
  printSummary(summarize(profile, { to: readyUs }), Math.min(top, 15));
}

/** The bench's gateway row: a record for the upstream, then tools/call of its echo tool through /api/mcp-servers/{id}/mcp (or the workspace's endpoint). */
async function toolsCallSpec(port: number, token: string, workspaceId: string, url: string, workspace = false): Promise<RequestSpec> {
  const created = await httpJson(port, "POST", "/api/mcp-servers", { authorization: `Bearer ${token}` }, { workspaceId, name: "profiled upstream", url });
  if (created.status !== 201) throw new Error(`create got ${created.status}: ${JSON.stringify(created.body)}`);
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: workspace ? "profiled_upstream__echo" : "echo", arguments: { text: "bench" } } });
  const path = workspace ? `/api/workspaces/${workspaceId}/mcp` : `/api/mcp-servers/${(created.body as { id: string }).id}/mcp`;
  return { method: "POST", headers: { accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" }, next: () => ({ path, body }) };
}

main()
  .catch((err) => {
    console.error(`profile failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    if (pgCleanup) await pgCleanup().catch((err) => console.error(`profile: PostgreSQL cleanup failed: ${err.message}`));
    rmSync(tmp, { recursive: true, force: true });
  });
