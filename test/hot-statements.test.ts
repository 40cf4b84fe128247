// The hot statements' runner (server/data/db.ts statementsOf): rows named as the statement names
// its columns, on either store; on PostgreSQL each column's type parser is kept per statement text
// (issue 25), so a column whose type changes must be read by its new type.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openDatabase, statementsOf, type Database } from "../server/data/db.js";
import { dropStore, provisionStore } from "./helpers/server.js";

let dir: string;
let url: string;
let db: Database;
const pg = () => db.dialect === "postgres";
const slot = (n: number) => (pg() ? `$${n}` : "?");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mcp-api-hot-"));
  url = await provisionStore(dir);
  db = openDatabase(url);
  await db.knex.schema.createTable("hot_rows", (t) => {
    t.string("id").primary();
    t.integer("n").notNullable();
    t.boolean("b").notNullable();
    t.text("note").nullable();
  });
  await db.knex("hot_rows").insert([
    { id: "a", n: 1, b: true, note: "first" },
    { id: "b", n: 2, b: false, note: null },
  ]);
});
afterAll(async () => {
  await db?.close();
  if (url) await dropStore(url);
  rmSync(dir, { recursive: true, force: true });
});

describe("statementsOf(db).read", () => {
  test("when a statement names its columns, then each row has them in order, integers as numbers and null as null", async () => {
    const rows = await statementsOf(db.knex).read<Record<string, unknown>>({
      sql: `select "id", "n", "b", "note" from "hot_rows" where "n" >= ${slot(1)} order by "id"`,
      values: [1],
      columns: ["id", "n", "b", "note"],
    });
    const yes = pg() ? true : 1; // SQLite answers a boolean column as 0 or 1
    const no = pg() ? false : 0;
    expect(rows).toEqual([
      { id: "a", n: 1, b: yes, note: "first" },
      { id: "b", n: 2, b: no, note: null },
    ]);
    expect(Object.keys(rows[0])).toEqual(["id", "n", "b", "note"]);
  });

  test("when the same statement runs again, then it answers the same rows (its parsers reused)", async () => {
    const statement = { sql: `select "id", "n" from "hot_rows" where "id" = ${slot(1)}`, values: ["b"], columns: ["id", "n"] };
    for (let i = 0; i < 5; i++) expect(await statementsOf(db.knex).read(statement)).toEqual([{ id: "b", n: 2 }]);
  });

  test("when a statement answers another number of columns than it names, then the read fails and the store still answers", async () => {
    await expect(statementsOf(db.knex).read({ sql: `select "id", "n" from "hot_rows" where "id" = ${slot(1)}`, values: ["a"], columns: ["id"] })).rejects.toThrow(
      "a statement answered 2 columns where 1 were named",
    );
    expect(await statementsOf(db.knex).read({ sql: `select "id" from "hot_rows" where "id" = ${slot(1)}`, values: ["a"], columns: ["id"] })).toEqual([{ id: "a" }]);
  });
});

describe("statementsOf(db).write, several writes at once", () => {
  // On SQLite the writes of one turn of the event loop commit together, each in its own savepoint (db.ts: sqliteWriter).
  test("when one of several writes made at once breaks the primary key, then only it fails and the others are written", async () => {
    await db.knex.schema.createTable("hot_writes", (t) => {
      t.string("id").primary();
      t.text("note").notNullable();
    });
    await db.knex("hot_writes").insert({ id: "taken", note: "first" });
    const insert = (id: string, note: string) =>
      statementsOf(db.knex).write<{ id: string; note: string }>([{ sql: `insert into "hot_writes" ("id", "note") values (${slot(1)}, ${slot(2)}) returning "id", "note"`, values: [id, note], columns: ["id", "note"] }]);
    const outcomes = await Promise.allSettled([insert("w1", "one"), insert("taken", "again"), insert("w2", "two")]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[0] as PromiseFulfilledResult<unknown>).value).toEqual([{ id: "w1", note: "one" }]);
    expect((outcomes[2] as PromiseFulfilledResult<unknown>).value).toEqual([{ id: "w2", note: "two" }]);
    expect(await db.knex("hot_writes").orderBy("id").select("id", "note")).toEqual([
      { id: "taken", note: "first" },
      { id: "w1", note: "one" },
      { id: "w2", note: "two" },
    ]);
    await db.knex.schema.dropTable("hot_writes");
  });

  test("when a write made beside others fails in its second step, then none of its steps is written and the others' are", async () => {
    if (pg()) return; // a PostgreSQL write is one statement
    await db.knex.schema.createTable("hot_steps", (t) => {
      t.string("id").primary();
    });
    const write = (first: string, second: string) =>
      statementsOf(db.knex).write([
        { sql: `insert into "hot_steps" ("id") values (?) returning "id"`, values: [first], columns: ["id"] },
        { sql: `insert into "hot_steps" ("id") values (?)`, values: [second] },
      ]);
    // The second write's second step collides with the first write's first: its own first step goes back with it.
    const outcomes = await Promise.allSettled([write("a1", "a2"), write("b1", "a1"), write("c1", "c2")]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await db.knex("hot_steps").orderBy("id").select("id")).map((r) => r.id)).toEqual(["a1", "a2", "c1", "c2"]);
    await db.knex.schema.dropTable("hot_steps");
  });
});

describe("statementsOf(db) on PostgreSQL, a column renamed under a statement that names none", () => {
  test("when a migration renames a column but keeps its type, then rows come back under the new name", async () => {
    if (!pg()) return; // SQLite rows carry their own names; nothing is kept per statement there
    await db.knex.schema.createTable("hot_renamed", (t) => {
      t.string("id").primary();
      t.text("label").notNullable();
    });
    await db.knex("hot_renamed").insert({ id: "a", label: "one" });
    // No column list: the names are the fields' own, and the kept shape must not outlive them.
    const statement = { sql: `select * from "hot_renamed" where "id" = $1`, values: ["a"] };
    expect(await statementsOf(db.knex).read(statement)).toEqual([{ id: "a", label: "one" }]);
    await db.knex.raw(`alter table "hot_renamed" rename column "label" to "title"`);
    expect(await statementsOf(db.knex).read(statement)).toEqual([{ id: "a", title: "one" }]);
    await db.knex.schema.dropTable("hot_renamed");
  });
});

describe("statementsOf(db) on PostgreSQL, a column's type changed under a prepared statement", () => {
  test("when a migration changes the column's type, then the statement is read by the new type on every connection", async () => {
    if (!pg()) return; // SQLite rows carry their own types; nothing is kept per statement there
    const statement = { sql: `select "id", "n" from "hot_rows" where "id" = $1`, values: ["a"], columns: ["id", "n"] };
    // Prepared on each pooled connection: the reads run at once, so they take different connections.
    for (const rows of await Promise.all([1, 2, 3].map(() => statementsOf(db.knex).read(statement)))) expect(rows).toEqual([{ id: "a", n: 1 }]);
    await db.knex.raw(`alter table "hot_rows" alter column "n" type text using "n"::text`);
    // PostgreSQL refuses the old prepared form (0A000): prepared again under a new name, and the
    // integer parser kept for the statement is not applied to the text column.
    for (const rows of await Promise.all([1, 2, 3].map(() => statementsOf(db.knex).read(statement)))) expect(rows).toEqual([{ id: "a", n: "1" }]);
    expect(await statementsOf(db.knex).write([{ sql: `update "hot_rows" set "note" = $1 where "id" = $2 returning "id", "n", "note"`, values: ["again", "a"], columns: ["id", "n", "note"] }])).toEqual([
      { id: "a", n: "1", note: "again" },
    ]);
  });
});
