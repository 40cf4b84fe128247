// Opens the store named by DATABASE_URL and keeps dialect differences in one place.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import knex, { type Knex } from "knex";
import { migrationSource } from "./migrations.js";

export type Dialect = "sqlite" | "postgres";

export interface Database {
  knex: Knex;
  dialect: Dialect;
  /** For SQLite, the database file (null in memory); null on PostgreSQL. */
  sqlitePath: string | null;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  poolMax?: number;
  statementTimeoutMs?: number;
  ssl?: boolean | { rejectUnauthorized: boolean };
}

export function parseDatabaseUrl(url: string): { dialect: Dialect; target: string } {
  if (url.startsWith("sqlite:")) return { dialect: "sqlite", target: url.slice("sqlite:".length) || ":memory:" };
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return { dialect: "postgres", target: url };
  throw new Error(`DATABASE_URL must be 'sqlite:<path>' or 'postgres://…'; got a value starting '${url.slice(0, 12)}'`);
}

// Knex prepares every statement again on every query; with better-sqlite3 a prepared
// statement can be reused (Knex runs each synchronously), so keep them by SQL text.
// The hot paths repeat a handful of statements; the cap bounds the odd dynamic ones.
const STATEMENT_CACHE_SIZE = 500;

function cachePreparedStatements(conn: { prepare(sql: string): unknown }) {
  const prepare = conn.prepare.bind(conn);
  const cache = new Map<string, unknown>();
  conn.prepare = (sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = prepare(sql);
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(sql, statement);
    }
    return statement;
  };
}

/**
 * The database holds sealed secrets and token hashes: owner-only. SQLite gives the -wal and
 * -shm files it creates the database file's mode; existing ones are tightened too.
 */
function ownerOnly(path: string) {
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

// PostgreSQL parses and plans an unnamed statement on every query; a named one is prepared
// once per connection and then only executed. Knex sends `{ text, values }`: name each
// distinct data statement by its text (up to the same cap as on SQLite). The hot statements
// (below) take their names from the same connection's registry.
type PgQueryable = { query: (config: unknown, ...rest: unknown[]) => unknown };
const DATA_STATEMENT = /^\s*(select|insert|update|delete|with)\b/i;

/** A connection's statement names, by SQL text. */
type PgNames = { names: Map<string, string>; made: number };
const pgNamesByConnection = new WeakMap<object, PgNames>();
function pgNames(conn: object): PgNames {
  let names = pgNamesByConnection.get(conn);
  if (!names) pgNamesByConnection.set(conn, (names = { names: new Map(), made: 0 }));
  return names;
}
/** The name `text` is prepared under on this connection; undefined past the cap (then it runs unnamed). */
function pgNameFor(conn: object, text: string): string | undefined {
  const registry = pgNames(conn);
  let name = registry.names.get(text);
  if (!name && registry.names.size < STATEMENT_CACHE_SIZE) registry.names.set(text, (name = `s${registry.made++}`));
  return name;
}
/** A new name for `text`, once its prepared form no longer fits the table (see below). */
function pgRename(conn: object, text: string): string {
  const registry = pgNames(conn);
  const name = `s${registry.made++}`;
  registry.names.set(text, name);
  return name;
}
// A migration by another process changed a table under a prepared `select *` ("cached plan
// must not change result type"): the statement is prepared again under a new name, once.
const REPLAN = "0A000";

function nameRepeatedStatements(conn: PgQueryable) {
  const query = conn.query.bind(conn);
  conn.query = (config: unknown, ...rest: unknown[]) => {
    const c = config as { text?: unknown; name?: unknown } | null;
    const done = rest[0];
    if (!c || typeof c !== "object" || typeof c.text !== "string" || c.name !== undefined || !DATA_STATEMENT.test(c.text) || typeof done !== "function") {
      return query(config, ...rest);
    }
    const text = c.text;
    const name = pgNameFor(conn, text);
    if (!name) return query(config, ...rest);
    return query({ ...c, name }, (err: { code?: string } | null, result: unknown) => {
      if (err?.code !== REPLAN) return done(err, result);
      query({ ...c, name: pgRename(conn, text) }, done);
    });
  };
}

/** A statement and its values, in the store's own placeholders (`?` on SQLite, `$n` on PostgreSQL). */
export interface Statement {
  sql: string;
  values: readonly unknown[];
  /**
   * The columns the statement selects or returns, in order, when it names them. SQLite then
   * reads its rows as arrays and names them here: better-sqlite3 builds a row object with
   * dozens of columns at twice the cost (21 rows of 48 columns: about 240 against 120 µs).
   */
  columns?: readonly string[];
}

/**
 * The hot statements run here, past Knex's builder and runner (its transaction machinery
 * alone was a fifth of a create's CPU), on connections taken from Knex's own pool, so they
 * never interleave with a Knex transaction. Prepared once per connection as any other
 * statement (the SQLite cache and PostgreSQL names above).
 */
export interface Statements {
  dialect: Dialect;
  /**
   * Rows of one statement outside any transaction. On a SQLite file it runs on a second,
   * read-only connection, so a read never queues behind a write transaction; WAL gives it
   * everything committed before it started.
   */
  read<T>(statement: Statement): Promise<T[]>;
  /**
   * Runs the steps in one transaction on one connection and returns the first step's rows;
   * when the first step returns no row (an UPDATE whose version moved on), the others are
   * skipped. On SQLite the transaction runs synchronously, so the writer is held for its
   * statements only, and writes of the same turn of the event loop share it, each in a savepoint
   * (sqliteWriter). On PostgreSQL it takes exactly one statement (a CTE holds the rest).
   */
  write<T>(steps: readonly Statement[]): Promise<T[]>;
}

type SqliteStatement = { reader: boolean; all(values: readonly unknown[]): unknown[]; run(values: readonly unknown[]): unknown; raw(toggle: boolean): SqliteStatement };
type SqliteConnection = { prepare(sql: string): SqliteStatement; transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R };
type PgConnection = { query(query: object): void };

// Knex's better-sqlite3 dialect binds booleans as 0/1; so do the statements here.
const sqliteValues = (values: readonly unknown[]) => values.map((v) => (typeof v === "boolean" ? Number(v) : v));

function namedRows(rows: unknown[][], columns: readonly string[]): Record<string, unknown>[] {
  return rows.map((values) => {
    if (values.length !== columns.length) throw new Error(`a statement answered ${values.length} columns where ${columns.length} were named`);
    const row: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) row[columns[i]] = values[i];
    return row;
  });
}

