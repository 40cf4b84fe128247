// The start-up shortcuts in server/http/validator.ts change nothing express-openapi-validator
// builds from the spec: the preprocessed request and response documents are the same.
import { createRequire } from "node:module";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, test, vi } from "vitest";
import { spec } from "../server/app.js";
import { compileMetaSchemaOnUse, keepRouteRegexps, precomputeRouteLookup, resolveComponentRefsWithoutCompiling, skipBundlingSelfContainedSpecs } from "../server/http/validator.js";
import { startServer, uniqueWorkspace } from "./helpers/server.js";

const require = createRequire(import.meta.url);
const { SchemaPreprocessor } = require("express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js");
const { OpenAPIFramework } = require("express-openapi-validator/dist/framework/index.js");
const { OpenApiValidator } = require("express-openapi-validator/dist/openapi.validator.js");
const metadataModule = require("express-openapi-validator/dist/middlewares/openapi.metadata.js");
// Taken before any test builds an app (buildApp installs the stand-in).
const originalMetadata = metadataModule.applyOpenApiMetadata;

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

  test("when route lookups are precomputed, then every request gets the route, params, errors and req.openapi eov's own lookup gives", async () => {
    expect(originalMetadata.fast).toBeUndefined();
    const { OpenApiSpecLoader } = require("express-openapi-validator/dist/framework/openapi.spec.loader.js");
    const { OpenApiContext } = require("express-openapi-validator/dist/framework/openapi.context.js");
    const loaded = await new OpenApiSpecLoader({ apiDoc: structuredClone(spec), validateApiSpec: false, $refParser: { mode: "bundle" } }).load();
    const context = new OpenApiContext(loaded, undefined, false, false);
    const responseApiDoc = preprocess().apiDocRes;
    precomputeRouteLookup();
    const fast = metadataModule.applyOpenApiMetadata;
    expect(fast.fast).toBe(true);
    const run = (factory: typeof originalMetadata, method: string, url: string, settings: Record<string, boolean>) => {
      const path = url.split("?")[0];
      const req: Record<string, unknown> = { method, url, originalUrl: url, path, baseUrl: "", params: {}, app: { enabled: (name: string) => settings[name] === true } };
      let nexted = false;
      try {
        factory(context, responseApiDoc)(req, {}, () => (nexted = true));
      } catch (err) {
        const e = err as { constructor: { name: string }; status?: number; message?: string; headers?: unknown; path?: string };
        return { error: { class: e.constructor.name, status: e.status, message: e.message, headers: e.headers, path: e.path } };
      }
      return { nexted, openapi: req.openapi, params: req.params };
    };
    const urls = new Set<string>(["/", "/api", "/api/", "/api/nope", "/healthz?x=1", "/api/mcp-servers/mcp_1/connections/me", "/api/mcp-servers/mcp_1/connections/bob", "/api/mcp-servers/mcp_%E0%A4%A", "/api/connectors/io.github.acme%2Fweather", "/API/MCP-SERVERS", "/api/mcp-servers/"]);
    for (const route of Object.keys(spec.paths)) {
      const concrete = route.replace(/\{[^}]+\}/g, "mcp_01J");
      for (const url of [concrete, `${concrete}/`, `${concrete}?limit=5`, `${concrete}/extra`, concrete.toUpperCase()]) urls.add(url);
    }
    let compared = 0;
    let matched = 0;
    const settingsList: Record<string, boolean>[] = [{}, { "strict routing": true }, { "case sensitive routing": true }];
    for (const settings of settingsList) {
      for (const url of urls) {
        for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]) {
          const want = run(originalMetadata, method, url, settings);
          const got = run(fast, method, url, settings);
          expect({ method, url, settings, ...got }).toEqual({ method, url, settings, ...want });
          compared++;
          if ("openapi" in want && want.openapi) matched++;
        }
      }
    }
    expect(matched).toBeGreaterThan(Object.keys(spec.paths).length);
    expect(compared).toBeGreaterThan(1000);
  });

  test("when a schema has no $id or anchor, then Ajv's ref scan is skipped with the result the scan gives, for every schema eov adds while serving", async () => {
    const resolve = require("ajv/dist/compile/resolve.js");
    const original = resolve.getSchemaRefs;
    expect(original.fast).toBeUndefined();
    const srv = await startServer(); // buildApp installs the shortcut
    const fast = resolve.getSchemaRefs;
    expect(fast.fast).toBe(true);
    // A schema with ids still gets the scan, also beside a subtree already found to have none.
    const { Ajv2020 } = require("ajv/dist/2020.js");
    const ajv = new Ajv2020({ strict: false });
    const plain = { type: "object", properties: { n: { type: "number" } } };
    expect(fast.call(ajv, plain, "")).toEqual({});
    const withIds = { type: "object", properties: { plain, a: { $anchor: "here", type: "string" }, b: { $id: "https://example.com/b", type: "number" } } };
    const scanned = original.call({ opts: ajv.opts, refs: {} }, withIds, "");
    expect(Object.keys(scanned)).toEqual(["#here"]);
    expect(fast.call(ajv, withIds, "")).toEqual(scanned);
    let calls = 0;
    let routeSchemas = 0;
    const mismatches: unknown[] = [];
    resolve.getSchemaRefs = function (this: { opts: unknown; refs: Record<string, unknown> }, schema: any, baseId: string) {
      // The scan as Ajv wrote it, on a copy of the instance's refs, before the real call adds any.
      const want = original.call({ opts: this.opts, refs: { ...this.refs } }, schema, baseId);
      const got = fast.call(this, schema, baseId);
      calls++;
      if (schema?.paths && schema?.components) routeSchemas++;
      if (!isDeepStrictEqual(got, want)) mismatches.push({ baseId, got, want });
      return got;
    };
    try {
      const workspaceId = uniqueWorkspace();
      const api = srv.client(await srv.token([workspaceId]));
      expect((await fetch(`${srv.baseUrl}/healthz`)).status).toBe(200);
      expect((await api.GET("/api/mcp-servers", { params: { query: { workspaceId } } })).response.status).toBe(200);
      const created = await api.POST("/api/mcp-servers", { body: { workspaceId, name: "refs", url: "https://example.com/mcp" } });
      expect(created.response.status).toBe(201);
      expect((await api.GET("/api/mcp-servers/{id}", { params: { path: { id: created.data!.id } } })).response.status).toBe(200);
      expect((await api.POST("/api/mcp-servers", { body: { workspaceId, name: "" } as never })).response.status).toBe(400);
    } finally {
      resolve.getSchemaRefs = fast;
      await srv.stop();
    }
    expect(mismatches).toEqual([]);
    expect(routeSchemas).toBeGreaterThan(0);
    expect(calls).toBeGreaterThan(routeSchemas);
  });

  test("when no operation takes multipart or a binary body, then eov's multipart step (off in app.ts) had nothing to handle", () => {
    const found: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (node === null || typeof node !== "object") return;
      for (const [k, v] of Object.entries(node)) {
        if (k.startsWith("multipart/") || (k === "format" && v === "binary")) found.push(`${path}/${k}`);
        walk(v, `${path}/${k}`);
      }
    };
    walk(spec, "#");
    expect(found).toEqual([]);
  });
});
