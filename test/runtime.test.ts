// The compiled build as production runs it: `npm run build` (when dist/ is not this source's build; test/helpers/dist-build.ts), then `node dist/server/main.js`
// and the CLIs from dist/, with what an operator sees at start-up and at shutdown.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureBuilt } from "./helpers/dist-build.js";
import { listen } from "./helpers/mcp-peers.js";
import { raw } from "./helpers/server.js";

const root = join(import.meta.dirname, "..");
const run = promisify(execFile);
let dataDir: string;
let env: NodeJS.ProcessEnv;
const children: ChildProcess[] = [];

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startCompiled(extraEnv: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, ["dist/server/main.js"], {
    cwd: root,
    env: { ...env, PORT: "0", HOST: "127.0.0.1", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function baseUrlOf(s: Started): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const match = /listening on (http:\/\/\S+)/.exec(s.stdout());
    if (match) return match[1].replace("localhost", "127.0.0.1");
    if (s.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not start: ${s.stdout()} ${s.stderr()}`);
}

beforeAll(async () => {
  await ensureBuilt();
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-runtime-"));
  env = {
    ...process.env,
    DATABASE_URL: `sqlite:${join(dataDir, "mcp-api.sqlite")}`,
    MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    LOG_LEVEL: "info",
  };
}, 120_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the compiled build", () => {
  test("when the server and the token CLI run from dist/, then a minted token lists servers, and SIGTERM stops the server with exit 0", async () => {
    const { stdout: token } = await run(process.execPath, ["dist/scripts/token.js", "create", "--user", "usr_rt", "--workspace", "ws_rt"], { cwd: root, env });
    const server = startCompiled();
    const baseUrl = await baseUrlOf(server);
    const res = await raw(baseUrl, "GET", "/api/mcp-servers?workspaceId=ws_rt", { token: token.trim() });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ data: [], nextCursor: null });
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toContain('"msg":"stopped"');
  });
});

describe("npm start", () => {
  test("when `npm start` is sent SIGTERM, then the server itself shuts down (no orphan keeps the port)", async () => {
    const npm = spawn("npm", ["start"], { cwd: root, env: { ...env, PORT: "0", HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "pipe"] });
    children.push(npm);
    let out = "";
    npm.stdout!.on("data", (c) => (out += c));
    const exited = new Promise<void>((resolve) => npm.on("exit", () => resolve()));
    const started = { child: npm, stdout: () => out, stderr: () => "", exited: exited.then(() => npm.exitCode) };
    const baseUrl = await baseUrlOf(started);
    npm.kill("SIGTERM");
    await exited;
    await expect.poll(() => out, { timeout: 10_000 }).toContain('"msg":"stopped"');
    await expect(fetch(`${baseUrl}/healthz`)).rejects.toThrow();
  }, 60_000);
});

describe("start-up", () => {
  let holder: Server;
  afterAll(() => new Promise<void>((r) => holder.close(() => r())));

  test("when the port is already in use, then one line says so and the exit code is 1", async () => {
    holder = createServer();
    const port = await listen(holder as never);
    const server = startCompiled({ PORT: String(port) });
    expect(await server.exited).toBe(1);
    const lines = server.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`mcp-servers-api: port ${port} is already in use (127.0.0.1:${port}); stop what holds it or set PORT`);
  });

  test("when MCP_API_ALLOW_PRIVATE_NETWORK lifts the SSRF guard, then a warning says so at start-up", async () => {
    const server = startCompiled({ MCP_API_ALLOW_PRIVATE_NETWORK: "true" });
    await baseUrlOf(server);
    const warning = server
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((l) => { try { return JSON.parse(l); } catch { return {}; } })
      .find((l) => l.level === 40 && /MCP_API_ALLOW_PRIVATE_NETWORK/.test(l.msg));
    expect(warning?.msg).toMatch(/SSRF guard is lifted/);
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  });

  test("when the guard is on, then no such warning", async () => {
    const server = startCompiled();
    await baseUrlOf(server);
    server.child.kill("SIGTERM");
    await server.exited;
    expect(server.stdout()).not.toContain("MCP_API_ALLOW_PRIVATE_NETWORK");
  });
});

describe("a stale build", () => {
  test("when the source beside dist/ changed since `npm run build`, then start-up refuses in one line naming the file and the command", async () => {
    // A copy of the checkout's build with one source file edited after it was built.
    const copy = mkdtempSync(join(tmpdir(), "mcp-api-stale-"));
    try {
      for (const dir of ["dist", "server"]) cpSync(join(root, dir), join(copy, dir), { recursive: true });
      symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
      writeFileSync(join(copy, "package.json"), readFileSync(join(root, "package.json")));
      for (const dir of ["client", "console", "generated", "scripts"]) cpSync(join(root, dir), join(copy, dir), { recursive: true });
      for (const file of ["openapi.yaml", "tsconfig.json", "tsconfig.build.json", "package-lock.json"]) writeFileSync(join(copy, file), readFileSync(join(root, file)));
      const fresh = await run(process.execPath, ["-e", `import("${join(copy, "dist/server/build-stamp.js")}").then((m) => console.log(m.staleBuild(${JSON.stringify(copy)})))`]);
      expect(fresh.stdout.trim()).toBe("null");
      appendFileSync(join(copy, "server/logger.ts"), "\n// edited after the build\n");
      const child = spawn(process.execPath, [join(copy, "dist/server/main.js")], { cwd: copy, env: { ...env, PORT: "0", HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "pipe"] });
      children.push(child);
      let err = "";
      child.stderr!.on("data", (c) => (err += c));
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      expect(code).toBe(1);
      expect(err.trim().split("\n")).toEqual(["mcp-servers-api: dist/ is stale: server/logger.ts changed since the last build; run `npm run build` (npm start no longer builds)"]);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
