// Requests generated from the operations of the bundled spec: valid ones from the schemas of
// their parameters and bodies, and invalid ones by breaking one thing in a valid one. A plan
// may hold placeholders (an existing record, its current ETag, a cursor the server issued)
// that only the running test can fill in.
import fc from "fast-check";
import { pointer, valueAt, type JsonObject } from "../contract/spec.js";
import type { SchemaArbitraries } from "./arbitrary.js";

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

export interface Param {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required: boolean;
  schemaPointer: string;
}

export interface Operation {
  operationId: string;
  method: string;
  path: string;
  params: Param[];
  body: { schemaPointer: string; required: boolean; mediaTypes: string[] } | null;
  secured: boolean;
}

/** Every operation of the spec, with its parameters ($refs resolved) and JSON body schema. */
export function operationsOf(spec: JsonObject): Operation[] {
  const resolve = (ptr: string): string => {
    const node = valueAt(spec, ptr) as { $ref?: string } | undefined;
    return node && typeof node.$ref === "string" ? resolve(decodeURIComponent(node.$ref.slice(1))) : ptr;
  };
  const ops: Operation[] = [];
  const rootSecured = Array.isArray(spec.security) && spec.security.length > 0;
  for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const opPtr = pointer(["paths", path, method]);
      const params = new Map<string, Param>();
      const collect = (list: unknown[] | undefined, base: string) =>
        (list ?? []).forEach((_, i) => {
          const ptr = resolve(`${base}/parameters/${i}`);
          const p = valueAt(spec, ptr) as { name: string; in: Param["in"]; required?: boolean };
          params.set(`${p.in}:${p.name.toLowerCase()}`, { name: p.name, in: p.in, required: p.required === true, schemaPointer: `${ptr}/schema` });
        });
      collect(item.parameters, pointer(["paths", path]));
      collect(op.parameters, opPtr); // operation-level parameters override path-level ones
      let body: Operation["body"] = null;
      if (op.requestBody) {
        const rbPtr = resolve(`${opPtr}/requestBody`);
        const rb = valueAt(spec, rbPtr) as { required?: boolean; content?: Record<string, unknown> };
        const mediaTypes = Object.keys(rb.content ?? {});
        if (mediaTypes.includes("application/json")) {
          body = { schemaPointer: `${rbPtr}/content/${"application/json".replace("/", "~1")}/schema`, required: rb.required === true, mediaTypes };
        }
      }
      const secured = Array.isArray(op.security) ? op.security.length > 0 : rootSecured;
      ops.push({ operationId: op.operationId, method: method.toUpperCase(), path, params: [...params.values()], body, secured });
    }
  }
  return ops;
}

/** A value the running test fills in. */
export type Placeholder =
  | { placeholder: "record"; pool: "live" | "deleted" | "foreign"; index: number }
  | { placeholder: "etag"; which: "current" | "stale" }
  /** A value of this parameter that the server handed out (a cursor, an OAuth state). */
  | { placeholder: "issued"; param: string };

export const isPlaceholder = (v: unknown): v is Placeholder => typeof v === "object" && v !== null && "placeholder" in v;

export type Auth = "valid" | "none" | "malformed" | "unknown" | "revoked";

export interface RequestPlan {
  operationId: string;
  method: string;
  pathTemplate: string;
  /** Path parameters: a value (encoded when sent), a placeholder, or `{ rawPath }` sent exactly as written. */
  path: Record<string, unknown>;
  /** Query parameters in order; a name may repeat. */
  query: [string, unknown][];
  headers: Record<string, unknown>;
  body: { value: unknown } | { text: string } | null;
  /** null: no Content-Type header. */
  contentType: string | null;
  auth: Auth;
  /** What was broken in a valid request; null for a request generated to be valid. */
  mutation: string | null;
}

export interface PlanHints {
  /** Arbitraries for parameters, by `in:name` (`path:id`, `query:workspaceId`, `header:If-Match`). */
  params?: Record<string, fc.Arbitrary<unknown>>;
  /** Makes a generated body coherent with rules the schema cannot state (sometimes applied). */
  coherent?: (operationId: string, body: unknown, choice: number) => unknown;
}

const JSON_TYPE = "application/json";

const WRONG_CONTENT_TYPES = [
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/xml",
  "multipart/form-data; boundary=x",
  "application/merge-patch+json",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/jsonx",
  null,
];

