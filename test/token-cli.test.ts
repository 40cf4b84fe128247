// The server-side token CLI (issue 23 item 5): help exits 0, an unknown flag is one line plus the
// usage, and what it prints on stderr is plain text, never the server's JSON log lines. Also the
// root package's version, which follows openapi.yaml as the client package's does.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parse } from "yaml";

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), "token-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function token(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8" }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

describe("npm run -s token", () => {
  test("when --help is asked for, then the usage goes to stdout and exit 0", async () => {
    const out = await token(["--help"]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("npm run -s token -- create --user <userId>");
    expect(out.stderr).toBe("");
  });

  test("when a flag is unknown, then one line names it, the usage follows, and exit 2", async () => {
    const out = await token(["create", "--colour", "red"]);
    expect(out.code).toBe(2);
    expect(out.stderr.split("\n")[0]).toBe("unknown option '--colour'");
    expect(out.stderr).toContain("usage:");
  });

  test("when a token is minted on a fresh store, then stdout is the token alone and stderr has no JSON log line", async () => {
    const out = await token(["create", "--user", "usr_cli", "--workspace", "ws_cli"], { DATABASE_URL: `sqlite:${join(dir, "t.sqlite")}` });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^mcpk_\S+\n$/);
    const lines = out.stderr.trimEnd().split("\n");
    // The generated-key warning is still said, as a sentence.
    expect(lines.some((l) => l.includes("MCP_API_ENCRYPTION_KEY is unset"))).toBe(true);
    expect(lines.filter((l) => l.trimStart().startsWith("{"))).toEqual([]);
  });
});

describe("the root package", () => {
  test("when its version is read, then it follows openapi.yaml info.version, in package.json and package-lock.json", () => {
    const spec = parse(readFileSync(join(root, "openapi.yaml"), "utf8"));
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
    expect(manifest.version).toBe(spec.info.version);
    expect(lock.version).toBe(spec.info.version);
    expect(lock.packages[""].version).toBe(spec.info.version);
  });
});
