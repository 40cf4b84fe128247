// `npm run -s pack:client [-- --out DIR]`: builds client/ (its own package) in a scratch
// directory, packs it there, and prints the tarball's path, alone, as the last line.
// The tarball lands in DIR (default: where npm was run); nothing is written under client/.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parse } from "yaml";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { out: { type: "string" } } });
const out = resolve(process.env.INIT_CWD ?? process.cwd(), values.out ?? ".");

const manifest = JSON.parse(readFileSync(join(root, "client/package.json"), "utf8"));
const specVersion = parse(readFileSync(join(root, "openapi.yaml"), "utf8")).info.version;
if (manifest.version !== specVersion) {
  console.error(`client/package.json version ${manifest.version} does not follow openapi.yaml info.version ${specVersion}; make them equal.`);
  process.exit(1);
}

const stage = mkdtempSync(join(tmpdir(), "mcp-client-pack-"));
try {
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.client.json"), "--outDir", join(stage, "dist")], { stdio: "inherit" });
  chmodSync(join(stage, "dist/client/cli.js"), 0o755);
  copyFileSync(join(root, "client/package.json"), join(stage, "package.json"));
  copyFileSync(join(root, "client/README.md"), join(stage, "README.md"));
  mkdirSync(out, { recursive: true });
  const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", out], { cwd: stage, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }));
  console.log(join(out, packed[0].filename));
} finally {
  rmSync(stage, { recursive: true, force: true });
}