const BROKEN_JSON = ["", "{", "}", "nul", "{\"a\":}", "{'a':1}", "{\"name\":\"x\",}", "{\"a\":1}}", "[", "{\"a\":\"\\x\"}", "{\"a\":01}", "{\"a\":NaN}"];

// Path segments sent exactly as written: broken percent-escapes, NUL, dot segments, encoded slashes.
const RAW_PATH_SEGMENTS = ["mcp_%ZZ", "mcp_%00", "%00", "..", ".", "mcp_%2F..%2Fx", "%2e%2e", "mcp_abc;x=1", "mcp_%C0%AF", "mcp_%E2%80%AE", "mcp_%ff"];

const UNKNOWN_QUERY_NAMES = ["unknownParam", "workspaceid", "__proto__", "LIMIT", "cursor[]", "id"];

/** One thing to break in a valid request. */
type Mutation =
  | { kind: "param"; param: Param; value: unknown }
  | { kind: "drop-param"; param: Param }
  | { kind: "duplicate-query"; param: Param; value: unknown }
  | { kind: "unknown-query"; name: string; value: string }
  | { kind: "raw-path"; param: Param; raw: string }
  | { kind: "body-value"; value: unknown }
  | { kind: "body-text"; text: string | null; cut: number }
  | { kind: "content-type"; contentType: string | null }
  | { kind: "no-body" }
  | { kind: "huge-body" }
  | { kind: "auth"; auth: Exclude<Auth, "valid"> };

export function requestArbitraries(op: Operation, sa: SchemaArbitraries, hints: PlanHints = {}) {
  const paramArb = (p: Param) => hints.params?.[`${p.in}:${p.name}`] ?? sa.valid(p.schemaPointer);
  const byIn = (where: Param["in"]) => op.params.filter((p) => p.in === where);

  const pathArb = fc.record(Object.fromEntries(byIn("path").map((p) => [p.name, paramArb(p)])));
  const optionalEntries = (params: Param[]) =>
    fc.tuple(...params.map((p) => (p.required ? paramArb(p) : fc.option(paramArb(p), { nil: undefined, freq: 2 })))).map((values) =>
      params.flatMap((p, i): [string, unknown][] => (values[i] === undefined ? [] : [[p.name, values[i]]])),
    );
  const queryArb = byIn("query").length > 0 ? optionalEntries(byIn("query")) : fc.constant([] as [string, unknown][]);
  const headerArb = byIn("header").length > 0 ? optionalEntries(byIn("header")).map((e) => Object.fromEntries(e)) : fc.constant({});
  const someBody = op.body
    ? fc.tuple(sa.valid(op.body.schemaPointer), fc.integer({ min: 0, max: 9 })).map(([value, choice]) => ({
        value: hints.coherent && choice < 7 ? hints.coherent(op.operationId, value, choice) : value,
      }))
    : null;
  const bodyArb: fc.Arbitrary<RequestPlan["body"]> = !op.body || !someBody ? fc.constant(null) : op.body.required ? someBody : fc.option(someBody, { nil: null, freq: 3 });

  const valid: fc.Arbitrary<RequestPlan> = fc.record({ path: pathArb, query: queryArb, headers: headerArb, body: bodyArb }).map((r) => ({
    operationId: op.operationId,
    method: op.method,
    pathTemplate: op.path,
    path: r.path,
    query: r.query,
    headers: r.headers as Record<string, unknown>,
    body: r.body,
    contentType: r.body ? JSON_TYPE : null,
    auth: "valid" as const,
    mutation: null,
  }));

  const mutations: fc.WeightedArbitrary<Mutation>[] = [];
  const add = (weight: number, arbitrary: fc.Arbitrary<Mutation>) => mutations.push({ arbitrary, weight });
  for (const param of op.params) {
    // Parameters travel as text: keep the values whose text is still refused. An empty path
    // segment would address another route, so it is left to the raw-path cases.
    const bad = sa.invalid(param.schemaPointer)
      ?.map(paramText)
      .filter((text) => !acceptsText(sa, param, text) && !(param.in === "path" && text === ""));
    if (bad) add(15, bad.map((value) => ({ kind: "param" as const, param, value })));
    if (param.in === "query") {
      if (param.required) add(5, fc.constant({ kind: "drop-param" as const, param }));
      add(5, paramArb(param).map((value) => ({ kind: "duplicate-query" as const, param, value })));
    }
    if (param.in === "path") add(10, fc.constantFrom(...RAW_PATH_SEGMENTS).map((raw) => ({ kind: "raw-path" as const, param, raw })));
  }
  add(5, fc.tuple(fc.constantFrom(...UNKNOWN_QUERY_NAMES), fc.constantFrom("1", "x", "")).map(([name, value]) => ({ kind: "unknown-query" as const, name, value })));
  if (op.body) {
    const bad = sa.invalid(op.body.schemaPointer);
    if (bad) add(40, bad.map((value) => ({ kind: "body-value" as const, value })));
    add(10, fc.tuple(fc.option(fc.constantFrom(...BROKEN_JSON), { nil: null }), fc.nat()).map(([text, cut]) => ({ kind: "body-text" as const, text, cut })));
    add(10, fc.constantFrom(...WRONG_CONTENT_TYPES).map((contentType) => ({ kind: "content-type" as const, contentType })));
    if (op.body.required) add(5, fc.constant({ kind: "no-body" as const }));
    add(1, fc.constant({ kind: "huge-body" as const }));
  }
  if (op.secured) add(5, fc.constantFrom("none", "malformed", "unknown", "revoked").map((auth) => ({ kind: "auth" as const, auth })));

  const invalid: fc.Arbitrary<RequestPlan> = fc.tuple(valid, fc.oneof(...mutations)).map(([plan, m]) => mutate(plan, m));
  return { valid, invalid };
}

