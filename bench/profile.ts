// Profiles the API server (SQLite) on one operation: `node --cpu-prof --import tsx server/main.ts`
// under autocannon, then summarises the profile for the measured window and for start-up.
//   npx tsx bench/profile.ts <get|list|list-deep|create|patch> [--seconds 8] [--out <dir>]
// The .cpuprofile stays in --out (default: a temporary directory); it is not for committing.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { printSummary, summarize, type CpuProfile } from "./cpuprofile-summary.js";
import {
  OPERATIONS,
  deepCursor,
  migrateAndMint,
  newEncryptionKey,
  operationSpecs,
  runPhase,
  seedSqlite,
  startServer,
  stopAll,
  type Operation,
} from "./lib.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: "string" }, out: { type: "string" }, top: { type: "string" } },
});
const operation = positionals[0] as Operation;
if (!OPERATIONS.includes(operation)) {
  console.error(`usage: npx tsx bench/profile.ts <${OPERATIONS.join("|")}> [--seconds 8] [--out dir]`);
  process.exit(2);
}
const seconds = Number(values.seconds ?? 8);
const top = Number(values.top ?? 20);
const out = values.out ?? mkdtempSync(join(tmpdir(), "mcp-profile-"));
const tmp = mkdtempSync(join(tmpdir(), "mcp-profile-db-"));

async function main() {
  const key = newEncryptionKey();
  const runId = Date.now().toString(36);
  const t = { store: "api-sqlite", readWorkspace: `ws_bench_${runId}`, writeWorkspace: `ws_bench_writes_${runId}`, token: "", ids: [] as string[] };
  const template = join(tmp, "template.sqlite");
  t.token = (await migrateAndMint(`sqlite:${template}`, key, [t.readWorkspace, t.writeWorkspace])).token;
  t.ids = seedSqlite(template, t.readWorkspace, 100_000, key);
  const db = join(tmp, "api.sqlite");
  copyFileSync(template, db);

  const spawnedUs = Number(process.hrtime.bigint() / 1000n);
  const server = await startServer("api-sqlite", "server/main.ts", { DATABASE_URL: `sqlite:${db}`, MCP_API_ENCRYPTION_KEY: key, LOG_LEVEL: "silent", MCP_API_RATE_LIMIT: "1000000000" }, [
    "--cpu-prof",
    "--cpu-prof-dir",
    out,
  ]);
  const readyUs = Number(process.hrtime.bigint() / 1000n);
  const deep = operation === "list-deep" ? (await deepCursor(server.port, t, { deepTarget: 50_000, walkBudgetMs: 8_000 })).cursor : "";
  const spec = operationSpecs(t, deep, runId)[operation];
  const r = await runPhase(server, t.token, spec, { warmupSeconds: 2, seconds, connections: 10 });
  await server.stop(); // SIGTERM: main.ts exits, and node writes the profile on exit

  const file = readdirSync(out)
    .filter((f) => f.endsWith(".cpuprofile") && f.includes(`.${server.pid}.0.`)) // thread 0: the main thread
    .map((f) => join(out, f))[0];
  if (!file) throw new Error(`no main-thread profile for pid ${server.pid} in ${out}`);
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;

  console.log(`profile: ${file}`);
  console.log(
    `${operation}: ${r.requests} requests in ${seconds} s (${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms), ` +
      `${r.cpuUsPerRequest.toFixed(0)} µs CPU/req from /proc; non-2xx ${r.non2xx}, errors ${r.errors} (profiling adds overhead)`,
  );
  console.log(`\n===== measured window (${seconds} s of ${operation}) =====`);
  printSummary(summarize(profile, r.windowUs), top, r.requests);
  console.log(`\n===== start-up: spawn → first answered /healthz (${((readyUs - spawnedUs) / 1000).toFixed(0)} ms under --cpu-prof) =====`);
  printSummary(summarize(profile, { to: readyUs }), Math.min(top, 15));
}

main()
  .catch((err) => {
    console.error(`profile failed: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  });
