// Runs the official MCP conformance suite's authorization scenarios (client mode) against
// the product, through its public HTTP API (test/conformance/oauth-client-adapter.mjs), and
// prints a table. Exits 1 when a scenario's outcome differs from
// test/conformance/auth-expected-failures.yaml (a failure not listed, or a listed one passing).
//
//   CONFORMANCE_NODE=<node ≥ 22> CONFORMANCE_CLI=<…/conformance/dist/index.js> [CONFORMANCE_SPEC_VERSION=2026-07-28] npx tsx test/conformance/run-auth.ts [scenario…]
// .ci/run installs both (the suite needs Node ≥ 22; the product runs here on the machine's Node).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { startServer, uniqueWorkspace } from "../helpers/server.js";

const here = dirname(fileURLToPath(import.meta.url));
const PUBLIC_URL = "https://conformance-test.local";

// Every authorization scenario of 2025-11-25 and 2026-07-28, and the two client-credentials ones.
export const AUTH_SCENARIOS = [
  "auth/metadata-default",
  "auth/metadata-var1",
  "auth/metadata-var2",
  "auth/metadata-var3",
  "auth/basic-cimd",
  "auth/scope-from-www-authenticate",
  "auth/scope-from-scopes-supported",
  "auth/scope-omitted-when-undefined",
  "auth/scope-step-up",
  "auth/scope-retry-limit",
  "auth/token-endpoint-auth-basic",
  "auth/token-endpoint-auth-post",
  "auth/token-endpoint-auth-none",
  "auth/pre-registration",
  "auth/2025-03-26-oauth-metadata-backcompat",
  "auth/2025-03-26-oauth-endpoint-fallback",
  "auth/resource-mismatch",
  "auth/offline-access-scope",
  "auth/offline-access-not-supported",
  "auth/authorization-server-migration",
  "auth/iss-supported",
  "auth/iss-not-advertised",
  "auth/iss-supported-missing",
  "auth/iss-wrong-issuer",
  "auth/iss-unexpected",
  "auth/iss-normalized",
  "auth/metadata-issuer-mismatch",
  "auth/client-credentials-basic",
  "auth/client-credentials-jwt",
];

interface Outcome {
  scenario: string;
  passed: boolean;
  summary: string;
}

function run(node: string, cli: string, scenario: string, env: Record<string, string>): Promise<Outcome> {
  const adapter = join(here, "oauth-client-adapter.mjs");
  // The suite runs the command through a shell with its own PATH first: the adapter gets Node ≥ 22 too.
  // CONFORMANCE_SPEC_VERSION (e.g. 2026-07-28) runs the scenarios as of that revision (some checks, like SEP-2350's scope union, only run there).
  const version = process.env.CONFORMANCE_SPEC_VERSION ? ["--spec-version", process.env.CONFORMANCE_SPEC_VERSION, "--force"] : [];
  const args = [cli, "client", "--scenario", scenario, ...version, "--timeout", "30000", "--command", `${JSON.stringify(node)} ${JSON.stringify(adapter)}`];
  return new Promise((resolve) => {
    const child = spawn(node, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => {
      const failed = [...out.matchAll(/(?:✗|FAILURE)[^\n]*/g)].map((m) => m[0]).slice(0, 2);
      if (process.env.CONFORMANCE_VERBOSE) console.log(out);
      resolve({ scenario, passed: code === 0, summary: code === 0 ? "" : (failed.join(" | ") || out.trim().split("\n").slice(-2).join(" ")).slice(0, 160) });
    });
  });
}

async function main() {
  const node = process.env.CONFORMANCE_NODE;
  const cli = process.env.CONFORMANCE_CLI;
  if (!node || !cli) {
    console.error("CONFORMANCE_NODE (a Node ≥ 22 binary) and CONFORMANCE_CLI (the suite's dist/index.js) must be set; .ci/run sets both");
    process.exit(2);
  }
  const expected = new Map<string, string>(
    ((parse(readFileSync(join(here, "auth-expected-failures.yaml"), "utf8")) ?? { client: [] }).client ?? []).map((e: { scenario: string; why: string }) => [
      e.scenario,
      e.why,
    ]),
  );
  const scenarios = process.argv.slice(2).length > 0 ? process.argv.slice(2) : AUTH_SCENARIOS;
  // The suite's CIMD scenario expects this client id; the adapter (the browser) maps the
  // public origin to where the product really listens, as a hosts-file entry would.
  const srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", LOG_LEVEL: "warn", MCP_API_PUBLIC_URL: PUBLIC_URL } });
  const outcomes: Outcome[] = [];
  try {
    const workspace = uniqueWorkspace("conf");
    const env = { PRODUCT_PUBLIC_URL: PUBLIC_URL, PRODUCT_URL: srv.baseUrl, PRODUCT_TOKEN: await srv.token([workspace], "usr_conformance"), PRODUCT_WORKSPACE: workspace };
    for (const scenario of scenarios) outcomes.push(await run(node, cli, scenario, env));
  } finally {
    await srv.stop();
  }

  let surprises = 0;
  console.log("| scenario | result | expected | note |\n|---|---|---|---|");
  for (const o of outcomes) {
    const why = expected.get(o.scenario);
    const surprise = o.passed === (why !== undefined);
    if (surprise) surprises++;
    console.log(`| ${o.scenario} | ${o.passed ? "pass" : "FAIL"} | ${why ? "fail" : "pass"} | ${surprise ? "UNEXPECTED " : ""}${why ?? o.summary} |`);
  }
  const passed = outcomes.filter((o) => o.passed).length;
  console.log(`\n${passed} of ${outcomes.length} authorization scenarios pass; ${surprises} differ from auth-expected-failures.yaml`);
  process.exit(surprises > 0 ? 1 : 0);
}

await main();