function mutate(plan: RequestPlan, m: Mutation): RequestPlan {
  const out: RequestPlan = { ...plan, path: { ...plan.path }, query: [...plan.query], headers: { ...plan.headers } };
  const jsonText = () => (plan.body && "value" in plan.body ? JSON.stringify(plan.body.value) : "{}");
  switch (m.kind) {
    case "param":
      if (m.param.in === "path") out.path[m.param.name] = m.value;
      else if (m.param.in === "query") out.query = [...out.query.filter(([n]) => n !== m.param.name), [m.param.name, m.value]];
      else if (m.param.in === "header") out.headers[m.param.name] = m.value;
      out.mutation = `${m.param.in} ${m.param.name} breaks its schema`;
      break;
    case "drop-param":
      out.query = out.query.filter(([n]) => n !== m.param.name);
      out.mutation = `required ${m.param.in} ${m.param.name} left out`;
      break;
    case "duplicate-query": {
      const given = out.query.find(([n]) => n === m.param.name);
      out.query = [...out.query.filter(([n]) => n !== m.param.name), [m.param.name, given ? given[1] : m.value], [m.param.name, m.value]];
      out.mutation = `query ${m.param.name} given twice`;
      break;
    }
    case "unknown-query":
      out.query.push([m.name, m.value]);
      out.mutation = `unknown query parameter ${m.name}`;
      break;
    case "raw-path":
      out.path[m.param.name] = { rawPath: m.raw };
      out.mutation = `path ${m.param.name} sent raw as ${m.raw}`;
      break;
    case "body-value":
      out.body = { value: m.value };
      out.contentType = JSON_TYPE;
      out.mutation = "body breaks its schema";
      break;
    case "body-text": {
      const text = m.text ?? jsonText().slice(0, m.cut % Math.max(1, jsonText().length));
      out.body = { text };
      out.contentType = JSON_TYPE;
      out.mutation = "body is not valid JSON";
      break;
    }
    case "content-type":
      out.body = { text: jsonText() };
      out.contentType = m.contentType;
      out.mutation = `body sent as ${m.contentType ?? "(no Content-Type)"}`;
      break;
    case "no-body":
      out.body = null;
      out.contentType = null;
      out.mutation = "required body left out";
      break;
    case "huge-body":
      out.body = { text: JSON.stringify({ name: "x".repeat(1024 * 1024 + 10) }) };
      out.contentType = JSON_TYPE;
      out.mutation = "body over 1 MiB";
      break;
    case "auth":
      out.auth = m.auth;
      out.mutation = `token ${m.auth}`;
      break;
  }
  return out;
}

/** Ajv's coercion of a query/header string to the parameter's scalar type (what a validator with coercion sees). */
function coerced(sa: SchemaArbitraries, schemaPointer: string, text: string): unknown {
  const types = sa.typesAt(schemaPointer);
  if ((types.includes("integer") || types.includes("number")) && text !== "" && Number(text) == (text as unknown as number)) return Number(text);
  if (types.includes("boolean") && (text === "true" || text === "false")) return text === "true";
  return text;
}

