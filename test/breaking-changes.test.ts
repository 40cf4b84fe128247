import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { findBreakingChanges, type OpenApiDoc, type Schema } from "../scripts/breaking/compare.js";
import { applyDeclarations, parseDeclarations, releaseProblems } from "../scripts/breaking/declarations.js";

type Paths = NonNullable<OpenApiDoc["paths"]>;
type Item = Paths[string];
type Parameter = NonNullable<Item["parameters"]>[number];

const doc = (paths: Paths, version = "1.0.0"): OpenApiDoc => ({ info: { version }, paths });
const str: Schema = { type: "string" };
const int: Schema = { type: "integer" };
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: "object", properties, required });
const json = (schema: Schema) => ({ content: { "application/json": { schema } } });

/** POST /api/things taking `schema` as its JSON body. */
const accepts = (schema: Schema): Paths => ({
  "/api/things": { post: { requestBody: { required: true, ...json(schema) }, responses: { "201": {} } } },
});
/** GET /api/things/{id} answering `schema` (and whatever other statuses are given). */
const answers = (schema: Schema, others: Record<string, object> = {}): Paths => ({
  "/api/things/{id}": {
    parameters: [{ name: "id", in: "path", required: true, schema: str }],
    get: { responses: { "200": json(schema), ...others } },
  },
});
/** GET /api/things with the given parameters. */
const lists = (...parameters: Parameter[]): Paths => ({ "/api/things": { get: { parameters, responses: { "200": {} } } } });
const limit = (extra: Partial<Parameter> = {}, schema: Schema = { type: "integer", maximum: 100 }): Parameter => ({
  name: "limit",
  in: "query",
  schema,
  ...extra,
});

const thing = obj({ name: str, size: int }, ["name"]);
const withStatus = (values: string[]) => obj({ status: { type: "string", enum: values } }, ["status"]);
const field = (schema: Schema) => obj({ name: schema });

// Recursive schemas, as swagger-parser's dereference leaves them: objects that contain themselves.
function tree(withLabel: boolean): Schema {
  const node: Schema = obj(withLabel ? { label: str } : {});
  node.properties!.children = { type: "array", items: node };
  return node;
}

interface Row {
  name: string;
  before: Paths;
  after: Paths;
  rule: string | null;
  path?: string;
}