function runSqlite(conn: SqliteConnection, { sql, values, columns }: Statement): unknown[] {
  const statement = conn.prepare(sql);
  if (!statement.reader) {
    statement.run(sqliteValues(values));
    return [];
  }
  if (!columns) return statement.all(sqliteValues(values));
  // The prepared statement is shared by SQL text (cachePreparedStatements): raw only for this call.
  statement.raw(true);
  try {
    return namedRows(statement.all(sqliteValues(values)) as unknown[][], columns);
  } finally {
    statement.raw(false);
  }
}

/** A write waiting for its batch: its steps, and where its rows or its error go once the batch has committed. */
interface PendingWrite {
  steps: readonly Statement[];
  resolve(rows: unknown[]): void;
  reject(err: unknown): void;
}

type BatchOutcome = { rows: unknown[] } | { err: unknown };

const sqliteBatches = new WeakMap<object, { one: (steps: readonly Statement[]) => unknown[]; many: (batch: readonly PendingWrite[]) => BatchOutcome[] }>();
function sqliteBatch(conn: SqliteConnection) {
  let batch = sqliteBatches.get(conn);
  if (!batch) {
    // Alone, a write is its own transaction; inside `many`, better-sqlite3 makes the same function a savepoint.
    const one = conn.transaction((steps: readonly Statement[]) => {
      const first = runSqlite(conn, steps[0]);
      if (first.length > 0) for (let i = 1; i < steps.length; i++) runSqlite(conn, steps[i]);
      return first;
    });
    const many = conn.transaction((writes: readonly PendingWrite[]) =>
      writes.map((write): BatchOutcome => {
        try {
          return { rows: one(write.steps) };
        } catch (err) {
          // Its savepoint is rolled back and the others go on, unless SQLite ended the whole transaction.
          if (!(conn as unknown as { inTransaction: boolean }).inTransaction) throw err;
          return { err };
        }
      }),
    );
    sqliteBatches.set(conn, (batch = { one, many }));
  }
  return batch;
}

