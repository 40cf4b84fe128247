// Proves the client from the outside: pack the package, install the tarball into a
// scratch project, and type-check consumer code against it.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const root = resolve(import.meta.dirname, "..");
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "mcp-client-consumer-"));
  execFileSync("npm", ["pack", "--pack-destination", scratch, "--silent"], { cwd: root, stdio: "pipe" });
  const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"))!;
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // Dependencies come from the npm cache that `npm ci` filled; no install scripts are needed to type-check.
  execFileSync("npm", ["install", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund", join(scratch, tarball)], { cwd: scratch, stdio: "pipe" });
  cpSync(join(root, "test/fixtures/consumer"), join(scratch, "src"), { recursive: true });
}, 300_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function tsc(file: string) {
  const args = ["--noEmit", "--strict", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--target", "ES2022", "--skipLibCheck", join("src", file)];
  return spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), ...args], { cwd: scratch, encoding: "utf8" });
}

describe("the packed client", () => {
  test("when a consumer uses the client as documented, then it type-checks", () => {
    const out = tsc("good.ts");
    expect(out.stdout + out.stderr).toBe("");
    expect(out.status).toBe(0);
  }, 120_000);

  test("when a consumer misspells a field, then it fails to compile naming the field", () => {
    const out = tsc("misspelled.ts");
    expect(out.status).not.toBe(0);
    expect(out.stdout).toContain("'apikey' does not exist");
    expect(out.stdout).toContain("'workspaceID' does not exist");
  }, 120_000);
});
