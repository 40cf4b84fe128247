// Reads that never write: rate limits counted per process and flushed in batches, token
// checks cached for a documented delay. Real stores, real server processes.
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { openDatabase, type Database } from "../server/data/db.js";
import { createRateLimitRepo } from "../server/data/rate-limit-repo.js";
import { RateLimited } from "../server/domain/errors.js";
import { batchFor, createRateLimiter } from "../server/domain/rate-limit.js";
import { TOKEN_CACHE_MS } from "../server/domain/token-cache.js";
import { createLogger } from "../server/logger.js";
import { dropStore, provisionStore, raw, startServer } from "./helpers/server.js";
import { spawnServerProcess } from "./helpers/server-process.js";

const root = join(import.meta.dirname, "..");
let dataDir: string;
let databaseUrl: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-rl-"));
  databaseUrl = await provisionStore(dataDir);
  env = { ...process.env, DATABASE_URL: databaseUrl, MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  const services = await openServices(readConfig(env), createLogger("silent"));
  await services.db.close();
}, 60_000);

afterEach(() => {
  for (const p of processes.splice(0)) p.kill("SIGTERM");
});

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  await dropStore(databaseUrl);
});

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

async function startProcess(extraEnv: Record<string, string>): Promise<string> {
  return spawnServerProcess(root, { ...env, ...extraEnv }, processes);
}

/** Fixed one-minute windows: start a counting test early in one, so it does not straddle two. */
async function startOfWindow() {
  const second = (Date.now() / 1000) % 60;
  if (second > 40) await new Promise((r) => setTimeout(r, (61 - second) * 1000));
}

async function storedHits(db: Database, bucket: string): Promise<number> {
  const rows = await db.knex("rate_limits").where({ bucket }).select("hits");
  return rows.reduce((sum, r) => sum + Number(r.hits), 0);
}

describe("rate limiter on a real store", () => {
  let db: Database;
  beforeAll(() => {
    db = openDatabase(databaseUrl);
  });
  afterAll(() => db.close());

  test("when the limit allows batching, then requests are counted locally and reach the store in one write", async () => {
    const limiter = createRateLimiter(createRateLimitRepo(db.knex), 100_000, { flushMs: 60_000 });
    const bucket = `token:batch-${randomBytes(4).toString("hex")}`;
    for (let i = 0; i < 500; i++) await limiter.consume(bucket);
    expect(limiter.batch).toBe(1000);
    expect(await storedHits(db, bucket)).toBe(0);
    await limiter.close();
    expect(await storedHits(db, bucket)).toBe(500);
  });

  test("when the batch is 1 (limits below 200 a minute), then two processes' limiters share the limit exactly", async () => {
    await startOfWindow();
    const a = createRateLimiter(createRateLimitRepo(db.knex), 4);
    const b = createRateLimiter(createRateLimitRepo(db.knex), 4);
    const bucket = `token:exact-${randomBytes(4).toString("hex")}`;
    const outcomes: string[] = [];
    for (const limiter of [a, b, a, b, a, b]) {
      outcomes.push(await limiter.consume(bucket).then((s) => `ok r=${s.remaining}`, (e) => (e instanceof RateLimited ? "429" : String(e))));
    }
    expect(outcomes).toEqual(["ok r=3", "ok r=2", "ok r=1", "ok r=0", "429", "429"]);
    await Promise.all([a.close(), b.close()]);
  });

  test("when N limiters hammer one bucket concurrently, then at least the limit and fewer than limit + N × batch get through", async () => {
    await startOfWindow();
    const limit = 1000;
    const n = 4;
    const limiters = Array.from({ length: n }, () => createRateLimiter(createRateLimitRepo(db.knex), limit));
    const bucket = `token:hammer-${randomBytes(4).toString("hex")}`;
    let admitted = 0;
    await Promise.all(
      limiters.map(async (limiter) => {
        for (let i = 0; i < 400; i++) {
          await limiter.consume(bucket).then(() => admitted++, (e) => expect(e).toBeInstanceOf(RateLimited));
        }
      }),
    );
    expect(admitted).toBeGreaterThanOrEqual(limit);
    expect(admitted).toBeLessThan(limit + n * batchFor(limit));
    await Promise.all(limiters.map((l) => l.close()));
    expect(await storedHits(db, bucket)).toBe(1600);
  });
});