/**
 * SQLite: the writes that reach the store in one turn of the event loop commit together, each in
 * a savepoint of its own (so one that fails, say on a unique index, leaves the others), and each
 * caller hears of its write only once the batch has committed: as durable as a transaction of its
 * own. Why: a commit appends every page it changed to the WAL, and consecutive creates change the
 * same pages (the right-most leaves of the id-ordered indexes); one create alone wrote 13.4 pages,
 * two together 7.9 each, four 4.9; fewer pages is less CPU and fewer, shorter checkpoints.
 */
function sqliteWriter(withConnection: <T>(use: (conn: unknown) => T | Promise<T>) => Promise<T>) {
  let pending: PendingWrite[] | null = null;
  const commit = (conn: SqliteConnection, writes: readonly PendingWrite[]) => {
    const { one, many } = sqliteBatch(conn);
    if (writes.length === 1) {
      const [write] = writes;
      try {
        write.resolve(one(write.steps));
      } catch (err) {
        write.reject(err);
      }
      return;
    }
    const outcomes = many(writes); // throws, having rolled back, when the batch as a whole failed
    outcomes.forEach((outcome, i) => ("rows" in outcome ? writes[i].resolve(outcome.rows) : writes[i].reject(outcome.err)));
  };
  const flush = () => {
    const writes = pending!;
    pending = null;
    withConnection((conn) => commit(conn as SqliteConnection, writes)).catch((err) => {
      for (const write of writes) write.reject(err); // none was committed
    });
  };
  return <T>(steps: readonly Statement[]) =>
    new Promise<T[]>((resolve, reject) => {
      if (pending === null) {
        pending = [];
        setImmediate(flush);
      }
      pending.push({ steps, resolve: resolve as (rows: unknown[]) => void, reject });
    });
}

/**
 * PostgreSQL: the hot statements run as a query of pg's own Query class (client.query takes one as
 * it takes pg-cursor's), prepared under the connection's name for their text, that reads rows its
 * own way. For every query pg's Result turns the RowDescription into a row template and a type
 * parser per column (for rows of 48 columns, a dictionary-mode object spread into each row: the
 * largest self time of a GET, about a tenth of its CPU under the profiler); here the parsers are
 * made once per statement text and reused while the columns' types are the same, and each row is
 * a plain object filled in column order, named as the statement names its columns.
 */
type PgField = { name: string; dataTypeID: number; format: string };
type PgTypes = { getTypeParser(oid: number, format: string): (raw: string) => unknown };
type PgResult = { rows: unknown[]; _types?: PgTypes };
/** The part of pg's Query (pg/lib/query.js) the hot query builds on. */
interface PgBaseQuery {
  name?: string;
  _result: PgResult;
  _canceledDueToError: unknown;
}
type PgQueryClass = new (text: string, values: readonly unknown[], done: (err: (Error & { code?: string }) | null, result: PgResult) => void) => PgBaseQuery;

/** What a statement's rows are read with: the names its columns get, and a parser per column (null: the text as it is). */
interface PgShape {
  columns: readonly string[] | undefined;
  names: readonly string[];
  typeIds: number[];
  parsers: (((raw: string) => unknown) | null)[];
}

