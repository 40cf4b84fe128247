// Whether dist/ was built from the source beside it. `npm run build` ends by writing
// dist/build-stamp.json (a hash of each source file it compiled or copied); the compiled
// server compares at start, so a stale build is refused by name instead of run unnoticed.
//   node dist/server/build-stamp.js --write     (the last step of `npm run build`)
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// What `npm run build` reads: tsconfig.build.json's inputs (and what they import), and the copied spec.
// The lock too: dist/server/main.js holds the bundled packages' code (scripts/bundle-server.ts).
const INPUTS = ["server", "client", "console", "generated", "scripts/token.ts", "scripts/keys.ts", "scripts/contract.ts", "scripts/db.ts", "scripts/catalog.ts", "scripts/bundle-server.ts", "openapi.yaml", "tsconfig.json", "tsconfig.build.json", "package-lock.json"];
const SOURCE = /\.(ts|tsx|css|html|json|yaml)$/;
const STAMP = "build-stamp.json";

interface Entry {
  hash: string;
  size: number;
  mtimeMs: number;
}

function sourceFiles(root: string): Map<string, { size: number; mtimeMs: number }> {
  const files = new Map<string, { size: number; mtimeMs: number }>();
  const walk = (path: string) => {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      return;
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) walk(join(path, entry));
    } else if (SOURCE.test(path)) {
      files.set(relative(root, path), { size: stat.size, mtimeMs: stat.mtimeMs });
    }
  };
  for (const input of INPUTS) walk(join(root, input));
  return files;
}

const hashOf = (root: string, file: string) => createHash("sha256").update(readFileSync(join(root, file))).digest("base64url").slice(0, 22);

export function writeBuildStamp(root: string): void {
  const files: Record<string, Entry> = {};
  for (const [file, stat] of [...sourceFiles(root)].sort(([a], [b]) => (a < b ? -1 : 1))) files[file] = { hash: hashOf(root, file), ...stat };
  writeFileSync(join(root, "dist", STAMP), JSON.stringify({ files }) + "\n");
}

/**
 * Null when dist/ matches the source beside it, or when there is no source beside it (a
 * deployment of dist/ alone); otherwise what differs, in a sentence naming the fix.
 */
export function staleBuild(root: string): string | null {
  if (!existsSync(join(root, "server"))) return null;
  const fix = "run `npm run build` (npm start no longer builds)";
  let built: Record<string, Entry>;
  try {
    built = (JSON.parse(readFileSync(join(root, "dist", STAMP), "utf8")) as { files: Record<string, Entry> }).files;
  } catch {
    return `dist/ has no ${STAMP}, so it may not match the source; ${fix}`;
  }
  const now = sourceFiles(root);
  // Size and modification time as at the build mean unchanged; otherwise the content decides (a checkout touches files).
  const same = (file: string) => {
    const was = built[file];
    const is = now.get(file);
    if (!was || !is) return false;
    return (was.size === is.size && was.mtimeMs === is.mtimeMs) || was.hash === hashOf(root, file);
  };
  const changed = [...new Set([...now.keys(), ...Object.keys(built)])].filter((f) => !same(f)).sort();
  if (changed.length === 0) return null;
  const more = changed.length > 1 ? ` and ${changed.length - 1} more` : "";
  return `dist/ is stale: ${changed[0]}${more} changed since the last build; ${fix}`;
}

// Only as its own script: the bundled dist/server/main.js holds this module too.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && /\/build-stamp\.[jt]s$/.test(import.meta.url) && process.argv[2] === "--write") {
  writeBuildStamp(fileURLToPath(new URL("../../", import.meta.url)));
}
