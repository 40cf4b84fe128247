// `npm run -s db -- unlock`: clears the migration lock a killed process left, never one in use.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import knex, { type Knex } from "knex";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { MIGRATION_ADVISORY_LOCK } from "../server/data/db.js";
import { createLogger } from "../server/logger.js";
import { dropStore, provisionStore, STORE } from "./helpers/server.js";

const root = join(import.meta.dirname, "..");
let dataDir: string;
let databaseUrl: string;
let env: NodeJS.ProcessEnv;
let db: Knex;

function unlock(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "scripts/db.ts", "unlock"], { cwd: root, env, encoding: "utf8" }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

const isLocked = async () => Number((await db("knex_migrations_lock").first()).is_locked);

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-unlock-"));
  databaseUrl = await provisionStore(dataDir);
  env = { ...process.env, DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "silent" };
  const config = readConfig(env);
  const services = await openServices(config, createLogger("silent"));
  await services.db.close();
  db = STORE === "sqlite" ? knex({ client: "better-sqlite3", connection: { filename: join(dataDir, "mcp-api.sqlite") }, useNullAsDefault: true }) : knex({ client: "pg", connection: databaseUrl });
});

afterEach(async () => {
  await db.destroy();
  rmSync(dataDir, { recursive: true, force: true });
  await dropStore(databaseUrl);
});

describe("npm run -s db -- unlock", () => {
  test("when a process killed while migrating left the lock set, then unlock clears it and the store migrates again", async () => {
    await db("knex_migrations_lock").update({ is_locked: 1 });
    const result = await unlock();
    expect(result).toMatchObject({ code: 0, stdout: "cleared the migration lock\n" });
    expect(await isLocked()).toBe(0);
    const services = await openServices(readConfig(env), createLogger("silent"));
    expect(services.readiness.migrated()).toBe(true);
    await services.db.close();
  });

  test("when the lock is not set, then unlock says there is nothing to do", async () => {
    const result = await unlock();
    expect(result).toMatchObject({ code: 0, stdout: "the migration lock was not held; nothing to do\n" });
  });

  test("when another process is applying migrations, then unlock refuses and the lock stays", async () => {
    await db("knex_migrations_lock").update({ is_locked: 1 });
    // What a migrating process holds: on SQLite the marker naming it (this live test process),
    // on PostgreSQL the advisory lock.
    let holder: Knex | null = null;
    let release = () => {};
    let finished: Promise<unknown> = Promise.resolve();
    if (STORE === "sqlite") writeFileSync(join(dataDir, "mcp-api.sqlite.migrating"), `${process.pid}\n`);
    else {
      holder = knex({ client: "pg", connection: databaseUrl, pool: { min: 1, max: 1 } });
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const taken = new Promise<void>((resolve) => (locked = resolve));
      finished = holder.transaction(async (trx) => {
        await trx.raw("select pg_advisory_xact_lock(?)", [MIGRATION_ADVISORY_LOCK]);
        locked();
        await held;
      });
      await taken;
    }
    try {
      const result = await unlock();
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^refused: .*applying migrations right now; the lock is in use, not left behind \(nothing changed\)\n$/);
      expect(await isLocked()).toBe(1);
    } finally {
      release();
      await finished;
      await holder?.destroy();
    }
  });

  test.runIf(STORE === "sqlite")("when the process named as migrating is gone, then unlock clears the lock", async () => {
    await db("knex_migrations_lock").update({ is_locked: 1 });
    writeFileSync(join(dataDir, "mcp-api.sqlite.migrating"), "2147483646\n");
    const result = await unlock();
    expect(result).toMatchObject({ code: 0, stdout: "cleared the migration lock\n" });
    expect(await isLocked()).toBe(0);
  });
});