const rows: Row[] = [
  { name: "nothing changes", before: accepts(thing), after: accepts(thing), rule: null },
  {
    name: "an operation is removed",
    before: { "/api/things": { ...accepts(thing)["/api/things"], ...lists()["/api/things"] } },
    after: lists(),
    rule: "operation-removed",
    path: "POST /api/things",
  },
  { name: "a path is removed", before: { ...accepts(thing), ...answers(thing) }, after: accepts(thing), rule: "path-removed", path: "/api/things/{id}" },
  { name: "an operation is added", before: accepts(thing), after: { ...accepts(thing), ...answers(thing) }, rule: null },
  {
    name: "a path parameter is renamed in the template",
    before: answers(thing),
    after: { "/api/things/{thingId}": { get: { parameters: [{ name: "thingId", in: "path", required: true, schema: str }], responses: { "200": json(thing) } } } },
    rule: null,
  },
  { name: "a query parameter is removed", before: lists(limit()), after: lists(), rule: "parameter-removed", path: "GET /api/things query.limit" },
  { name: "an optional query parameter becomes required", before: lists(limit()), after: lists(limit({ required: true })), rule: "parameter-now-required" },
  { name: "a required query parameter is added", before: lists(), after: lists(limit({ required: true })), rule: "required-parameter-added" },
  { name: "an optional query parameter is added", before: lists(), after: lists(limit()), rule: null },
  {
    name: "a query parameter's maximum is lowered",
    before: lists(limit()),
    after: lists(limit({}, { type: "integer", maximum: 50 })),
    rule: "request-constraint-tightened",
    path: "GET /api/things query.limit",
  },
  { name: "the request body becomes required", before: { "/api/things": { post: { requestBody: json(thing) } } }, after: accepts(thing), rule: "request-body-now-required" },
  { name: "a request property is removed", before: accepts(thing), after: accepts(obj({ name: str }, ["name"])), rule: "request-property-removed", path: "POST /api/things requestBody.size" },
  { name: "a request property is renamed", before: accepts(thing), after: accepts(obj({ name: str, bytes: int }, ["name"])), rule: "request-property-removed", path: "POST /api/things requestBody.size" },
  { name: "an optional request property is added", before: accepts(thing), after: accepts(obj({ name: str, size: int, colour: str }, ["name"])), rule: null },
  { name: "a required request property is added", before: accepts(thing), after: accepts(obj({ name: str, size: int, colour: str }, ["name", "colour"])), rule: "request-property-now-required", path: "POST /api/things requestBody.colour" },
  { name: "an optional request property becomes required", before: accepts(thing), after: accepts(obj({ name: str, size: int }, ["name", "size"])), rule: "request-property-now-required", path: "POST /api/things requestBody.size" },
  { name: "an enum value is removed from a request property", before: accepts(withStatus(["on", "off"])), after: accepts(withStatus(["on"])), rule: "enum-value-removed", path: "POST /api/things requestBody.status" },
  { name: "an enum value is added to a request property", before: accepts(withStatus(["on"])), after: accepts(withStatus(["on", "off"])), rule: null },
  { name: "a request property's type set shrinks", before: accepts(field({ type: ["string", "integer"] })), after: accepts(field(str)), rule: "request-type-narrowed" },
  {
    name: "a nullable request property (oneOf [schema, null]) loses null",
    before: accepts(field({ oneOf: [{ type: "string", maxLength: 10 }, { type: "null" }] })),
    after: accepts(field({ type: "string", maxLength: 10 })),
    rule: "request-type-narrowed",
    path: "POST /api/things requestBody.name",
  },
  {
    name: "oneOf [schema, null] is rewritten as type [string, null] with the same constraints",
    before: accepts(field({ oneOf: [{ type: "string", maxLength: 10 }, { type: "null" }] })),
    after: accepts(field({ type: ["string", "null"], maxLength: 10 })),
    rule: null,
  },
  {
    name: "the schema inside oneOf [schema, null] tightens",
    before: accepts(field({ oneOf: [{ type: "string", maxLength: 10 }, { type: "null" }] })),
    after: accepts(field({ anyOf: [{ type: "string", maxLength: 5 }, { type: "null" }] })),
    rule: "request-constraint-tightened",
  },
  { name: "a request maxLength is reduced", before: accepts(field({ type: "string", maxLength: 100 })), after: accepts(field({ type: "string", maxLength: 50 })), rule: "request-constraint-tightened" },
  { name: "a request maxLength is raised", before: accepts(field({ type: "string", maxLength: 50 })), after: accepts(field({ type: "string", maxLength: 100 })), rule: null },
  { name: "a request minLength is raised", before: accepts(field(str)), after: accepts(field({ type: "string", minLength: 3 })), rule: "request-constraint-tightened" },
  { name: "a request minimum is raised", before: accepts(field({ type: "integer", minimum: 0 })), after: accepts(field({ type: "integer", minimum: 1 })), rule: "request-constraint-tightened" },
  { name: "a request pattern is changed", before: accepts(field({ type: "string", pattern: "^a" })), after: accepts(field({ type: "string", pattern: "^ab" })), rule: "request-constraint-tightened" },
  { name: "a request format is added", before: accepts(field(str)), after: accepts(field({ type: "string", format: "uri" })), rule: "request-constraint-tightened" },
  { name: "a request object stops accepting additional properties", before: accepts(thing), after: accepts({ ...thing, additionalProperties: false }), rule: "request-constraint-tightened", path: "POST /api/things requestBody" },
  {
    name: "a nested request property is removed",
    before: accepts(obj({ owner: obj({ email: str, name: str }) })),
    after: accepts(obj({ owner: obj({ name: str }) })),
    rule: "request-property-removed",
    path: "POST /api/things requestBody.owner.email",
  },
  { name: "a response property is removed", before: answers(thing), after: answers(obj({ name: str }, ["name"])), rule: "response-property-removed", path: "GET /api/things/{id} responses.200.size" },
  { name: "a response property is no longer required", before: answers(thing), after: answers(obj({ name: str, size: int })), rule: "response-property-no-longer-required", path: "GET /api/things/{id} responses.200.name" },
  { name: "a response property is added", before: answers(thing), after: answers(obj({ name: str, size: int, colour: str }, ["name", "colour"])), rule: null },
  { name: "a response status is removed", before: answers(thing, { "404": {} }), after: answers(thing), rule: "response-status-removed", path: "GET /api/things/{id} responses.404" },
  { name: "a response status is added", before: answers(thing), after: answers(thing, { "404": {} }), rule: null },
  { name: "a response property changes type", before: answers(field(str)), after: answers(field(int)), rule: "response-type-changed", path: "GET /api/things/{id} responses.200.name" },
  { name: "a response property becomes nullable", before: answers(field(str)), after: answers(field({ oneOf: [str, { type: "null" }] })), rule: "response-type-changed" },
  { name: "a nullable response property becomes non-null", before: answers(field({ type: ["string", "null"] })), after: answers(field(str)), rule: null },
  { name: "an enum value is removed from a response", before: answers(withStatus(["on", "off"])), after: answers(withStatus(["on"])), rule: "enum-value-removed" },
  { name: "an enum value is added to a response", before: answers(withStatus(["on"])), after: answers(withStatus(["on", "off"])), rule: "response-enum-value-added" },
  {
    name: "a property is removed from list items",
    before: answers(obj({ data: { type: "array", items: thing } })),
    after: answers(obj({ data: { type: "array", items: obj({ name: str }, ["name"]) } })),
    rule: "response-property-removed",
    path: "GET /api/things/{id} responses.200.data[].size",
  },
  { name: "a recursive schema is unchanged", before: answers(tree(true)), after: answers(tree(true)), rule: null },
  { name: "a recursive schema loses a property", before: answers(tree(true)), after: answers(tree(false)), rule: "response-property-removed", path: "GET /api/things/{id} responses.200.label" },
];

