// Clears the (operation, status) record before a run; scripts/check-status-coverage.ts reads it after.
import { rmSync } from "node:fs";
import { COVERAGE_DIR } from "./server.js";

export default function setup() {
  rmSync(COVERAGE_DIR, { recursive: true, force: true });
}
