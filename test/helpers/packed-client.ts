// Packs client/ with `npm run -s pack:client` and installs the tarball into an empty scratch
// project, as a consumer would. Offline and whatever the npm cache holds: the client's
// dependencies are packed from this checkout's node_modules and installed beside it.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

export const root = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

export interface PackedClient {
  /** The scratch project the tarball was installed into. */
  dir: string;
  tarball: string;
  /** What `npm run -s pack:client` printed. */
  packOutput: string;
  /** The installed `mcp-servers` bin. */
  bin: string;
  cleanup(): void;
}

// client/package.json's dependencies and theirs, as the root lockfile resolved them.
const CLIENT_DEPENDENCIES = ["openapi-fetch", "openapi-typescript-helpers"];

export async function installPackedClient(): Promise<PackedClient> {
  const dir = mkdtempSync(join(tmpdir(), "mcp-client-consumer-"));
  const { stdout: packOutput } = await run("npm", ["run", "-s", "pack:client", "--", "--out", dir], { cwd: root });
  const tarball = packOutput.trimEnd().split("\n").at(-1)!;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  const { stdout: depsOutput } = await run("npm", ["pack", "-q", ...CLIENT_DEPENDENCIES.map((d) => join(root, "node_modules", d))], { cwd: dir });
  const deps = depsOutput.trim().split("\n").map((f) => join(dir, f.trim()));
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball, ...deps], { cwd: dir });
  return { dir, tarball, packOutput, bin: join(dir, "node_modules/.bin/mcp-servers"), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
