// The bundled spec, and an Ajv that validates a value against the schema at any
// JSON Pointer in it (internal $refs resolve because the whole document is one schema).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import formatsModule from "ajv-formats";

// ajv-formats is CommonJS with `exports.default`; NodeNext types the default import as the module.
const addFormats = formatsModule.default ?? (formatsModule as unknown as typeof formatsModule.default);

export const DEFAULT_SPEC_FILE = fileURLToPath(new URL("../../generated/openapi.json", import.meta.url));

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function loadSpec(file = DEFAULT_SPEC_FILE): JsonObject {
  return JSON.parse(readFileSync(file, "utf8"));
}

/** "/a/b~1c" from ["a", "b/c"] (RFC 6901). */
export function pointer(segments: (string | number)[]): string {
  return segments.map((s) => "/" + String(s).replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

export function valueAt(doc: Json, ptr: string): Json | undefined {
  let node: Json | undefined = doc;
  for (const raw of ptr.split("/").slice(1)) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, Json>)[key];
  }
  return node;
}

export interface SpecSchemas {
  /** Validation errors (`/url must be string`) of `value` against the schema at `schemaPointer`; [] when valid. */
  errors(schemaPointer: string, value: unknown): string[];
}

export function specSchemas(spec: JsonObject): SpecSchemas {
  // OpenAPI 3.1 schemas are JSON Schema 2020-12; `strict: false` lets OpenAPI's own keywords (example, xml, …) pass.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(spec as object, "spec");
  const compiled = new Map<string, ValidateFunction>();
  return {
    errors(schemaPointer, value) {
      let validate = compiled.get(schemaPointer);
      if (!validate) {
        // A URI fragment: JSON Pointer segments, percent-encoded ("{id}" → "%7Bid%7D").
        const fragment = schemaPointer.split("/").map(encodeURIComponent).join("/");
        validate = ajv.getSchema(`spec#${fragment}`);
        if (!validate) throw new Error(`no schema at ${schemaPointer}`);
        compiled.set(schemaPointer, validate);
      }
      if (validate(value)) return [];
      return (validate.errors ?? []).map((e) => `${e.instancePath || "(root)"} ${e.message}${e.params && "allowedValues" in e.params ? ` ${JSON.stringify(e.params.allowedValues)}` : ""}`);
    },
  };
}
