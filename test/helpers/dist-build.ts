// dist/ for the tests that run the compiled server: `npm run build` when dist/ does not match
// the source beside it (server/build-stamp.ts decides, as the compiled server's start-up does),
// at most once however many test files ask at the same time. A lock directory serialises them,
// so one file's build never rewrites dist/ under another file's running server.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { staleBuild } from "../../server/build-stamp.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const LOCK = join(tmpdir(), `mcp-api-dist-build-${createHash("sha256").update(root).digest("hex").slice(0, 16)}.lock`);
const STALE_LOCK_MS = 5 * 60_000;

async function locked<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        /* released meanwhile */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Builds dist/ unless it is already the build of this checkout's source. */
export function ensureBuilt(): Promise<void> {
  return locked(async () => {
    if (existsSync(join(root, "dist", "server", "main.js")) && staleBuild(root) === null) return;
    await run("npm", ["run", "-s", "build"], { cwd: root });
  });
}
