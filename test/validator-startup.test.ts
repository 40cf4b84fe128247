// The start-up shortcuts in server/http/validator.ts change nothing express-openapi-validator
// builds from the spec: the preprocessed request and response documents are the same.
import { createRequire } from "node:module";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, test, vi } from "vitest";
import { spec } from "../server/app.js";
import { compileMetaSchemaOnUse, keepRouteRegexps, resolveComponentRefsWithoutCompiling, skipBundlingSelfContainedSpecs } from "../server/http/validator.js";

const require = createRequire(import.meta.url);
const { SchemaPreprocessor } = require("express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js");
const { OpenAPIFramework } = require("express-openapi-validator/dist/framework/index.js");
const { OpenApiValidator } = require("express-openapi-validator/dist/openapi.validator.js");

function preprocess() {
  // The options server/app.ts gives, normalised by eov as middleware() does.
  const eov = new OpenApiValidator({
    apiSpec: structuredClone(spec),
    validateApiSpec: false,
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false, allErrors: true },
    validateResponses: { removeAdditional: false },
    validateFormats: true,
  });
  const out = new SchemaPreprocessor(structuredClone(spec), eov.ajvOpts.preprocessor, eov.options.validateResponses).preProcess();
  return { apiDoc: out.apiDoc, apiDocRes: out.apiDocRes };
}

describe("express-openapi-validator start-up", () => {
  test("when component refs are resolved without compiling, then the preprocessed documents are the same", () => {
    const original = preprocess();
    resolveComponentRefsWithoutCompiling();
    const fast = preprocess();
    expect(isDeepStrictEqual(fast.apiDoc, original.apiDoc)).toBe(true);
    expect(isDeepStrictEqual(fast.apiDocRes, original.apiDocRes)).toBe(true);
    // Shared sub-objects stay shared (eov resolves a ref to the one component object).
    const created = (d: any) => d.paths["/api/mcp-servers"].post.requestBody.content["application/json"].schema;
    for (const d of [original.apiDoc, fast.apiDoc] as any[]) expect(created(d)).toBe(d.components.schemas.McpServerCreate);
  });

  test("when the meta-schema is compiled on use, then validateApiSpec still refuses an invalid spec and accepts ours", async () => {
    compileMetaSchemaOnUse();
    vi.spyOn(console, "error").mockImplementation(() => {}); // eov prints the errors it found
    const invalid = { openapi: "3.1.0", info: { title: "x", version: "1" }, paths: { "/x": { get: { responses: "none" } } } };
    await expect(new OpenAPIFramework({ apiDoc: invalid, validateApiSpec: true }).initialize({})).rejects.toThrow(/apiDoc was invalid/);
    await expect(new OpenAPIFramework({ apiDoc: structuredClone(spec), validateApiSpec: true }).initialize({})).resolves.toMatchObject({ apiDoc: { openapi: spec.openapi } });
    await expect(new OpenAPIFramework({ apiDoc: invalid, validateApiSpec: false }).initialize({})).resolves.toBeDefined();
  });

  test("when route regexps are kept, then eov's lookups get the same regexp and keys as a fresh compile", () => {
    const ptr = require(require.resolve("path-to-regexp", { paths: [require.resolve("express-openapi-validator")] }));
    const fresh = ptr.pathToRegexp("/api/mcp-servers/:id/mcp", { sensitive: false, strict: false });
    keepRouteRegexps();
    const first = ptr.pathToRegexp("/api/mcp-servers/:id/mcp", { sensitive: false, strict: false });
    expect(ptr.pathToRegexp("/api/mcp-servers/:id/mcp", { sensitive: false, strict: false })).toBe(first);
    expect(first.regexp.source).toBe(fresh.regexp.source);
    expect(first.keys).toEqual(fresh.keys);
    expect(first.regexp.exec("/api/mcp-servers/mcp_1/mcp")?.[1]).toBe("mcp_1");
    // Other options are another entry.
    const sensitive = ptr.pathToRegexp("/api/mcp-servers/:id/mcp", { sensitive: true, strict: false });
    expect(sensitive).not.toBe(first);
    expect(sensitive.regexp.flags).not.toContain("i");
    expect(first.regexp.flags).toContain("i");
  });

  test("when the spec's refs are all internal, then it is used as bundle() would return it, and a spec with an external ref is still bundled", async () => {
    const $RefParser = require("@apidevtools/json-schema-ref-parser");
    const bundled = await $RefParser.bundle(structuredClone(spec));
    expect(isDeepStrictEqual(bundled, spec)).toBe(true);
    skipBundlingSelfContainedSpecs();
    const doc = structuredClone(spec);
    const framework = new OpenAPIFramework({ apiDoc: doc, validateApiSpec: false });
    expect(await framework.loadSpec(doc)).toBe(doc);
    const external = { openapi: "3.1.0", info: { title: "x", version: "1" }, paths: { "/x": { $ref: "./missing-elsewhere.yaml#/x" } } };
    await expect(framework.loadSpec(external)).rejects.toThrow();
  });
});