/** Whether a parameter given as `text` conforms, as the server reads it. */
function acceptsText(sa: SchemaArbitraries, param: Param, text: string): boolean {
  // HTTP drops leading and trailing blanks of a header field value.
  const seen = param.in === "header" ? text.replace(/^[ \t]+|[ \t]+$/g, "") : text;
  return sa.accepts(param.schemaPointer, coerced(sa, param.schemaPointer, seen));
}

/** How a scalar parameter value travels: as text. */
export function paramText(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value);
}

/**
 * Why the request breaks the contract, as the server sees it after HTTP; [] when it
 * conforms. A request that breaks it must be refused with a 4xx.
 */
export function contractBreaks(op: Operation, plan: RequestPlan, sa: SchemaArbitraries): string[] {
  const reasons: string[] = [];
  if (op.secured && plan.auth !== "valid") reasons.push(`token ${plan.auth}`);
  for (const p of op.params) {
    if (p.in === "path") {
      const v = plan.path[p.name];
      if (isPlaceholder(v)) continue;
      if (typeof v === "object" && v !== null && "rawPath" in v) {
        const raw = (v as { rawPath: string }).rawPath;
        let decoded: string | null = null;
        try {
          decoded = decodeURIComponent(raw);
        } catch {
          reasons.push(`path ${p.name} is not decodable`);
        }
        if (decoded !== null && !sa.accepts(p.schemaPointer, decoded)) reasons.push(`path ${p.name} ${JSON.stringify(decoded)} breaks its schema`);
        continue;
      }
      if (!sa.accepts(p.schemaPointer, typeof v === "string" ? v : paramText(v))) reasons.push(`path ${p.name} breaks its schema`);
    } else if (p.in === "query") {
      const given = plan.query.filter(([n]) => n === p.name);
      if (given.length === 0 && p.required) reasons.push(`query ${p.name} is required`);
      if (given.length > 1) reasons.push(`query ${p.name} given ${given.length} times`);
      if (given.length === 1 && !isPlaceholder(given[0][1]) && !acceptsText(sa, p, paramText(given[0][1]))) reasons.push(`query ${p.name} breaks its schema`);
    } else if (p.in === "header") {
      const entry = Object.entries(plan.headers).find(([n]) => n.toLowerCase() === p.name.toLowerCase());
      if (!entry) {
        if (p.required) reasons.push(`header ${p.name} is required`);
        continue;
      }
      if (!isPlaceholder(entry[1]) && !acceptsText(sa, p, paramText(entry[1]))) reasons.push(`header ${p.name} breaks its schema`);
    }
  }
  // An unknown query parameter breaks no rule OpenAPI can state: the server may refuse or ignore it.
  if (op.body) {
    // An empty body, or an optional one sent without a Content-Type, is no body: what an optional one may be.
    if (plan.body === null || ("text" in plan.body && plan.body.text === "") || (!op.body.required && plan.contentType === null)) {
      if (op.body.required) reasons.push("body is required");
    } else {
      const mediaType = plan.contentType?.split(";")[0].trim().toLowerCase() ?? null;
      const charset = /charset=([^;]+)/i.exec(plan.contentType ?? "")?.[1]?.trim().toLowerCase();
      if (mediaType === null || !op.body.mediaTypes.includes(mediaType)) reasons.push(`Content-Type ${plan.contentType ?? "(none)"} is not ${op.body.mediaTypes.join(", ")}`);
      if (charset && charset !== "utf-8" && charset !== "utf8") reasons.push(`charset ${charset}`);
      let value: unknown;
      let parsed = true;
      if ("text" in plan.body) {
        if (Buffer.byteLength(plan.body.text) > 1024 * 1024) reasons.push("body over 1 MiB");
        try {
          value = JSON.parse(plan.body.text);
        } catch {
          parsed = false;
          reasons.push("body is not JSON");
        }
      } else value = plan.body.value;
      if (parsed && !sa.accepts(op.body.schemaPointer, value)) reasons.push(`body breaks its schema: ${sa.errors(op.body.schemaPointer, value).slice(0, 3).join("; ")}`);
    }
  }
  return reasons;
}
