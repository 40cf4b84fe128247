// The console's build for the tests that open it: built once if this checkout has not been (npm run build does it too).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export function ensureConsoleBuilt() {
  if (existsSync(join(process.cwd(), "dist", "console-app", "index.html"))) return;
  execFileSync(process.execPath, ["node_modules/vite/bin/vite.js", "build", "--config", "console/vite.config.ts"], { stdio: "pipe" });
}
