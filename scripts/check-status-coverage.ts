// The test helper records every (operation, status) the server answers under
// test-artifacts/status-coverage/. After the suite this fails if any (operation, documented status) pair in openapi.yaml
// was never answered by the server during the tests.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const spec = JSON.parse(readFileSync(new URL("../generated/openapi.json", import.meta.url), "utf8"));
const dir = join(process.cwd(), "test-artifacts", "status-coverage");

// `--reset` runs before the suite, so that only this run's responses count.
if (process.argv.includes("--reset")) {
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

const seen = new Set<string>();
if (existsSync(dir)) {
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      if (!line) continue;
      const { operationId, status } = JSON.parse(line);
      seen.add(`${operationId} ${status}`);
    }
  }
}

const missing: string[] = [];
let total = 0;
for (const item of Object.values<Record<string, any>>(spec.paths)) {
  for (const op of Object.values<any>(item)) {
    if (!op?.operationId) continue;
    for (const status of Object.keys(op.responses ?? {})) {
      total++;
      if (!seen.has(`${op.operationId} ${status}`)) missing.push(`${op.operationId} ${status}`);
    }
  }
}

if (missing.length > 0) {
  console.error(`status coverage: ${missing.length} of ${total} documented (operation, status) pairs were never exercised:`);
  for (const m of missing) console.error(`  ${m}`);
  process.exit(1);
}
console.log(`status coverage: all ${total} documented (operation, status) pairs were exercised`);
