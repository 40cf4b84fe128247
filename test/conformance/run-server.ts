// Runs the official MCP conformance suite's server scenarios twice: directly against a
// fixture, and through the product's gateway
// (/api/mcp-servers/{id}/mcp, the fixture registered with an API key), with a small loopback
// proxy adding the gateway token the suite cannot send. Prints a table; exits 1 when a
// scenario scores differently through the gateway than directly.
//
//   CONFORMANCE_NODE=<node ≥ 22> CONFORMANCE_CLI=<…/conformance/dist/index.js> npx tsx test/conformance/run-server.ts [scenario…]
// Two fixtures, one after the other: test/conformance/server-fixture.ts (SDK v1, sessionful,
// the 2025-era scenarios) and server-fixture-v2.ts (SDK v2, 2026-07-28, the modern ones, run
// with --spec-version 2026-07-28). CONFORMANCE_FIXTURE=v1 or v2 runs one of them.
// CONFORMANCE_ENDPOINT=workspace runs the second leg through /api/workspaces/{workspaceId}/mcp
// instead, for a workspace holding the fixture alone.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, uniqueWorkspace } from "../helpers/server.js";
import { startConformanceFixture } from "./server-fixture.js";
import { startConformanceFixtureV2 } from "./server-fixture-v2.js";

// The 2025-era server scenarios the fixture offers what they ask for.
export const SERVER_SCENARIOS = [
  "server-initialize",
  "server-session-lifecycle",
  "ping",
  "logging-set-level",
  "completion-complete",
  "tools-list",
  "tools-call-simple-text",
  "tools-call-image",
  "tools-call-audio",
  "tools-call-embedded-resource",
  "tools-call-mixed-content",
  "tools-call-with-logging",
  "tools-call-error",
  "tools-call-with-progress",
  "tools-call-sampling",
  "tools-call-elicitation",
  "resources-list",
  "resources-read-text",
  "resources-read-binary",
  "resources-templates-read",
  "resources-subscribe",
  "resources-unsubscribe",
  "prompts-list",
  "prompts-get-simple",
  "prompts-get-with-args",
  "prompts-get-embedded-resource",
  "prompts-get-with-image",
  "dns-rebinding-protection",
];

// The 2026-07-28 scenarios the v2 fixture offers what they ask for.
export const MODERN_SCENARIOS = [
  "server-stateless",
  "tools-list",
  "tools-call-simple-text",
  "tools-call-image",
  "tools-call-audio",
  "tools-call-embedded-resource",
  "tools-call-mixed-content",
  "tools-call-error",
  "resources-list",
  "resources-read-text",
  "resources-read-binary",
  "resources-templates-read",
  "sep-2164-resource-not-found",
  "prompts-list",
  "prompts-get-simple",
  "prompts-get-with-args",
  "prompts-get-embedded-resource",
  "prompts-get-with-image",
  "completion-complete",
  "caching",
  "http-header-validation",
  "dns-rebinding-protection",
];

const KEY = "sk_conformance_fixture_0123456789";

type Score = { passed: number; failed: number; other: number; failures: string[] };

function collect(dir: string): Score {
  const score: Score = { passed: 0, failed: 0, other: 0, failures: [] };
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".json")) {
        const data = JSON.parse(readFileSync(p, "utf8"));
        for (const check of Array.isArray(data) ? data : (data.checks ?? [])) {
          if (check.status === "SUCCESS") score.passed++;
          else if (check.status === "FAILURE") {
            score.failed++;
            score.failures.push(`${check.id}: ${check.errorMessage ?? ""}`.slice(0, 200));
          } else score.other++;
        }
      }
    }
  };
  walk(dir);
  return score;
}