function pgRunner(Query: PgQueryClass) {
  const shapes = new Map<string, PgShape>();
  const shapeOf = (statement: Statement, fields: PgField[], types: PgTypes): PgShape => {
    const cached = shapes.get(statement.sql);
    // Kept for the same text, the same column names (the repository's constant lists, else the
    // names the fields had when it was built) and the same types.
    if (
      cached &&
      cached.columns === statement.columns &&
      cached.typeIds.length === fields.length &&
      fields.every((f, i) => f.dataTypeID === cached.typeIds[i] && f.format === "text" && (statement.columns !== undefined || f.name === cached.names[i]))
    )
      return cached;
    const names = statement.columns ?? fields.map((f) => f.name);
    if (fields.length !== names.length) throw new Error(`a statement answered ${fields.length} columns where ${names.length} were named`);
    const unparsed = types.getTypeParser(0, "text"); // pg-types' noParse: String(text)
    const shape: PgShape = {
      columns: statement.columns,
      names,
      typeIds: fields.map((f) => f.dataTypeID),
      parsers: fields.map((f, i) => {
        if (f.name !== names[i]) throw new Error(`a statement answered column ${f.name} where ${names[i]} was named`);
        const parser = types.getTypeParser(f.dataTypeID, f.format);
        return parser === unparsed ? null : parser;
      }),
    };
    if (shapes.size >= STATEMENT_CACHE_SIZE) shapes.delete(shapes.keys().next().value!);
    shapes.set(statement.sql, shape);
    return shape;
  };

  class HotQuery extends Query {
    private shape: PgShape | null = null;
    constructor(
      private readonly statement: Statement,
      name: string | undefined,
      done: (err: (Error & { code?: string }) | null, result: PgResult) => void,
    ) {
      super(statement.sql, statement.values, done);
      this.name = name;
    }
    // Called by pg's client for each message of the query's answer, as it calls pg's own Query's.
    handleRowDescription(msg: { fields: PgField[] }) {
      try {
        this.shape = shapeOf(this.statement, msg.fields, this._result._types ?? { getTypeParser: () => (raw: string) => raw });
      } catch (err) {
        this._canceledDueToError = err; // answered as an error at ReadyForQuery, as pg does for a row it cannot parse
      }
    }
    handleDataRow(msg: { fields: (string | null)[] }) {
      const shape = this.shape;
      if (this._canceledDueToError || !shape) return;
      const { names, parsers } = shape;
      const values = msg.fields;
      const row: Record<string, unknown> = {};
      try {
        for (let i = 0; i < names.length; i++) {
          const raw = values[i];
          const parse = parsers[i];
          row[names[i]] = raw === null ? null : parse === null ? raw : parse(raw);
        }
      } catch (err) {
        this._canceledDueToError = err;
        return;
      }
      this._result.rows.push(row);
    }
  }

  return (conn: PgConnection, statement: Statement) =>
    new Promise<unknown[]>((resolve, reject) => {
      const run = (name: string | undefined, retried: boolean) =>
        conn.query(
          new HotQuery(statement, name, (err, result) => {
            if (!err) return resolve(result.rows);
            if (err.code === REPLAN && name !== undefined && !retried) return run(pgRename(conn, statement.sql), true);
            reject(err);
          }),
        );
      run(DATA_STATEMENT.test(statement.sql) ? pgNameFor(conn, statement.sql) : undefined, false);
    });
}

function statementsFor(db: Knex, dialect: Dialect, readOnly: (() => SqliteConnection) | null): Statements {
  const client = db.client as { pool: unknown; acquireConnection(): Promise<unknown>; releaseConnection(conn: unknown): Promise<void> };
  const withConnection = async <T>(use: (conn: unknown) => T | Promise<T>): Promise<T> => {
    const conn = await client.acquireConnection();
    try {
      return await use(conn);
    } finally {
      await client.releaseConnection(conn);
    }
  };
  if (dialect === "sqlite") {
    return {
      dialect,
      // Once Knex's pool is destroyed the store is closed for reads too (acquiring then throws).
      read: async <T>(statement: Statement) =>
        readOnly && client.pool ? (runSqlite(readOnly(), statement) as T[]) : withConnection((conn) => runSqlite(conn as SqliteConnection, statement) as T[]),
      write: sqliteWriter(withConnection),
    };
  }
  // The Query class of the pg module Knex loaded (its client's driver).
  const pgQuery = pgRunner((client as unknown as { driver: { Query: PgQueryClass } }).driver.Query);
  return {
    dialect,
    read: <T>(statement: Statement) => withConnection((conn) => pgQuery(conn as PgConnection, statement) as Promise<T[]>),
    // On PostgreSQL a write is one statement (its events in a CTE: mcp-server-repo.ts), its own transaction.
    write: <T>(steps: readonly Statement[]) => {
      if (steps.length !== 1) throw new Error("a PostgreSQL write is one statement (put its other steps in a CTE)");
      return withConnection((conn) => pgQuery(conn as PgConnection, steps[0]) as Promise<T[]>);
    },
  };
}

const statementsByKnex = new WeakMap<Knex, Statements>();

/** The hot-statement runner of a Knex instance (made by openDatabase; one without a read-only connection otherwise). */
export function statementsOf(db: Knex): Statements {
  let statements = statementsByKnex.get(db);
  if (!statements) {
    statements = statementsFor(db, (db.client as { config: { client: string } }).config.client === "pg" ? "postgres" : "sqlite", null);
    statementsByKnex.set(db, statements);
  }
  return statements;
}