describe("rate limits across server processes", () => {
  test("when three processes serve one token hammered through all of them, then they stay within the documented overshoot", async () => {
    const limit = 300; // batch 3: fewer than 300 + 3 × 3 get through
    const n = 3;
    const ws = `ws_rl_${randomBytes(4).toString("hex")}`;
    const token = await cli("create", "--user", "usr_rl", "--workspace", ws);
    const urls = await Promise.all(Array.from({ length: n }, () => startProcess({ MCP_API_RATE_LIMIT: String(limit) })));
    await startOfWindow();
    const statuses: number[] = [];
    await Promise.all(
      urls.flatMap((url) =>
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 25; i++) statuses.push((await raw(url, "GET", `/api/mcp-servers?workspaceId=${ws}&limit=1`, { token })).status);
        }),
      ),
    );
    expect(statuses).toHaveLength(600);
    expect(new Set(statuses)).toEqual(new Set([200, 429]));
    const admitted = statuses.filter((s) => s === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(limit);
    expect(admitted).toBeLessThan(limit + n * batchFor(limit));
  }, 90_000);
});

describe("token checks", () => {
  test(`when a token is revoked by another process, then a server that just accepted it refuses it within ${TOKEN_CACHE_MS} ms`, async () => {
    const ws = `ws_rv_${randomBytes(4).toString("hex")}`;
    const token = await cli("create", "--user", "usr_rv", "--workspace", ws);
    const id = (await cli("list")).split("\n").find((l) => l.includes(ws))!.split("\t")[0];
    const url = await startProcess({});
    expect((await raw(url, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).status).toBe(200);
    await cli("revoke", id);
    const revokedAt = Date.now();
    // Within the delay the cached answer may still let it through; after it, never.
    await new Promise((r) => setTimeout(r, Math.max(0, revokedAt + TOKEN_CACHE_MS + 20 - Date.now())));
    const after = await raw(url, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token });
    expect(after.status).toBe(401);
    expect(after.json.type).toBe("/problems/unauthorized");
  }, 60_000);
});

describe("reads", () => {
  test("when one token reads 50 times, then the only writes are the rate limiter's once-a-second flushes and the token table is read once per cache period", async () => {
    const s = await startServer({ env: { MCP_API_RATE_LIMIT: "100000" } });
    try {
      const ws = `ws_reads_${randomBytes(4).toString("hex")}`;
      const token = await s.token([ws]);
      const statements: string[] = [];
      s.services.db.knex.on("query", (q: { sql: string }) => statements.push(q.sql));
      const started = Date.now();
      for (let i = 0; i < 50; i++) expect((await raw(s.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).status).toBe(200);
      const periods = Math.ceil((Date.now() - started) / 1000) + 1; // FLUSH_MS and TOKEN_CACHE_MS are both 1 s
      const writes = statements.filter((sql) => /^\s*(insert|update|delete)\b/i.test(sql));
      expect(writes.every((sql) => /^insert into rate_limits/i.test(sql)), writes.join("\n")).toBe(true);
      expect(writes.length).toBeLessThanOrEqual(periods);
      expect(writes.length).toBeLessThan(50);
      const tokenReads = statements.filter((sql) => /\bapi_tokens\b/.test(sql)).length;
      expect(tokenReads).toBeLessThanOrEqual(periods);
      expect(tokenReads).toBeLessThan(50);
    } finally {
      await s.stop();
    }
  });
});

describe("requests without a token", () => {
  test("when one address sends more than the limit without any Authorization header, then 429 with Retry-After", async () => {
    await startOfWindow();
    const s = await startServer({ env: { MCP_API_RATE_LIMIT: "3" } });
    try {
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await raw(s.baseUrl, "GET", "/api/mcp-servers?workspaceId=ws_x"));
      expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 429, 429]);
      expect(answers[3].json.type).toBe("/problems/rate-limited");
      expect(Number(answers[3].headers.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await s.stop();
    }
  });
});
