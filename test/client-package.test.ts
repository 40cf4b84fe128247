// Proves the client package from the outside: `npm run -s pack:client`, the tarball installed
// into an empty project, consumer code type-checked against it.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { installPackedClient, root, type PackedClient } from "./helpers/packed-client.js";

let packed: PackedClient;

beforeAll(async () => {
  packed = await installPackedClient();
  cpSync(join(root, "test/fixtures/consumer"), join(packed.dir, "src"), { recursive: true });
}, 300_000);

afterAll(() => packed?.cleanup());

function tsc(file: string) {
  const args = ["--noEmit", "--strict", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--target", "ES2022", "--skipLibCheck", join("src", file)];
  return spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), ...args], { cwd: packed.dir, encoding: "utf8" });
}

describe("npm run -s pack:client", () => {
  test("when run, then the last line it prints is the tarball's path, alone", () => {
    // README captures it with $(…): nothing else goes to stdout.
    expect(packed.packOutput).toBe(`${packed.tarball}\n`);
    const last = packed.packOutput.trimEnd().split("\n").at(-1)!;
    expect(last).toBe(packed.tarball);
    expect(last).toMatch(/^\/.+\/mcp-servers-api-client-\d+\.\d+\.\d+\.tgz$/);
    expect(existsSync(last)).toBe(true);
  });

  test("when packed, then the tarball holds the built client, its types, the CLI and README, and nothing of the server", () => {
    const files = execFileSync("tar", ["tzf", packed.tarball], { encoding: "utf8" }).trim().split("\n").sort();
    expect(files).toEqual([
      "package/README.md",
      "package/dist/client/cli.d.ts",
      "package/dist/client/cli.js",
      "package/dist/client/index.d.ts",
      "package/dist/client/index.js",
      "package/dist/client/table.d.ts",
      "package/dist/client/table.js",
      "package/dist/generated/api.d.ts",
      "package/dist/generated/api.js",
      "package/package.json",
    ]);
  });
});

describe("the client package", () => {
  test("when its version is read, then it follows openapi.yaml info.version", () => {
    const manifest = JSON.parse(readFileSync(join(root, "client/package.json"), "utf8"));
    const spec = parse(readFileSync(join(root, "openapi.yaml"), "utf8"));
    expect(manifest.version).toBe(spec.info.version);
    const installed = JSON.parse(readFileSync(join(packed.dir, "node_modules/@mcp-servers-api/client/package.json"), "utf8"));
    expect(installed.version).toBe(spec.info.version);
  });

  test("when installed into an empty project, then it adds only itself, openapi-fetch and that library's helpers", () => {
    const lock = JSON.parse(readFileSync(join(packed.dir, "node_modules/.package-lock.json"), "utf8"));
    expect(Object.keys(lock.packages).sort()).toEqual(["node_modules/@mcp-servers-api/client", "node_modules/openapi-fetch", "node_modules/openapi-typescript-helpers"]);
    const manifest = JSON.parse(readFileSync(join(root, "client/package.json"), "utf8"));
    expect(manifest.dependencies).toEqual({ "openapi-fetch": expect.stringMatching(/^\d+\.\d+\.\d+$/) });
    expect(manifest.type).toBe("module");
    expect(existsSync(packed.bin)).toBe(true);
  });

  test("when the server package is read, then it no longer ships the client", () => {
    const server = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(server.exports).toBeUndefined();
    expect(server.files).toBeUndefined();
  });

  test("when a consumer uses the client as documented, then it type-checks", () => {
    const out = tsc("good.ts");
    expect(out.stdout + out.stderr).toBe("");
    expect(out.status).toBe(0);
  }, 120_000);

  test("when a consumer misspells a field in an inline literal, then it fails to compile naming the field", () => {
    const out = tsc("misspelled.ts");
    expect(out.status).not.toBe(0);
    expect(out.stdout).toContain("'apikey' does not exist");
    expect(out.stdout).toContain("'nmae' does not exist");
    expect(out.stdout).toContain("'workspaceID' does not exist");
  }, 120_000);
});
