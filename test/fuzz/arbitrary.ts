// JSON Schema (2020-12, as OpenAPI 3.1 uses it) → fast-check arbitraries, for the schemas of
// one bundled spec: `valid(pointer)` generates values the schema accepts, `invalid(pointer)`
// values it refuses. Schemas are addressed by JSON Pointer into the spec, so internal $refs
// resolve, and every candidate can be checked with the contract's own Ajv.
import fc from "fast-check";
import { valueAt, type JsonObject, type SpecSchemas } from "../contract/spec.js";

type Schema = Record<string, any>;
type Arb = fc.Arbitrary<unknown>;

export interface SchemaArbitraryOptions {
  spec: JsonObject;
  /** The contract's Ajv over the same spec: keeps edge cases honest and proves invalid values invalid. */
  schemas: SpecSchemas;
  /** Hosts of generated `format: uri` values. Keep them unresolvable-by-network: IP literals or `localhost`. */
  urlHosts: string[];
  /** Strings worth trying wherever the schema accepts them (unicode, case variants, `__proto__`, …). */
  interestingStrings?: string[];
  /** Replaces what is generated at an instance location: `{ "/workspaceId": … }`. */
  overrides?: Record<string, Arb>;
  /** Nesting depth after which free-form JSON is only scalars. */
  maxDepth?: number;
}

interface Resolved {
  schema: Schema | boolean;
  /** Pointer of the node that holds `keyword` (a $ref's siblings, or its target). */
  at(keyword: string): string;
}

// Candidates for "a value of another type"; Ajv keeps those the schema refuses.
const OTHER_TYPES: unknown[] = ["text", "", 0, 42, 1.5, -1, true, false, null, [], ["a"], {}, { a: 1 }];

// Strings that break common patterns: control characters, CR/LF, NUL, blanks, odd unicode.
const HOSTILE_STRINGS = [
  " ",
  "   ",
  "\t",
  "a\nb",
  "a\r\nb",
  "\u0000",
  "a\u0000b",
  "\u001f",
  "\u007f",
  "a b",
  "é",
  "😀",
  "\u200b",
  "../",
  "%00",
  "' OR 1=1 --",
  "<script>",
];

// Strings that are not http(s) URLs, or not acceptable ones; every host in them is loopback.
const BAD_URLS = [
  "not a url",
  "http://",
  "https://",
  "ftp://127.0.0.1/mcp",
  "javascript:alert(1)",
  "//127.0.0.1/mcp",
  "127.0.0.1/mcp",
  "http://127.0.0.1 /mcp",
  "http://[::1/mcp",
  "http://127.0.0.1:99999/mcp",
  "http://user:pw@127.0.0.1/mcp",
  "http://127.0.0.1/\u0000",
  "http://127.0.0.1/a b",
  "http://127.0.0.1/é",
  "http:\\\\127.0.0.1\\mcp",
];

// Characters for strings of exactly minLength/maxLength code points: ASCII, a letter whose
// lower case is longer (İ → i̇), an astral-plane emoji (two UTF-16 units), a BMP accent.
const EDGE_CHARS = ["a", "İ", "😀", "é", "ß"];

const codePoints = (s: string) => [...s].length;