/** SQLite: the read-only connection, opened at the first read (the file exists and is migrated by then). */
function readOnlyConnection(path: string) {
  let conn: (SqliteConnection & { close(): void; pragma(s: string): unknown }) | null = null;
  let closed = false;
  return {
    get: () => {
      if (closed) throw new Error("the database connection is closed");
      if (!conn) {
        // Loaded here, not at the top: a PostgreSQL server never loads better-sqlite3.
        const BetterSqlite3 = createRequire(import.meta.url)("better-sqlite3") as new (path: string, options: { readonly: boolean; fileMustExist: boolean }) => NonNullable<typeof conn>;
        conn = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
        conn.pragma("busy_timeout = 5000");
        cachePreparedStatements(conn);
      }
      return conn;
    },
    close: () => {
      closed = true;
      conn?.close();
      conn = null;
    },
  };
}

// In WAL mode a checkpoint copies the log back into the database file and syncs both (9 ms
// per fsync at p50 on the bench machine's disk, 120 ms at worst). By default the commit that
// takes the log past 1000 pages runs it, so about one create in 70 waited for it inside its
// request. Here a worker thread runs a PASSIVE checkpoint (it neither waits for nor blocks the
// writer or a reader) on a connection of its own every CHECKPOINT_INTERVAL_MS; the writer
// checkpoints itself only past WAL_BACKSTOP_PAGES, which bounds the log (under continuous
// writes the worker never finishes it: commits arrive while it copies; the writer's pass then
// finds little left to copy). With synchronous = NORMAL the log is synced at each checkpoint.
// Not more often: every 50 ms (tried on 2026-12-04) halved the backstop's syncs under continuous
// writes, but at 10-100 spaced writes a second the worker then finished the log between commits,
// and the next commit's restart of the log synced its header on the event loop: 3-4x as many
// fsyncs on the main thread as at 250 ms.
export const CHECKPOINT_INTERVAL_MS = 250;
export const WAL_BACKSTOP_PAGES = 16_384;