describe("findBreakingChanges", () => {
  const cases = rows.map((row) => [`when ${row.name}, then ${row.rule ? `it fails with ${row.rule}` : "it passes"}`, row] as const);
  test.each(cases)("%s", (_title, { before, after, rule, path }) => {
    const changes = findBreakingChanges(doc(before), doc(after));
    expect([...new Set(changes.map((c) => c.rule))]).toEqual(rule ? [rule] : []);
    if (path) expect(changes.map((c) => c.path)).toContain(path);
  });

  test("when a change is found, then it says where and what in words", () => {
    const [change] = findBreakingChanges(doc(accepts(thing)), doc(accepts(obj({ name: str }, ["name"]))));
    expect(change).toEqual({ rule: "request-property-removed", path: "POST /api/things requestBody.size", message: "request property size was removed" });
  });
});

describe("breaking-changes.yaml declarations", () => {
  const removedSize = { rule: "request-property-removed", path: "POST /api/things requestBody.size", message: "request property size was removed" };
  const declaration = { rule: removedSize.rule, path: removedSize.path, why: "size is computed now", since: "2.0.0" };

  test("when a declaration for the new version matches rule and path, then the change is declared", () => {
    const { declared, undeclared } = applyDeclarations([removedSize], [declaration], "2.0.0");
    expect(declared).toEqual([{ change: removedSize, declaration }]);
    expect(undeclared).toEqual([]);
  });

  test.each([
    ["the declaration is for an older version", declaration, "3.0.0"],
    ["the rule differs", { ...declaration, rule: "response-property-removed" }, "2.0.0"],
    ["the path differs", { ...declaration, path: "POST /api/things requestBody.name" }, "2.0.0"],
  ] as const)("when %s, then the change stays undeclared", (_title, declared, version) => {
    expect(applyDeclarations([removedSize], [declared], version).undeclared).toEqual([removedSize]);
  });

  test("when the file holds only comments and an empty list, then there are no declarations", () => {
    expect(parseDeclarations("# nothing declared\n[]\n")).toEqual([]);
    expect(parseDeclarations("")).toEqual([]);
  });

  test("when the repository's file is read, then every entry has its rule, path, reason and release", () => {
    const entries = parseDeclarations(readFileSync(new URL("../breaking-changes.yaml", import.meta.url), "utf8"));
    for (const e of entries) expect(e).toMatchObject({ rule: expect.any(String), path: expect.any(String), why: expect.any(String), since: expect.any(String) });
  });

  test("when an entry lacks a field, then reading the file fails and names the entry", () => {
    expect(() => parseDeclarations("- rule: path-removed\n  path: /x\n  since: 2.0.0\n")).toThrow(/entry 1: why/);
    expect(() => parseDeclarations("rule: path-removed\n")).toThrow(/must be a list/);
  });
});

describe("releasing a declared break", () => {
  const changelog = "# Changelog\n\n## 2.0.0 — 2026-12-01\n\nRemoved `size`.\n\n## 1.0.0\n\nFirst.\n";

  test("when the major version rises and CHANGELOG.md has its section, then nothing is missing", () => {
    expect(releaseProblems("1.4.2", "2.0.0", changelog)).toEqual([]);
  });

  test("when only the minor version rises, then a major bump is required", () => {
    expect(releaseProblems("1.0.0", "1.1.0", "## 1.1.0\n")).toEqual([expect.stringMatching(/new major version.*at least 2\.0\.0/)]);
  });

  test("when 0.x moves to 0.y, then a major bump is still required", () => {
    expect(releaseProblems("0.1.0", "0.2.0", "## 0.2.0\n")).toHaveLength(1);
  });

  test("when CHANGELOG.md has no section for the version, then it is required", () => {
    expect(releaseProblems("1.0.0", "2.0.0", "## 20.0.0\n## 1.0.0\n")).toEqual([expect.stringContaining('"## 2.0.0"')]);
  });

  test("when a version is not semver, then it is reported", () => {
    expect(releaseProblems("one", "2.0.0", "## 2.0.0\n")).toEqual([expect.stringContaining("must be semver")]);
  });

  test("the repository's CHANGELOG.md has a section for the first contract", () => {
    expect(readFileSync(new URL("../CHANGELOG.md", import.meta.url), "utf8")).toMatch(/^## 0\.1\.0$/m);
  });
});
