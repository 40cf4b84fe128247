// The black-box checks `npm run contract` runs against a deployment, run here against the
// local server; and the command itself, run as a child process against it.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { checks, cleanup, contractContext, type ContractContext } from "./contract/checks.js";
import { startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv?.stop();
});

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/contract.ts", ...args], { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function namesIn(ws: string, token: string): Promise<string[]> {
  const { data } = await srv.client(token).GET("/api/mcp-servers", { params: { query: { workspaceId: ws, limit: 100 } } });
  return data!.data.map((s) => s.name);
}

describe("contract checks against the local server", () => {
  let ctx: ContractContext;
  beforeAll(async () => {
    const workspace = uniqueWorkspace("contract");
    ctx = contractContext({ baseUrl: srv.baseUrl, token: await srv.token([workspace]), workspace });
  });
  afterAll(async () => {
    if (ctx) await cleanup(ctx);
  });

  test.each(checks.map((check) => [check.name, check] as const))("%s", async (_name, check) => {
    await check.run(ctx);
  });

  test("cleanup deletes every record named with the prefix, and only those", async () => {
    const keep = await srv.client(ctx.token).POST("/api/mcp-servers", { body: { workspaceId: ctx.workspace, name: "not from the checks", url: "https://mcp.example.com/mcp" } });
    expect(keep.response.status).toBe(201);
    await checks.find((c) => c.name.startsWith("GET /api/mcp-servers pages"))!.run(ctx);
    expect(await cleanup(ctx)).toBeGreaterThanOrEqual(2);
    expect(await namesIn(ctx.workspace, ctx.token)).toEqual(["not from the checks"]);
  });
});

describe("npm run contract", () => {
  test("when every check passes, then a PASS line per check, the summary, exit 0, and no records left behind", async () => {
    const ws = uniqueWorkspace("cli");
    const token = await srv.token([ws]);
    const prefix = `cli-test-${Date.now()}-`;
    const { code, stdout, stderr } = await runCli(["--base-url", srv.baseUrl, "--token", token, "--workspace", ws, "--name-prefix", prefix]);
    const lines = stdout.trim().split("\n");
    expect(code, stdout + stderr).toBe(0);
    expect(lines.slice(0, checks.length)).toEqual(checks.map((c) => `PASS ${c.name}`));
    expect(lines[checks.length]).toMatch(new RegExp(`^PASS cleanup deleted the \\d+ records named ${prefix}\\*$`));
    expect(lines.at(-1)).toBe(`${checks.length + 1} passed, 0 failed`);
    expect(await namesIn(ws, token)).toEqual([]);
  });

  test("when the token is not valid, then FAIL lines, the summary and exit 1", async () => {
    const { code, stdout } = await runCli(["--base-url", srv.baseUrl, "--token", "mcpk_not-a-real-token", "--workspace", uniqueWorkspace("cli")]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL POST \/api\/mcp-servers answers 201 .*: createMcpServer: expected status 201, got 401/m);
    expect(stdout).toMatch(/^PASS GET \/healthz answers 200 without a token$/m);
    expect(stdout.trim().split("\n").at(-1)).toMatch(/^\d+ passed, [1-9]\d* failed$/);
  });

  test.each([
    ["no arguments", []],
    ["no --token", ["--base-url", "http://127.0.0.1:1", "--workspace", "ws"]],
    ["an unknown option", ["--base-url", "http://127.0.0.1:1", "--token", "t", "--workspace", "ws", "--verbose"]],
    ["an empty --name-prefix", ["--base-url", "http://127.0.0.1:1", "--token", "t", "--workspace", "ws", "--name-prefix", ""]],
  ])("when given %s, then usage on stderr and exit 2", async (_label, args) => {
    const { code, stdout, stderr } = await runCli(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("usage: npm run contract");
  });
});