async function runScenario(url: string, scenario: string, specVersion: string | null): Promise<Score> {
  const node = process.env.CONFORMANCE_NODE;
  const cli = process.env.CONFORMANCE_CLI;
  if (!node || !cli) throw new Error("set CONFORMANCE_NODE (Node ≥ 22) and CONFORMANCE_CLI (the suite's dist/index.js)");
  const out = mkdtempSync(join(tmpdir(), "conformance-"));
  try {
    await new Promise<void>((resolve) => {
      const args = [cli, "server", "--url", url, "--scenario", scenario, "-o", out, ...(specVersion ? ["--spec-version", specVersion] : [])];
      const child = spawn(node, args, { stdio: ["ignore", "ignore", "ignore"] });
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return collect(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Forwards every request to `target`, adding the bearer token; Host and Origin pass as the suite sent them. */
async function startTokenProxy(target: string, token: string) {
  const server = createServer((req, res) => {
    const upstream = httpRequest(target, { method: req.method, headers: { ...req.headers, authorization: `Bearer ${token}` } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, close: () => new Promise((r) => server.close(r)) };
}

async function main() {
  let differ = 0;
  for (const era of ["v1", "v2"] as const) {
    if (process.env.CONFORMANCE_FIXTURE && process.env.CONFORMANCE_FIXTURE !== era) continue;
    const all = era === "v1" ? SERVER_SCENARIOS : MODERN_SCENARIOS;
    const chosen = process.argv.length > 2 ? process.argv.slice(2).filter((s) => all.includes(s)) : all;
    if (chosen.length > 0) differ += await runFixture(era, chosen);
  }
  console.log(differ === 0 ? "\nevery scenario scores the same through the gateway" : `\n${differ} scenario(s) score differently through the gateway`);
  process.exitCode = differ === 0 ? 0 : 1;
}

async function runFixture(era: "v1" | "v2", scenarios: string[]): Promise<number> {
  const specVersion = era === "v2" ? "2026-07-28" : null;
  console.log(`\n${era === "v1" ? "SDK v1 fixture, 2025-11-25 (sessions)" : "SDK v2 fixture, 2026-07-28 (stateless)"}:\n`);
  // Through the workspace endpoint the fixture is the workspace's only member: its names bare (a documented setting).
  const bare: Record<string, string> = process.env.CONFORMANCE_ENDPOINT === "workspace" ? { MCP_API_WORKSPACE_BARE_NAMES: "true" } : {};
  const srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", LOG_LEVEL: "warn", ...bare } });
  const fixture = era === "v1" ? await startConformanceFixture({ bearer: KEY }) : await startConformanceFixtureV2({ bearer: KEY });
  const direct = await startTokenProxy(fixture.url, KEY);
  try {
    const ws = uniqueWorkspace("conf");
    const admin = await srv.token([ws]);
    const res = await fetch(`${srv.baseUrl}/api/mcp-servers`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ workspaceId: ws, name: "conformance fixture", url: fixture.url, authType: "api_key", apiKey: KEY }),
    });
    const { id } = (await res.json()) as { id: string };
    const { token } = await srv.services.tokens.mint({ userId: "usr_conformance", workspaces: [ws], scope: "gateway" });
    // CONFORMANCE_ENDPOINT=workspace: through /api/workspaces/{workspaceId}/mcp, the fixture its one member.
    const through = process.env.CONFORMANCE_ENDPOINT === "workspace" ? `${srv.baseUrl}/api/workspaces/${ws}/mcp` : `${srv.baseUrl}/api/mcp-servers/${id}/mcp`;
    const gateway = await startTokenProxy(through, token);

    let differ = 0;
    console.log("| scenario | direct (passed/failed) | through the gateway (passed/failed) |");
    console.log("|---|---|---|");
    for (const scenario of scenarios) {
      const a = await runScenario(direct.url, scenario, specVersion);
      const b = await runScenario(gateway.url, scenario, specVersion);
      const same = a.passed === b.passed && a.failed === b.failed;
      if (!same) differ++;
      console.log(`| ${scenario} | ${a.passed}/${a.failed} | ${b.passed}/${b.failed}${same ? "" : " ≠"} |`);
      for (const f of b.failures) if (!a.failures.includes(f)) console.log(`|   | | gateway only: ${f.replace(/\|/g, "/")} |`);
      for (const f of a.failures) console.log(`|   | direct: ${f.replace(/\|/g, "/")} | |`);
    }
    await gateway.close();
    return differ;
  } finally {
    await direct.close();
    await fixture.close();
    await srv.stop();
  }
}

await main();
