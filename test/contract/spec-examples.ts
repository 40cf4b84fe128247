// Finds every example in an OpenAPI 3.1 document together with the schema it illustrates:
// schema `example`/`examples` (components and inline, at any depth), media-type and
// parameter/header `example` and `examples[*].value` (following $refs to components.examples).
import { pointer, valueAt, type Json, type JsonObject } from "./spec.js";

export interface SpecExample {
  /** Readable and unique, e.g. `POST /api/mcp-servers requestBody application/json example apiKey`. */
  name: string;
  /** Where the example value is. */
  at: string;
  /** The schema it must satisfy; null when the owner has no schema (a failure in itself). */
  schemaAt: string | null;
  value: Json;
}

export interface RequestExample {
  name: string;
  method: string;
  path: string;
  operationId: string;
  mediaType: string;
  value: Json;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const SCHEMA_MAPS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
const SCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"];
const SCHEMA_ONES = ["items", "additionalProperties", "unevaluatedProperties", "unevaluatedItems", "propertyNames", "contains", "not", "if", "then", "else", "contentSchema"];

const isObject = (v: Json | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const entries = (v: Json | undefined) => (isObject(v) ? Object.entries(v) : []);

/** "/paths/~1api~1x/post/requestBody" → "POST /api/x requestBody"; "/components/schemas/A" → "components.schemas.A". */
export function describePointer(ptr: string): string {
  const parts = ptr.split("/").slice(1).map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  let head = "";
  if (parts[0] === "paths") {
    head = METHODS.includes(parts[2]) ? `${parts[2].toUpperCase()} ${parts[1]}` : parts[1];
    parts.splice(0, METHODS.includes(parts[2]) ? 3 : 2);
  }
  // "content.application/json" reads better as " application/json".
  const rest = parts.join(".").replace(/(^|\.)content\.([^.]+\/[^.]+)/g, " $2").replace(/^\./, "");
  return [head, rest].filter(Boolean).join(" ").replace(/\s+\./g, " ").trim();
}

export function collectExamples(spec: JsonObject): SpecExample[] {
  const found: SpecExample[] = [];
  const add = (name: string, at: string, schemaAt: string | null, value: Json) => found.push({ name, at, schemaAt, value });

  function schema(ptr: string, node: Json | undefined) {
    if (!isObject(node)) return;
    if ("example" in node) add(`${describePointer(ptr)} example`, `${ptr}/example`, ptr, node.example);
    if (Array.isArray(node.examples)) node.examples.forEach((v, i) => add(`${describePointer(ptr)} examples[${i}]`, `${ptr}/examples/${i}`, ptr, v));
    for (const k of SCHEMA_MAPS) for (const [name, sub] of entries(node[k])) schema(`${ptr}${pointer([k, name])}`, sub);
    for (const k of SCHEMA_LISTS) if (Array.isArray(node[k])) node[k].forEach((sub, i) => schema(`${ptr}/${k}/${i}`, sub));
    for (const k of SCHEMA_ONES) {
      if (Array.isArray(node[k])) (node[k] as Json[]).forEach((sub, i) => schema(`${ptr}/${k}/${i}`, sub));
      else schema(`${ptr}/${k}`, node[k]);
    }
  }

  /** A media type, parameter or header: `example` and `examples` illustrate its `schema`. */
  function exampleOwner(ptr: string, node: Json | undefined) {
    if (!isObject(node) || "$ref" in node) return; // $refs are walked where they point
    const schemaAt = isObject(node.schema) ? `${ptr}/schema` : null;
    const label = describePointer(ptr);
    if ("example" in node) add(`${label} example`, `${ptr}/example`, schemaAt, node.example);
    for (const [name, ex] of entries(node.examples)) {
      let at = `${ptr}${pointer(["examples", name])}`;
      let example = ex;
      if (isObject(example) && typeof example.$ref === "string") {
        at = example.$ref.slice(1);
        example = valueAt(spec, at) ?? null;
      }
      if (isObject(example) && "value" in example) add(`${label} example ${name}`, `${at}/value`, schemaAt, example.value);
    }
    schema(`${ptr}/schema`, node.schema);
    for (const [media, m] of entries(node.content)) exampleOwner(`${ptr}${pointer(["content", media])}`, m);
  }

  function response(ptr: string, node: Json | undefined) {
    if (!isObject(node) || "$ref" in node) return;
    for (const [name, h] of entries(node.headers)) exampleOwner(`${ptr}${pointer(["headers", name])}`, h);
    for (const [media, m] of entries(node.content)) exampleOwner(`${ptr}${pointer(["content", media])}`, m);
  }

  function operation(ptr: string, op: JsonObject) {
    if (Array.isArray(op.parameters)) op.parameters.forEach((p, i) => exampleOwner(`${ptr}/parameters/${i}`, p));
    if (isObject(op.requestBody) && !("$ref" in op.requestBody)) {
      for (const [media, m] of entries(op.requestBody.content)) exampleOwner(`${ptr}${pointer(["requestBody", "content", media])}`, m);
    }
    for (const [status, r] of entries(op.responses)) response(`${ptr}${pointer(["responses", status])}`, r);
  }

  function pathItem(ptr: string, item: Json | undefined) {
    if (!isObject(item) || "$ref" in item) return;
    if (Array.isArray(item.parameters)) item.parameters.forEach((p, i) => exampleOwner(`${ptr}/parameters/${i}`, p));
    for (const m of METHODS) if (isObject(item[m])) operation(`${ptr}/${m}`, item[m] as JsonObject);
  }

  for (const [path, item] of entries(spec.paths)) pathItem(pointer(["paths", path]), item);
  for (const [name, item] of entries(spec.webhooks)) pathItem(pointer(["webhooks", name]), item);
  const components = isObject(spec.components) ? spec.components : {};
  for (const [name, s] of entries(components.schemas)) schema(pointer(["components", "schemas", name]), s);
  for (const [name, p] of entries(components.parameters)) exampleOwner(pointer(["components", "parameters", name]), p);
  for (const [name, h] of entries(components.headers)) exampleOwner(pointer(["components", "headers", name]), h);
  for (const [name, r] of entries(components.responses)) response(pointer(["components", "responses", name]), r);
  for (const [name, b] of entries(components.requestBodies)) {
    for (const [media, m] of entries(isObject(b) ? b.content : undefined)) exampleOwner(pointer(["components", "requestBodies", name, "content", media]), m);
  }
  for (const [name, item] of entries(components.pathItems)) pathItem(pointer(["components", "pathItems", name]), item);
  return found;
}

/**
 * Every `example`/`examples` key in the document, found without knowing OpenAPI's structure,
 * so a test can prove collectExamples missed none. Keys inside maps of names (properties,
 * schemas, …) are names, not examples, and example values are not searched.
 */
export function allExampleLocations(spec: JsonObject): string[] {
  const NAME_MAPS = new Set([...SCHEMA_MAPS, "schemas", "parameters", "headers", "responses", "requestBodies", "securitySchemes", "links", "callbacks", "pathItems", "paths", "webhooks", "content"]);
  const found: string[] = [];
  function visit(ptr: string, node: Json | undefined, parentKey: string | null) {
    if (Array.isArray(node)) return node.forEach((v, i) => visit(`${ptr}/${i}`, v, null));
    if (!isObject(node)) return;
    const keysAreNames = parentKey !== null && NAME_MAPS.has(parentKey);
    for (const [key, value] of Object.entries(node)) {
      const at = `${ptr}${pointer([key])}`;
      if (keysAreNames) visit(at, value, null);
      else if (key === "example") found.push(at);
      else if (key === "examples" && Array.isArray(value)) value.forEach((_, i) => found.push(`${at}/${i}`));
      else if (key === "examples" && isObject(value)) {
        // A map of Example Objects (components.examples included); each is used by its `value`.
        for (const [name, ex] of Object.entries(value)) if (isObject(ex) && !("$ref" in ex)) found.push(`${at}${pointer([name, "value"])}`);
      } else visit(at, value, key);
    }
  }
  visit("", spec, null);
  return found;
}

/** The media-type examples of request bodies: what a reader of the docs would send. */
export function requestExamples(spec: JsonObject): RequestExample[] {
  const out: RequestExample[] = [];
  for (const [path, item] of entries(spec.paths)) {
    for (const method of METHODS) {
      const op = isObject(item) ? item[method] : undefined;
      if (!isObject(op) || !isObject(op.requestBody)) continue;
      const body = typeof op.requestBody.$ref === "string" ? valueAt(spec, op.requestBody.$ref.slice(1)) : op.requestBody;
      for (const [mediaType, media] of entries(isObject(body) ? body.content : undefined)) {
        if (!isObject(media)) continue;
        const label = `${method.toUpperCase()} ${path} requestBody`;
        if ("example" in media) out.push({ name: `${label} example`, method, path, operationId: String(op.operationId), mediaType, value: media.example });
        for (const [name, ex] of entries(media.examples)) {
          const example = isObject(ex) && typeof ex.$ref === "string" ? valueAt(spec, ex.$ref.slice(1)) : ex;
          if (isObject(example) && "value" in example) out.push({ name: `${label} example ${name}`, method, path, operationId: String(op.operationId), mediaType, value: example.value });
        }
      }
    }
  }
  return out;
}
