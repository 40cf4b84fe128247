// SQLite's write-ahead log (server/data/db.ts): checkpoints run off the request path, in a
// worker thread, and what that means for durability.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { CHECKPOINT_INTERVAL_MS, openDatabase } from "../server/data/db.js";

const root = join(import.meta.dirname, "..");
let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "mcp-api-wal-"));
  file = join(dir, "store.sqlite");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The rows of `t` in the database file alone, as a power loss would leave it without its log (null: the copy caught a checkpoint mid-write). */
function rowsInFileAlone(): number | null {
  const copy = join(dir, `alone-${Date.now()}.sqlite`);
  copyFileSync(file, copy);
  try {
    const db = new Database(copy, { readonly: true });
    try {
      return (db.prepare("select count(*) as n from t").get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return null;
  } finally {
    rmSync(copy, { force: true });
  }
}

describe("SQLite write-ahead log", () => {
  test("when a few rows are committed, then within the checkpoint interval they are in the database file itself, not only in its log", async () => {
    const db = openDatabase(`sqlite:${file}`);
    try {
      await db.knex.raw("create table t (x)");
      for (let i = 0; i < 5; i++) await db.knex.raw("insert into t values (?)", [i]);
      // Five small commits are far below SQLite's own autocheckpoint (1000 pages): only the
      // background checkpoint can have copied them into the file (and synced it).
      let rows: number | null = null;
      for (const deadline = Date.now() + 20 * CHECKPOINT_INTERVAL_MS; Date.now() < deadline && rows !== 5; ) {
        await new Promise((r) => setTimeout(r, CHECKPOINT_INTERVAL_MS / 5));
        rows = rowsInFileAlone();
      }
      expect(rows).toBe(5);
    } finally {
      await db.close();
    }
  });

  test("when the store is closed, then the log is folded into the file and removed", async () => {
    const db = openDatabase(`sqlite:${file}`);
    await db.knex.raw("create table t (x)");
    await db.knex.raw("insert into t values (1)");
    await db.knex("t").select(); // the read-only connection is open too
    await db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    expect(rowsInFileAlone()).toBe(1);
  });

  test("when the process is killed right after its commits, then every committed row is there", async () => {
    // A child process commits rows one by one, says how many, and is killed with SIGKILL mid-stream.
    const script = `
      import { openDatabase } from "./server/data/db.ts";
      const db = openDatabase(${JSON.stringify(`sqlite:${file}`)});
      await db.knex.raw("create table t (x)");
      for (let i = 1; ; i++) {
        await db.knex.raw("insert into t values (?)", [i]);
        process.stdout.write(i + "\\n");
      }`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let said = 0;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve) =>
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const complete = out.slice(0, out.lastIndexOf("\n")).split("\n");
        said = Number(complete[complete.length - 1]);
        if (said >= 300 && !child.killed) {
          child.kill("SIGKILL");
          resolve();
        }
      }),
    );
    await exited;
    const db = new Database(file);
    try {
      const { n } = db.prepare("select count(*) as n from t").get() as { n: number };
      expect(n).toBeGreaterThanOrEqual(said);
    } finally {
      db.close();
    }
  });
});