function escapeSegment(s: string) {
  return s.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Own, enumerable property even for `__proto__`. */
function put(target: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function typesOf(schema: Schema): string[] | null {
  if (Array.isArray(schema.type)) return schema.type;
  if (typeof schema.type === "string") return [schema.type];
  return null;
}

export class SchemaArbitraries {
  private readonly spec: JsonObject;
  private readonly maxDepth: number;
  private readonly cache = new Map<string, Arb | null>();

  constructor(readonly options: SchemaArbitraryOptions) {
    this.spec = options.spec;
    this.maxDepth = options.maxDepth ?? 4;
  }

  /** Whether the contract's Ajv accepts `value` at `pointer`. */
  accepts(pointer: string, value: unknown): boolean {
    return this.options.schemas.errors(pointer, value).length === 0;
  }

  /** Ajv's complaints about `value` at `pointer`; [] when it is accepted. */
  errors(pointer: string, value: unknown): string[] {
    return this.options.schemas.errors(pointer, value);
  }

  /** The JSON types the schema at `pointer` names ($refs followed); [] when it names none. */
  typesAt(pointer: string): string[] {
    const { schema } = this.resolve(pointer);
    return typeof schema === "boolean" ? [] : (typesOf(schema) ?? this.inferTypes(schema));
  }

  /** Values the schema at `pointer` accepts. */
  valid(pointer: string, instancePath = ""): Arb {
    return this.validAt(pointer, instancePath, 0);
  }

  /** Values the schema at `pointer` refuses, or null when it refuses nothing (`{}`, `true`). */
  invalid(pointer: string, instancePath = ""): Arb | null {
    return this.invalidAt(pointer, instancePath, 0);
  }

  private resolve(pointer: string, seen = new Set<string>()): Resolved {
    const node = valueAt(this.spec, pointer) as Schema | boolean | undefined;
    if (node === undefined) throw new Error(`no schema at ${pointer}`);
    if (typeof node === "boolean" || typeof node.$ref !== "string") return { schema: node, at: () => pointer };
    if (!node.$ref.startsWith("#")) throw new Error(`only internal $refs are supported (${node.$ref} at ${pointer})`);
    if (seen.has(pointer)) throw new Error(`$ref cycle at ${pointer}`);
    seen.add(pointer);
    const target = this.resolve(decodeURIComponent(node.$ref.slice(1)), seen);
    const { $ref: _ref, ...siblings } = node;
    const base = typeof target.schema === "boolean" ? {} : target.schema;
    return { schema: { ...base, ...siblings }, at: (keyword) => (keyword in siblings ? pointer : target.at(keyword)) };
  }

  private memo(key: string, build: () => Arb | null): Arb | null {
    if (!this.cache.has(key)) this.cache.set(key, build());
    return this.cache.get(key)!;
  }

  private validAt(pointer: string, inst: string, depth: number): Arb {
    const override = this.options.overrides?.[inst];
    if (override) return override;
    return this.memo(`v ${pointer} ${inst}`, () => this.buildValid(pointer, inst, depth))!;
  }

  private buildValid(pointer: string, inst: string, depth: number): Arb {
    const { schema, at } = this.resolve(pointer);
    if (schema === false) throw new Error(`schema at ${pointer} accepts nothing`);
    if (schema === true) return this.anyJson(depth);
    if ("const" in schema) return fc.constant(schema.const);
    if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
    for (const keyword of ["oneOf", "anyOf"] as const) {
      if (Array.isArray(schema[keyword])) {
        const base = at(keyword);
        return fc.oneof(...(schema[keyword] as unknown[]).map((_, i) => this.validAt(`${base}/${keyword}/${i}`, inst, depth)));
      }
    }
    if (Array.isArray(schema.allOf)) {
      // Not used by the spec: generate from the first branch and keep what the whole accepts.
      const first = this.validAt(`${at("allOf")}/allOf/0`, inst, depth);
      return first.filter((v) => this.accepts(pointer, v));
    }
    const types = typesOf(schema) ?? this.inferTypes(schema);
    if (types.length === 0) return this.anyJson(depth);
    return fc.oneof(...types.map((t) => this.validOfType(t, schema, at, pointer, inst, depth)));
  }

  private inferTypes(schema: Schema): string[] {
    if (schema.properties || schema.additionalProperties !== undefined || schema.propertyNames) return ["object"];
    if (schema.items) return ["array"];
    if (schema.pattern || schema.format || schema.maxLength !== undefined) return ["string"];
    return [];
  }

  private validOfType(type: string, schema: Schema, at: Resolved["at"], pointer: string, inst: string, depth: number): Arb {
    switch (type) {
      case "null":
        return fc.constant(null);
      case "boolean":
        return fc.boolean();
      case "integer":
        return fc.integer({
          min: schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : -(2 ** 31)),
          max: schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : 2 ** 31 - 1),
        });
      case "number":
        return fc.double({
          min: schema.minimum ?? schema.exclusiveMinimum ?? -1e9,
          max: schema.maximum ?? schema.exclusiveMaximum ?? 1e9,
          minExcluded: schema.exclusiveMinimum !== undefined,
          maxExcluded: schema.exclusiveMaximum !== undefined,
          noNaN: true,
          noDefaultInfinity: true,
        });
      case "string":
        return this.validString(schema, pointer);
      case "array": {
        const items = schema.items ? this.validAt(`${at("items")}/items`, `${inst}/0`, depth + 1) : this.anyJson(depth + 1);
        return fc.array(items, { minLength: schema.minItems ?? 0, maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 3, 3)) });
      }
      case "object":
        return this.validObject(schema, at, inst, depth);
      default:
        throw new Error(`unknown type ${type} at ${pointer}`);
    }
  }

  private validString(schema: Schema, pointer: string): fc.Arbitrary<string> {
    const min: number = schema.minLength ?? 0;
    const max: number = schema.maxLength ?? Infinity;
    const fits = (s: string) => codePoints(s) >= min && codePoints(s) <= max;
    if (schema.format === "uri" || schema.format === "uri-reference" || schema.format === "url") return this.url(pointer, max);
    if (schema.format === "date-time") {
      return fc.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString());
    }
    if (schema.format === "date") return fc.date({ min: new Date("1970-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    if (schema.format === "uuid") return fc.uuid();
    if (schema.format === "email") return fc.emailAddress();

    // Short strings mostly; exact boundary lengths come from the edge cases below.
    const cap = Math.min(max, Math.max(min, 24));
    const arbs: fc.WeightedArbitrary<string>[] = [];
    let regex: RegExp | null = null;
    if (typeof schema.pattern === "string") {
      try {
        regex = new RegExp(schema.pattern, "u");
      } catch {
        regex = null; // a pattern JavaScript cannot compile: generate freely, Ajv judges the request
      }
    }
    if (regex) {
      const re = regex;
      try {
        arbs.push({ arbitrary: fc.stringMatching(re, { maxLength: cap }).filter(fits), weight: 4 });
      } catch {
        // fast-check cannot read this pattern: fall back to free strings that happen to match
      }
      // stringMatching builds negated classes from ASCII; add unicode where the pattern is broad.
      const unicode = fc.string({ unit: "grapheme", minLength: min, maxLength: cap });
      const probe = fc.sample(unicode, { numRuns: 40, seed: 1 });
      if (probe.filter((s) => re.test(s)).length >= 20) arbs.push({ arbitrary: unicode.filter((s) => re.test(s) && fits(s)), weight: 2 });
      if (arbs.length === 0) arbs.push({ arbitrary: unicode.filter((s) => re.test(s) && fits(s)), weight: 1 });
    } else {
      arbs.push({ arbitrary: fc.string({ unit: "grapheme-ascii", minLength: min, maxLength: cap }).filter(fits), weight: 3 });
      arbs.push({ arbitrary: fc.string({ unit: "grapheme", minLength: min, maxLength: cap }).filter(fits), weight: 2 });
    }
    // Boundary lengths and known troublemakers, often: they are where stores and rules disagree.
    const edges = [...new Set(EDGE_CHARS.flatMap((c) => [min > 0 ? c.repeat(min) : "", Number.isFinite(max) ? c.repeat(max) : c.repeat(cap)]))].filter((s) => this.accepts(pointer, s));
    const interesting = (this.options.interestingStrings ?? []).filter((s) => this.accepts(pointer, s));
    if (edges.length > 0) arbs.push({ arbitrary: fc.constantFrom(...edges), weight: 2 });
    if (interesting.length > 0) arbs.push({ arbitrary: fc.constantFrom(...interesting), weight: 2 });
    return fc.oneof(...arbs);
  }

  /** Absolute http(s) URLs on the configured hosts only, some exactly `max` long. */
  private url(pointer: string, max: number): fc.Arbitrary<string> {
    const fallback = `http://${this.options.urlHosts[0]}/mcp`;
    const scheme = fc.constantFrom("http", "https", "HTTP", "Https");
    const host = fc.constantFrom(...this.options.urlHosts);
    const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
    const path = fc.oneof(fc.constant("/mcp"), fc.webPath({ size: "small" }));
    const query = fc.option(fc.webQueryParameters({ size: "small" }), { nil: undefined });
    const long = fc.boolean().map((b) => b && Number.isFinite(max));
    return fc.tuple(scheme, host, port, path, query, long).map(([s, h, p, pa, q, pad]) => {
      let url = `${s}://${h}${p === undefined ? "" : `:${p}`}${pa.startsWith("/") || pa === "" ? pa : `/${pa}`}${q === undefined ? "" : `?${q}`}`;
      if (pad && url.length < max && !url.includes("?")) url += (url.endsWith("/") ? "" : "/") + "a".repeat(Math.max(0, max - url.length - (url.endsWith("/") ? 0 : 1)));
      return this.accepts(pointer, url) ? url : fallback;
    });
  }

  private validObject(schema: Schema, at: Resolved["at"], inst: string, depth: number): Arb {
    const properties: Record<string, unknown> = schema.properties ?? {};
    const declared = Object.keys(properties);
    const required: string[] = (schema.required ?? []).filter((k: string) => declared.includes(k));
    const maxProperties: number = schema.maxProperties ?? Infinity;
    const base = at("properties");
    const record: Record<string, Arb> = {};
    for (const key of declared) record[key] = this.validAt(`${base}/properties/${escapeSegment(key)}`, `${inst}/${escapeSegment(key)}`, depth + 1);
    const declaredArb = declared.length > 0 ? fc.record(record, { requiredKeys: required }) : fc.constant({});

    const ap = schema.additionalProperties;
    let extrasArb: fc.Arbitrary<[string, unknown][]> = fc.constant([]);
    if (ap !== undefined && ap !== false && depth < this.maxDepth) {
      const key = schema.propertyNames
        ? (this.validAt(`${at("propertyNames")}/propertyNames`, `${inst}/(name)`, depth + 1) as fc.Arbitrary<string>)
        : fc.oneof({ arbitrary: fc.string({ maxLength: 12 }), weight: 5 }, { arbitrary: fc.constantFrom("__proto__", "constructor", ""), weight: 1 });
      const value = ap === true || (typeof ap === "object" && Object.keys(ap).length === 0) ? this.anyJson(depth + 1) : this.validAt(`${at("additionalProperties")}/additionalProperties`, `${inst}/*`, depth + 1);
      extrasArb = fc.uniqueArray(fc.tuple(key, value), { maxLength: Math.min(3, maxProperties), selector: ([k]) => k });
    }
    return fc.tuple(declaredArb, extrasArb).map(([fixed, extras]) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(fixed)) put(out, k, v);
      for (const [k, v] of extras) {
        if (declared.includes(k) || Object.keys(out).length >= maxProperties) continue;
        put(out, k, v);
      }
      return out;
    });
  }

  private anyJson(depth: number): Arb {
    return depth >= this.maxDepth ? fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null)) : fc.jsonValue({ maxDepth: 2, depthSize: "xsmall" });
  }

  private invalidAt(pointer: string, inst: string, depth: number): Arb | null {
    return this.memo(`i ${pointer} ${inst}`, () => this.buildInvalid(pointer, inst, depth));
  }

  private buildInvalid(pointer: string, inst: string, depth: number): Arb | null {
    const { schema, at } = this.resolve(pointer);
    if (schema === true || schema === false) return null;
    const candidates: Arb[] = [];
    const otherTypes = OTHER_TYPES.filter((v) => !this.accepts(pointer, v));
    if (otherTypes.length > 0) candidates.push(fc.constantFrom(...otherTypes));

    for (const keyword of ["oneOf", "anyOf"] as const) {
      if (!Array.isArray(schema[keyword])) continue;
      const base = at(keyword);
      (schema[keyword] as unknown[]).forEach((_, i) => {
        const branch = this.invalidAt(`${base}/${keyword}/${i}`, inst, depth);
        if (branch) candidates.push(branch);
      });
    }
    if (Array.isArray(schema.enum) || "const" in schema) candidates.push(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("NONE", "Api_Key", " none")));

    const types = typesOf(schema) ?? this.inferTypes(schema);
    if (types.includes("string")) candidates.push(...this.invalidStrings(schema));
    if (types.includes("integer") || types.includes("number")) {
      const bad: number[] = [1.5, 1e21, -1e21, 2 ** 53 + 2];
      if (schema.minimum !== undefined) bad.push(schema.minimum - 1);
      if (schema.maximum !== undefined) bad.push(schema.maximum + 1);
      candidates.push(fc.constantFrom(...bad));
    }
    if (types.includes("object") && depth < this.maxDepth) candidates.push(...this.invalidObjects(schema, at, pointer, inst, depth));
    if (types.includes("array") && schema.items && depth < this.maxDepth) {
      const item = this.invalidAt(`${at("items")}/items`, `${inst}/0`, depth + 1);
      if (item) candidates.push(item.map((v) => [v]));
    }
    if (candidates.length === 0) return null;
    return fc.oneof(...candidates).filter((v) => !this.accepts(pointer, v));
  }

  private invalidStrings(schema: Schema): Arb[] {
    const out: Arb[] = [];
    if (schema.maxLength !== undefined) {
      const max: number = schema.maxLength;
      out.push(fc.tuple(fc.integer({ min: 1, max: 16 }), fc.constantFrom("a", "é", "😀")).map(([n, c]) => c.repeat(max + n)));
    }
    if ((schema.minLength ?? 0) > 0) out.push(fc.constant(""));
    if (schema.pattern !== undefined) {
      out.push(fc.constantFrom(...HOSTILE_STRINGS));
      out.push(fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 6 })).map(([a, b, c]) => a + b + c));
    }
    if (schema.format === "uri" || schema.format === "url") out.push(fc.constantFrom(...BAD_URLS));
    if (schema.format === "date-time") out.push(fc.constantFrom("yesterday", "2026-13-01T00:00:00Z", "2026-11-24"));
    return out;
  }

  private invalidObjects(schema: Schema, at: Resolved["at"], pointer: string, inst: string, depth: number): Arb[] {
    const out: Arb[] = [];
    const valid = this.validAt(pointer, inst, depth) as fc.Arbitrary<Record<string, unknown>>;
    const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
    const copy = (v: Record<string, unknown>) => {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) put(o, k, x);
      return o;
    };
    const required: string[] = schema.required ?? [];
    if (required.length > 0) {
      out.push(
        fc.tuple(valid, fc.nat()).map(([v, i]) => {
          if (!isObject(v)) return v;
          const o = copy(v);
          delete o[required[i % required.length]];
          return o;
        }),
      );
    }
    if (schema.additionalProperties === false) {
      out.push(
        fc.tuple(valid, fc.constantFrom("unknownField", "__proto__", "constructor", "apikey", "id", "createdAt")).map(([v, k]) => {
          if (!isObject(v)) return v;
          const o = copy(v);
          put(o, k, "x");
          return o;
        }),
      );
    }
    const properties: Record<string, unknown> = schema.properties ?? {};
    const base = at("properties");
    for (const key of Object.keys(properties)) {
      const bad = this.invalidAt(`${base}/properties/${escapeSegment(key)}`, `${inst}/${escapeSegment(key)}`, depth + 1);
      if (!bad) continue;
      out.push(
        fc.tuple(valid, bad).map(([v, b]) => {
          if (!isObject(v)) return v;
          const o = copy(v);
          put(o, key, b);
          return o;
        }),
      );
    }
    const ap = schema.additionalProperties;
    const apPointer = `${at("additionalProperties")}/additionalProperties`;
    const goodKey = schema.propertyNames ? (this.validAt(`${at("propertyNames")}/propertyNames`, `${inst}/(name)`, depth + 1) as fc.Arbitrary<string>) : fc.string({ minLength: 1, maxLength: 8 });
    const goodValue = ap && typeof ap === "object" ? this.validAt(apPointer, `${inst}/*`, depth + 1) : fc.constant("x");
    if (schema.propertyNames) {
      const badKey = this.invalidAt(`${at("propertyNames")}/propertyNames`, `${inst}/(name)`, depth + 1);
      if (badKey) {
        out.push(
          fc.tuple(valid, badKey.filter((k): k is string => typeof k === "string"), goodValue).map(([v, k, x]) => {
            if (!isObject(v)) return v;
            const o = copy(v);
            put(o, k, x);
            return o;
          }),
        );
      }
    }
    if (ap && typeof ap === "object") {
      const badValue = this.invalidAt(apPointer, `${inst}/*`, depth + 1);
      if (badValue) {
        out.push(
          fc.tuple(valid, goodKey, badValue).map(([v, k, x]) => {
            if (!isObject(v)) return v;
            const o = copy(v);
            put(o, k, x);
            return o;
          }),
        );
      }
    }
    if (schema.maxProperties !== undefined && ap !== false) {
      const n: number = schema.maxProperties + 1;
      out.push(
        fc.uniqueArray(fc.tuple(goodKey, goodValue), { minLength: n, maxLength: n + 2, selector: ([k]) => k }).map((entries) => {
          const o: Record<string, unknown> = {};
          for (const [k, x] of entries) put(o, k, x);
          return o;
        }),
      );
    }
    return out;
  }
}
