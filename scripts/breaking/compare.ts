// Finds changes between two dereferenced OpenAPI 3.x documents that break existing consumers.
// Request side: anything a client sends today that the new contract would refuse.
// Response side: anything a client reads today that the new contract no longer promises.

export interface Change {
  rule: string;
  /** Where: `POST /api/mcp-servers requestBody.name`, `GET /api/mcp-servers responses.200.data[].id`. */
  path: string;
  message: string;
}

export interface Schema {
  type?: string | string[];
  nullable?: boolean;
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  [keyword: string]: unknown;
}

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}

interface MediaType {
  schema?: Schema;
}

interface Operation {
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Record<string, MediaType> };
  responses?: Record<string, { content?: Record<string, MediaType> }>;
}

type PathItem = { parameters?: Parameter[] } & Partial<Record<Method, Operation>>;

export interface OpenApiDoc {
  info?: { version?: string };
  paths?: Record<string, PathItem>;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
type Method = (typeof METHODS)[number];

// Constraints where a bigger number lets fewer values through, and where a smaller one does.
const LOWER_BOUNDS = ["minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties"] as const;
const UPPER_BOUNDS = ["maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties"] as const;
const EXACT = ["pattern", "format", "multipleOf"] as const;

/** A schema with its unions and intersections folded into one view. */
interface Flat {
  types: Set<string> | undefined; // undefined: any type
  enum: unknown[] | undefined;
  properties: Map<string, Schema>;
  required: Set<string>;
  closed: boolean; // additionalProperties: false
  additional: Schema | undefined;
  items: Schema | undefined;
  constraints: Map<string, unknown>;
}

export function findBreakingChanges(before: OpenApiDoc, after: OpenApiDoc): Change[] {
  const changes: Change[] = [];
  const report = (rule: string, path: string, message: string) => {
    if (!changes.some((c) => c.rule === rule && c.path === path)) changes.push({ rule, path, message });
  };
  const afterPaths = new Map(Object.entries(after.paths ?? {}).map(([p, item]) => [templateKey(p), { p, item }]));

  for (const [path, beforeItem] of Object.entries(before.paths ?? {})) {
    const found = afterPaths.get(templateKey(path));
    if (!found) {
      report("path-removed", path, `path ${path} was removed`);
      continue;
    }
    for (const method of METHODS) {
      const beforeOp = beforeItem[method];
      if (!beforeOp) continue;
      const where = `${method.toUpperCase()} ${found.p}`;
      const afterOp = found.item[method];
      if (!afterOp) {
        report("operation-removed", where, `operation ${where} was removed`);
        continue;
      }
      compareOperation(
        { op: beforeOp, parameters: mergeParameters(path, beforeItem.parameters, beforeOp.parameters) },
        { op: afterOp, parameters: mergeParameters(found.p, found.item.parameters, afterOp.parameters) },
        where,
        report,
      );
    }
  }
  return changes;
}

type Report = (rule: string, path: string, message: string) => void;

interface Resolved {
  op: Operation;
  parameters: Map<string, Parameter>;
}

function compareOperation(
  { op: before, parameters: beforeParams }: Resolved,
  { op: after, parameters: afterParams }: Resolved,
  where: string,
  report: Report,
) {
  for (const [key, param] of beforeParams) {
    const at = `${where} ${param.in}.${param.name}`;
    const next = afterParams.get(key);
    if (!next) {
      report("parameter-removed", at, `${param.in} parameter ${param.name} was removed`);
      continue;
    }
    if (!param.required && next.required) report("parameter-now-required", at, `${param.in} parameter ${param.name} is now required`);
    compareRequestSchema(param.schema, next.schema, at, report, new Pairs());
  }
  for (const [key, param] of afterParams) {
    if (!beforeParams.has(key) && param.required)
      report("required-parameter-added", `${where} ${param.in}.${param.name}`, `new required ${param.in} parameter ${param.name}`);
  }

  const beforeBody = before.requestBody;
  const afterBody = after.requestBody;
  if (afterBody?.required && !beforeBody?.required)
    report("request-body-now-required", `${where} requestBody`, "the request body is now required");
  if (beforeBody && afterBody) {
    for (const [mediaType, media] of Object.entries(beforeBody.content ?? {})) {
      const next = afterBody.content?.[mediaType];
      if (!next) report("request-media-type-removed", `${where} requestBody`, `request media type ${mediaType} is no longer accepted`);
      else compareRequestSchema(media.schema, next.schema, `${where} requestBody`, report, new Pairs());
    }
  }

  for (const [status, response] of Object.entries(before.responses ?? {})) {
    const at = `${where} responses.${status}`;
    const next = after.responses?.[status];
    if (!next) {
      report("response-status-removed", at, `response ${status} was removed`);
      continue;
    }
    for (const [mediaType, media] of Object.entries(response.content ?? {})) {
      const nextMedia = next.content?.[mediaType];
      if (!nextMedia) report("response-media-type-removed", at, `response ${status} no longer returns ${mediaType}`);
      else compareResponseSchema(media.schema, nextMedia.schema, at, report, new Pairs());
    }
  }
}

function compareRequestSchema(before: Schema | undefined, after: Schema | undefined, at: string, report: Report, seen: Pairs) {
  if (!before || !after || seen.visit(before, after)) return;
  const b = flatten(before);
  const a = flatten(after);

  const lostTypes = lostFrom(b.types, a.types);
  if (lostTypes.length) report("request-type-narrowed", at, `no longer accepts type ${lostTypes.join(", ")}`);
  compareEnums(b.enum, a.enum, at, report, "request");

  for (const key of LOWER_BOUNDS) {
    const [was, now] = [b.constraints.get(key), a.constraints.get(key)];
    if (typeof now === "number" && (typeof was !== "number" || now > was))
      report("request-constraint-tightened", at, `${key} ${describe(was)} → ${now}`);
  }
  for (const key of UPPER_BOUNDS) {
    const [was, now] = [b.constraints.get(key), a.constraints.get(key)];
    if (typeof now === "number" && (typeof was !== "number" || now < was))
      report("request-constraint-tightened", at, `${key} ${describe(was)} → ${now}`);
  }
  for (const key of EXACT) {
    const [was, now] = [b.constraints.get(key), a.constraints.get(key)];
    if (now !== undefined && now !== was) report("request-constraint-tightened", at, `${key} ${describe(was)} → ${describe(now)}`);
  }
  if (a.closed && !b.closed) report("request-constraint-tightened", at, "additionalProperties is now false");

  for (const [name, schema] of b.properties) {
    if (schema.readOnly === true) continue; // clients never send it
    const next = a.properties.get(name);
    if (!next) report("request-property-removed", `${at}.${name}`, `request property ${name} was removed`);
    else compareRequestSchema(schema, next, `${at}.${name}`, report, seen);
  }
  for (const name of a.required) {
    if (!b.required.has(name)) report("request-property-now-required", `${at}.${name}`, `request property ${name} is now required`);
  }
  compareRequestSchema(b.items, a.items, `${at}[]`, report, seen);
  compareRequestSchema(b.additional, a.additional, `${at}.*`, report, seen);
}

function compareResponseSchema(before: Schema | undefined, after: Schema | undefined, at: string, report: Report, seen: Pairs) {
  if (!before || !after || seen.visit(before, after)) return;
  const b = flatten(before);
  const a = flatten(after);

  // A consumer copes with fewer types than it was promised, not with new ones.
  const newTypes = lostFrom(a.types, b.types);
  if (newTypes.length) report("response-type-changed", at, `may now be ${newTypes.join(", ")} (was ${describeTypes(b.types)})`);
  compareEnums(b.enum, a.enum, at, report, "response");

  for (const [name, schema] of b.properties) {
    if (schema.writeOnly === true) continue; // never sent, so no consumer reads it
    const next = a.properties.get(name);
    if (!next) {
      report("response-property-removed", `${at}.${name}`, `response property ${name} was removed`);
      continue;
    }
    if (b.required.has(name) && !a.required.has(name))
      report("response-property-no-longer-required", `${at}.${name}`, `response property ${name} is no longer required`);
    compareResponseSchema(schema, next, `${at}.${name}`, report, seen);
  }
  compareResponseSchema(b.items, a.items, `${at}[]`, report, seen);
  compareResponseSchema(b.additional, a.additional, `${at}.*`, report, seen);
}

function compareEnums(before: unknown[] | undefined, after: unknown[] | undefined, at: string, report: Report, side: "request" | "response") {
  if (before && after) {
    const removed = before.filter((v) => !after.some((w) => sameValue(v, w)));
    if (removed.length) report("enum-value-removed", at, `enum value ${removed.map(describe).join(", ")} was removed`);
    const added = after.filter((v) => !before.some((w) => sameValue(v, w)));
    // Consumers switch over response enums; a new value is one they do not handle.
    if (side === "response" && added.length) report("response-enum-value-added", at, `may now return ${added.map(describe).join(", ")}`);
  } else if (after && side === "request") {
    report("request-constraint-tightened", at, `now limited to ${after.map(describe).join(", ")}`);
  } else if (before && side === "response") {
    report("response-enum-value-added", at, `was limited to ${before.map(describe).join(", ")}, now any value`);
  }
}

/** Folds oneOf/anyOf (a union: any alternative), allOf (all parts) and `nullable` into one view. */
function flatten(schema: Schema, seen = new Set<Schema>()): Flat {
  const flat: Flat = {
    types: typesOf(schema),
    enum: schema.enum ? [...schema.enum] : "const" in schema ? [schema.const] : undefined,
    properties: new Map(Object.entries(schema.properties ?? {})),
    required: new Set(schema.required ?? []),
    closed: schema.additionalProperties === false,
    additional: typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined,
    items: schema.items,
    constraints: new Map([...LOWER_BOUNDS, ...UPPER_BOUNDS, ...EXACT].filter((k) => schema[k] !== undefined).map((k) => [k, schema[k]])),
  };
  if (seen.has(schema)) return flat;
  seen.add(schema);

  for (const part of schema.allOf ?? []) intersect(flat, flatten(part, seen));
  const alternatives = [...(schema.oneOf ?? []), ...(schema.anyOf ?? [])];
  if (alternatives.length) intersect(flat, unite(alternatives.map((alt) => flatten(alt, seen))));
  return flat;
}

/** The union of alternatives: any type any of them allows, the loosest bound, properties of any. */
function unite(alternatives: Flat[]): Flat {
  const [first, ...rest] = alternatives;
  const out: Flat = { ...first, properties: new Map(first.properties), required: new Set(first.required), constraints: new Map(first.constraints) };
  for (const alt of rest) {
    out.types = out.types && alt.types ? new Set([...out.types, ...alt.types]) : undefined;
    // A null-only alternative (`{ type: 'null' }`) adds null and says nothing about the other fields.
    if (isOnlyNull(alt)) continue;
    if (isOnlyNull(out)) {
      Object.assign(out, { ...alt, types: out.types, properties: new Map(alt.properties), required: new Set(alt.required), constraints: new Map(alt.constraints) });
      continue;
    }
    out.enum = out.enum && alt.enum ? [...out.enum, ...alt.enum] : undefined;
    for (const [name, s] of alt.properties) if (!out.properties.has(name)) out.properties.set(name, s);
    out.required = new Set([...out.required].filter((n) => alt.required.has(n)));
    out.closed = out.closed && alt.closed;
    out.items ??= alt.items;
    out.additional ??= alt.additional;
    for (const key of [...LOWER_BOUNDS, ...UPPER_BOUNDS, ...EXACT]) {
      const [x, y] = [out.constraints.get(key), alt.constraints.get(key)];
      if (x === undefined || y === undefined) out.constraints.delete(key);
      else if (typeof x === "number" && typeof y === "number")
        out.constraints.set(key, (LOWER_BOUNDS as readonly string[]).includes(key) ? Math.min(x, y) : Math.max(x, y));
      else if (x !== y) out.constraints.delete(key);
    }
  }
  if (out.enum && out.types?.has("null") && !out.enum.includes(null)) out.enum.push(null);
  return out;
}

/** Narrows `into` by `part` (allOf, or a union applied on top of the schema's own keywords). */
function intersect(into: Flat, part: Flat) {
  into.types = into.types && part.types ? new Set([...into.types].filter((t) => part.types!.has(t))) : (into.types ?? part.types);
  into.enum = into.enum && part.enum ? into.enum.filter((v) => part.enum!.some((w) => sameValue(v, w))) : (into.enum ?? part.enum);
  for (const [name, s] of part.properties) if (!into.properties.has(name)) into.properties.set(name, s);
  for (const name of part.required) into.required.add(name);
  into.closed ||= part.closed;
  into.items ??= part.items;
  into.additional ??= part.additional;
  for (const [key, value] of part.constraints) if (!into.constraints.has(key)) into.constraints.set(key, value);
}

// "number" also admits integers, so it carries "integer" along and set operations stay plain.
function typesOf(schema: Schema): Set<string> | undefined {
  const types = schema.type === undefined ? undefined : new Set(Array.isArray(schema.type) ? schema.type : [schema.type]);
  if (types?.has("number")) types.add("integer");
  if (types && schema.nullable === true) types.add("null");
  return types;
}

const isOnlyNull = (flat: Flat) => flat.types?.size === 1 && flat.types.has("null");

/** Types in `from` that `to` no longer has; everything when `to` is restricted and `from` was any. */
function lostFrom(from: Set<string> | undefined, to: Set<string> | undefined): string[] {
  if (!to) return [];
  if (!from) return [`anything but ${describeTypes(to)}`];
  return [...from].filter((t) => !to.has(t) && !(t === "integer" && to.has("number")));
}

const describeTypes = (types: Set<string> | undefined) => (types ? [...types].filter((t) => !(t === "integer" && types.has("number"))).join(" | ") : "any");
const describe = (value: unknown) => (value === undefined ? "(none)" : JSON.stringify(value));
const sameValue = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
const templateKey = (path: string) => path.replace(/\{[^}]*\}/g, "{}");

/** Path parameters are matched by position in the template (renaming `{id}` breaks no client), others by name. */
function mergeParameters(template: string, pathLevel: Parameter[] = [], operationLevel: Parameter[] = []): Map<string, Parameter> {
  const slots = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
  const key = (p: Parameter) =>
    p.in === "path" ? `path:#${slots.indexOf(p.name)}` : `${p.in}:${p.in === "header" ? p.name.toLowerCase() : p.name}`;
  const merged = new Map<string, Parameter>();
  for (const p of [...pathLevel, ...operationLevel]) merged.set(key(p), p);
  return merged;
}

/** Schema pairs already compared, so recursive schemas terminate. */
class Pairs {
  private readonly pairs = new Map<Schema, Set<Schema>>();
  visit(before: Schema, after: Schema): boolean {
    const seen = this.pairs.get(before) ?? new Set<Schema>();
    this.pairs.set(before, seen);
    if (seen.has(after)) return true;
    seen.add(after);
    return false;
  }
}