// Plain CommonJS, run with eval: one source for tsx, tsc's dist and the bundle alike. A failed
// checkpoint (a disk error) is tried again at the next tick; the backstop covers meanwhile.
const CHECKPOINTER = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
const checkpoint = () => { try { db.pragma("wal_checkpoint(PASSIVE)"); } catch {} };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.once("message", () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

/** Starts the checkpointer on a WAL database file; stop() waits for a checkpoint under way and closes its connection. */
function startCheckpointer(path: string) {
  const worker = new Worker(CHECKPOINTER, {
    eval: true,
    workerData: { path, driver: createRequire(import.meta.url).resolve("better-sqlite3"), intervalMs: CHECKPOINT_INTERVAL_MS },
    // Its own small heap; the main thread's resource limits are not its concern.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
  });
  worker.unref(); // never what keeps a process alive
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  worker.on("error", () => {}); // it failed to open the file: the writer's backstop checkpoints instead
  return {
    stop: async () => {
      worker.postMessage("stop");
      await exited;
    },
  };
}

export function openDatabase(url: string, options: DatabaseOptions = {}): Database {
  const { dialect, target } = parseDatabaseUrl(url);
  if (dialect === "sqlite") {
    const path = target === ":memory:" ? null : resolve(target);
    try {
      if (path) {
        mkdirSync(dirname(path), { recursive: true });
        ownerOnly(path);
      }
    } catch {
      // Opening the file then fails and is reported as the store being unavailable.
    }
    let checkpointer: ReturnType<typeof startCheckpointer> | null = null;
    const db = knex({
      client: "better-sqlite3",
      connection: { filename: path ?? ":memory:" },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: { pragma(s: string): unknown; prepare(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
          cachePreparedStatements(conn);
          conn.pragma("journal_mode = WAL");
          conn.pragma("synchronous = NORMAL");
          conn.pragma("busy_timeout = 5000");
          conn.pragma("foreign_keys = ON");
          if (path) {
            conn.pragma(`wal_autocheckpoint = ${WAL_BACKSTOP_PAGES}`);
            checkpointer ??= startCheckpointer(path);
          }
          done(null, conn);
        },
      },
    });
    const reader = path ? readOnlyConnection(path) : null;
    statementsByKnex.set(db, statementsFor(db, dialect, reader ? reader.get : null));
    return {
      knex: db,
      dialect,
      sqlitePath: path,
      close: async () => {
        // The writer closes last: the last connection to close folds the log into the file and removes it.
        await checkpointer?.stop();
        reader?.close();
        await db.destroy();
      },
    };
  }
  const db = knex({
    client: "pg",
    connection: {
      connectionString: target,
      ssl: options.ssl,
      statement_timeout: options.statementTimeoutMs,
    } as Knex.PgConnectionConfig,
    // At least two: migrations run beside the connection that holds the migration lock.
    pool: {
      min: 0,
      max: Math.max(2, options.poolMax ?? 10),
      afterCreate(conn: PgQueryable, done: (err: Error | null, conn: unknown) => void) {
        nameRepeatedStatements(conn);
        done(null, conn);
      },
    },
    acquireConnectionTimeout: 5000,
  });
  return { knex: db, dialect, sqlitePath: null, close: () => db.destroy() };
}

// PostgreSQL: held (transaction-scoped) by the process applying migrations, so that
// processes starting together take turns, and so `db unlock` can tell one is at work.
export const MIGRATION_ADVISORY_LOCK = 7_310_202_611;

/** SQLite: the file that names the process applying migrations (removed when it is done). */
const migratingMarker = (sqlitePath: string) => `${sqlitePath}.migrating`;

export async function migrate(db: Database): Promise<string[]> {
  let marker = db.sqlitePath ? migratingMarker(db.sqlitePath) : null;
  try {
    if (marker) writeFileSync(marker, `${process.pid}\n`);
  } catch {
    marker = null; // a directory we cannot write to fails the migration itself, reported as unavailable
  }
  try {
    const [, applied] = (await db.knex.migrate.latest({ migrationSource })) as [number, string[]];
    return applied;
  } finally {
    if (marker) rmSync(marker, { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class MigrationInProgress extends Error {}

/**
 * Clears Knex's migration lock left behind by a process killed while migrating. Throws
 * MigrationInProgress, changing nothing, while another process is applying migrations.
 * Returns whether the lock was set.
 */
export async function unlockMigrations(db: Database): Promise<boolean> {
  const clear = async (k: Knex) => {
    if (!(await k.schema.hasTable("knex_migrations_lock"))) return false;
    return (await k("knex_migrations_lock").where("is_locked", 1).update({ is_locked: 0 })) > 0;
  };
  if (db.dialect === "postgres") {
    return db.knex.transaction(async (trx) => {
      const { rows } = await trx.raw("select pg_try_advisory_xact_lock(?) as free", [MIGRATION_ADVISORY_LOCK]);
      if (!rows[0].free) throw new MigrationInProgress("another process is applying migrations right now");
      return clear(trx);
    });
  }
  const marker = db.sqlitePath ? migratingMarker(db.sqlitePath) : null;
  if (marker && existsSync(marker)) {
    const pid = Number.parseInt(readFileSync(marker, "utf8"), 10);
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
      throw new MigrationInProgress(`process ${pid} is applying migrations right now`);
    }
  }
  const cleared = await clear(db.knex);
  if (marker) rmSync(marker, { force: true });
  return cleared;
}

// Connection-level failures: the store is down, unreachable or not there (yet). Requests
// then get 503 and /readyz says not ready; anything else is a fault (500).
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EPIPE",
  "SQLITE_CANTOPEN",
  "SQLITE_BUSY",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "3D000", // invalid_catalog_name: the database does not exist (yet)
  "53300", // too_many_connections
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);

export function isUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown } | null, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && UNAVAILABLE_CODES.has(e.code)) return true;
    if (e.name === "KnexTimeoutError") return true;
    if (typeof e.message === "string" && /Connection terminated|connection (?:is )?closed|server closed the connection|Cannot open database|unable to open database|not currently accepting connections|the database system is (?:starting up|shutting down)/i.test(e.message)) return true;
  }
  return false;
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string } | null;
  return e?.code === "SQLITE_CONSTRAINT_UNIQUE" || e?.code === "SQLITE_CONSTRAINT_PRIMARYKEY" || e?.code === "23505";
}
