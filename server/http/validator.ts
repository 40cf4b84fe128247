// Start-up cost of express-openapi-validator, cut without changing what it checks.
// Its modules are imported statically (a default import of CommonJS is its exports object),
// so the patches reach the very instances eov uses, also once esbuild bundles the server
// (a require() it cannot see would load a second copy from node_modules and patch that).
import schemaValidatorModule from "express-openapi-validator/dist/framework/openapi.schema.validator.js";
import preprocessorModule from "express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js";
import frameworkModule from "express-openapi-validator/dist/framework/index.js";
import metadataModule from "express-openapi-validator/dist/middlewares/openapi.metadata.js";
import eovTypesModule from "express-openapi-validator/dist/framework/types.js";
import eovUtilModule from "express-openapi-validator/dist/middlewares/util.js";
// eov's own dependencies, the copies it resolves (none nested under it in node_modules).
import pathToRegexpModule from "path-to-regexp";
import ajvResolveModule from "ajv/dist/compile/resolve.js";

type SchemaValidatorModule = {
  OpenAPISchemaValidator: new (opts: { version: string; validateApiSpec: boolean }) => { validate(doc: unknown): { errors: unknown[] } };
};

let patched = false;

/**
 * eov 5.6 compiles the whole OpenAPI 3.1 meta-schema with Ajv in OpenAPIFramework.initialize
 * even when validateApiSpec is false and the compiled function is never called (about a
 * quarter of start-up CPU). The stand-in compiles it at its first validate(), so with
 * validateApiSpec true the spec is still checked exactly as before, and with false nothing is lost.
 * framework/index.js reads the class off the module object at each call, so replacing it works.
 */
export function compileMetaSchemaOnUse() {
  if (patched) return;
  patched = true;
  const mod = schemaValidatorModule as unknown as SchemaValidatorModule;
  const Eager = mod.OpenAPISchemaValidator;
  mod.OpenAPISchemaValidator = class LazyOpenAPISchemaValidator {
    private inner?: InstanceType<typeof Eager>;
    constructor(private readonly opts: { version: string; validateApiSpec: boolean }) {}
    validate(doc: unknown) {
      this.inner ??= new Eager(this.opts);
      return this.inner.validate(doc);
    }
  };
}

type PreprocessorModule = { SchemaPreprocessor: { prototype: { resolveSchema(this: Preprocessor, schema: unknown): unknown } } };
type Preprocessor = { apiDoc: { components?: { schemas?: Record<string, unknown> } }; resolvedSchemaCache: Map<string, unknown>; componentSchemas?: Record<string, unknown> };

// A component name that needs no JSON-pointer escaping, as Ajv's key `#/components/schemas/${id}` holds it.
const COMPONENT_SCHEMA_REF = /^#\/components\/schemas\/([A-Za-z0-9._-]+)$/;

/**
 * eov's SchemaPreprocessor resolves each `#/components/schemas/X` it meets with
 * `ajv.getSchema(ref).schema`: Ajv compiles X (and all it references) only for eov to read
 * back the object it was given, on an Ajv instance thrown away after start-up (most of
 * eov's start-up CPU). That object is `components.schemas[X]` as it was when the
 * preprocessor's Ajv was built (createAjv adds each one by reference), so it is read from
 * there; any other ref goes the original way. test/validator-startup.test.ts checks the
 * preprocessed documents are the same with and without this.
 */
export function resolveComponentRefsWithoutCompiling() {
  const mod = preprocessorModule as unknown as PreprocessorModule;
  const proto = mod.SchemaPreprocessor.prototype;
  if ((proto.resolveSchema as { fast?: boolean }).fast) return;
  const original = proto.resolveSchema;
  const resolve = function (this: Preprocessor, schema: unknown) {
    // The components as Ajv got them, taken at the first call (the preprocessor replaces entries as it walks).
    this.componentSchemas ??= { ...this.apiDoc.components?.schemas };
    const ref = (schema as { $ref?: unknown } | null | undefined)?.$ref;
    const m = typeof ref === "string" ? COMPONENT_SCHEMA_REF.exec(ref) : null;
    if (!m) return original.call(this, schema);
    if (this.resolvedSchemaCache.has(ref as string)) return this.resolvedSchemaCache.get(ref as string);
    if (!Object.hasOwn(this.componentSchemas, m[1])) return original.call(this, schema);
    const res = this.componentSchemas[m[1]];
    this.resolvedSchemaCache.set(ref as string, res);
    return res;
  };
  (resolve as { fast?: boolean }).fast = true;
  proto.resolveSchema = resolve;
}

type PathToRegexp = { pathToRegexp: (path: unknown, options?: Record<string, unknown>) => { regexp: RegExp; keys: unknown[] } };
const ROUTE_REGEXPS_KEPT = 1000;

/**
 * eov's metadata middleware looks a request's route up by calling path-to-regexp's
 * pathToRegexp on every route of the spec, for every request (a tenth of a GET's CPU). It is
 * a pure function of the route and the options, so the result is kept (for string routes and
 * plain options; a bounded number). The regexps have no g/y flag, so sharing one keeps no state.
 */
export function keepRouteRegexps() {
  const mod = pathToRegexpModule as unknown as PathToRegexp & { pathToRegexp: { kept?: boolean } };
  if (mod.pathToRegexp.kept) return;
  const original = mod.pathToRegexp;
  type Kept = { options: Record<string, unknown>; count: number; result: ReturnType<PathToRegexp["pathToRegexp"]> };
  const kept = new Map<string, Kept[]>();
  let size = 0;
  // Compared key by key: eov passes a new options object on every call.
  const same = (k: Kept, options: Record<string, unknown>) => {
    let n = 0;
    for (const name in options) {
      if (k.options[name] !== options[name]) return false;
      n++;
    }
    return n === k.count;
  };
  const memo = (path: unknown, options: Record<string, unknown> = {}) => {
    if (typeof path !== "string") return original(path, options);
    const entries = kept.get(path);
    if (entries) for (const k of entries) if (same(k, options)) return k.result;
    for (const name in options) {
      const v = options[name];
      if (v !== null && (typeof v === "object" || typeof v === "function")) return original(path, options);
    }
    const result = original(path, options);
    if (size < ROUTE_REGEXPS_KEPT) {
      size++;
      const copy = { ...options };
      (entries ?? kept.set(path, []).get(path)!).push({ options: copy, count: Object.keys(copy).length, result });
    }
    return result;
  };
  (memo as { kept?: boolean }).kept = true;
  mod.pathToRegexp = memo as typeof mod.pathToRegexp;
}

type FrameworkModule = { OpenAPIFramework: { prototype: { loadSpec(doc: unknown, refParser?: { mode?: string }): Promise<unknown> } } };

/** Whether every `$ref` in doc points inside it (`#/…`): nothing for a bundler to bring in. */
function onlyInternalRefs(doc: unknown): boolean {
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    if (Array.isArray(node)) {
      for (const v of node) stack.push(v);
      continue;
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && (typeof v !== "string" || !v.startsWith("#"))) return false;
      stack.push(v);
    }
  }
  return true;
}

/**
 * eov hands the spec object to json-schema-ref-parser's bundle(), whose only job is to pull
 * external `$ref`s in; given a document whose refs are all internal it returns that same
 * object unchanged, after crawling all of it (a tenth of start-up CPU). Such a document is
 * now used as it is; any other goes through bundle() as before. test/validator-startup.test.ts
 * checks bundle() returns our spec unchanged.
 */
export function skipBundlingSelfContainedSpecs() {
  const proto = (frameworkModule as unknown as FrameworkModule).OpenAPIFramework.prototype;
  if ((proto.loadSpec as { fast?: boolean }).fast) return;
  const original = proto.loadSpec;
  const loadSpec = function (this: unknown, doc: unknown, refParser: { mode?: string } = { mode: "bundle" }) {
    if (doc !== null && typeof doc === "object" && refParser.mode !== "dereference" && onlyInternalRefs(doc)) return Promise.resolve(doc);
    return original.call(this, doc, refParser);
  };
  (loadSpec as { fast?: boolean }).fast = true;
  proto.loadSpec = loadSpec;
}

type SchemaRefsModule = { getSchemaRefs: ((this: { opts: { schemaId?: string } }, schema: unknown, baseId: string) => Record<string, unknown>) & { fast?: boolean } };
// The keys Ajv's getSchemaRefs acts on (besides the schemaId option, `$id` here); nothing else in a schema gives it work.
const ID_KEYS = ["$anchor", "$dynamicAnchor"];

/**
 * Ajv's addSchema walks the whole schema (getSchemaRefs) to collect the ids and anchors in
 * it, building a JSON pointer for every object. eov adds each route's validators with the
 * spec's paths and components attached, so every route's first request walked all of the
 * spec again (~11 ms each; ~30 ms of the first /healthz). The walk records something only
 * at an object holding a string `$id` (the schemaId option), `$anchor` or `$dynamicAnchor`;
 * for a schema with none anywhere it returns an empty object and changes nothing, so such a
 * schema now gets that at once. Subtrees found to have none are remembered by object (eov
 * attaches the same paths and components to every route); Ajv already requires schemas not
 * to change once added. test/validator-startup.test.ts compares both for every schema eov adds.
 */
export function skipRefScanOfSchemasWithoutIds() {
  const mod = ajvResolveModule as unknown as SchemaRefsModule;
  if (mod.getSchemaRefs.fast) return;
  const original = mod.getSchemaRefs;
  const clean = new WeakSet<object>();
  const hasIds = (root: object, schemaId: string): boolean => {
    const stack: object[] = [root];
    const seen = new Set<object>();
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (clean.has(node) || seen.has(node)) continue;
      seen.add(node);
      if (Array.isArray(node)) {
        for (const v of node) if (v !== null && typeof v === "object") stack.push(v);
        continue;
      }
      const o = node as Record<string, unknown>;
      if (typeof o[schemaId] === "string" || ID_KEYS.some((k) => typeof o[k] === "string")) return true;
      for (const k in o) {
        const v = o[k];
        if (v !== null && typeof v === "object") stack.push(v);
      }
    }
    for (const node of seen) clean.add(node);
    return false;
  };
  const getSchemaRefs = function (this: { opts: { schemaId?: string } }, schema: unknown, baseId: string) {
    if (schema !== null && typeof schema === "object" && !hasIds(schema, this.opts.schemaId ?? "$id")) return {};
    return original.call(this, schema, baseId);
  };
  (getSchemaRefs as { fast?: boolean }).fast = true;
  mod.getSchemaRefs = getSchemaRefs as SchemaRefsModule["getSchemaRefs"];
}

type RouteMethods = { basePath: string; _openApiRoute: string; _expressRoute: string } & Record<string, unknown>;
type OpenApiContext = {
  expressRouteMap: Record<string, RouteMethods>;
  openApiRouteMap: Record<string, Record<string, unknown>>;
  apiDoc: { paths: Record<string, Record<string, unknown>> };
  useRequestUrl: boolean;
  ignoreUndocumented: boolean;
  serial: number;
  shouldIgnoreRoute(path: string): boolean;
  isManagedRoute(path: string): boolean;
  routePair(route: string): { expressRoute: string; openApiRoute: string };
};
type ResponseApiDoc = { paths: Record<string, Record<string, unknown>> } | undefined;
type MetadataModule = { applyOpenApiMetadata: ((ctx: OpenApiContext, responseApiDoc: ResponseApiDoc) => (req: MetaRequest, res: unknown, next: () => void) => void) & { fast?: boolean } };
type MetaRequest = {
  path: string;
  baseUrl: string;
  url: string;
  originalUrl: string;
  method: string;
  app: { enabled(name: string): boolean };
  params: unknown;
  openapi?: Record<string, unknown>;
};
type HttpErrorClass = new (opts: { path: string; message: string; headers?: Record<string, string> }) => Error;
type EovTypes = { NotFound: HttpErrorClass; MethodNotAllowed: HttpErrorClass; BadRequest: HttpErrorClass };
type RouteEntry = { expressRoute: string; openApiRoute: string; methods: RouteMethods; pathKey: string; regexp: RegExp; paramKeys: string[] };

/**
 * eov's metadata middleware finds a request's route by walking every route of the spec per
 * request, and for each one re-deriving its pair, path key and options and asking
 * path-to-regexp for its regexp (about 3% of a GET or a create: those routes sort last).
 * All of that is fixed once eov's context is built, so it is computed once per routing
 * option pair (strict, case-sensitive) and each request only runs the regexps, in eov's
 * order; the rest of the middleware is eov's own, line for line (eov 5.6
 * dist/middlewares/openapi.metadata.js): the same match, params, 404/405/400 errors and
 * req.openapi. test/validator-startup.test.ts compares it with the original.
 */
export function precomputeRouteLookup() {
  const mod = metadataModule as unknown as MetadataModule;
  if (mod.applyOpenApiMetadata.fast) return;
  const { NotFound, MethodNotAllowed, BadRequest } = eovTypesModule as unknown as EovTypes;
  const { zipObject } = eovUtilModule as unknown as { zipObject: (keys: string[], values: string[]) => Record<string, string> };
  const { httpMethods } = preprocessorModule as unknown as { httpMethods: Set<string> };
  const { pathToRegexp } = pathToRegexpModule as unknown as PathToRegexp;
  const applyOpenApiMetadata = (openApiContext: OpenApiContext, responseApiDoc: ResponseApiDoc) => {
    const tables = new Map<string, RouteEntry[]>();
    const routeTable = (strict: boolean, sensitive: boolean) => {
      const key = `${strict}/${sensitive}`;
      let table = tables.get(key);
      if (!table) {
        table = Object.entries(openApiContext.expressRouteMap).map(([expressRoute, methods]) => {
          const openApiRoute = openApiContext.routePair(expressRoute).openApiRoute;
          const regexpObj = pathToRegexp(expressRoute, { sensitive, strict });
          return { expressRoute, openApiRoute, methods, pathKey: openApiRoute.substring(methods.basePath.length), regexp: regexpObj.regexp, paramKeys: (regexpObj.keys as { name: string }[]).map((k) => k.name) };
        });
        tables.set(key, table);
      }
      return table;
    };
    const lookupRoute = (req: MetaRequest, useRequestUrl: boolean) => {
      const path = useRequestUrl ? req.url.split("?")[0] : req.originalUrl.split("?")[0];
      const method = req.method.toLowerCase();
      for (const { expressRoute, openApiRoute, pathKey, regexp, paramKeys } of routeTable(!!req.app.enabled("strict routing"), !!req.app.enabled("case sensitive routing"))) {
        const matchedRoute = regexp.exec(path);
        if (!matchedRoute) continue;
        const schema = openApiContext.apiDoc.paths[pathKey][method];
        const _schema = responseApiDoc?.paths[pathKey][method];
        try {
          const paramsVals = matchedRoute.slice(1).map(decodeURIComponent);
          return { schema, expressRoute, openApiRoute, pathParams: zipObject(paramKeys, paramsVals), serial: -1, _responseSchema: _schema };
        } catch {
          throw new BadRequest({ path: req.path, message: `malformed uri'` });
        }
      }
      return null;
    };
    return (req: MetaRequest, _res: unknown, next: () => void) => {
      // note base path is empty when path is fully qualified i.e. req.path.startsWith('')
      const path = req.path.startsWith(req.baseUrl) ? req.path : `${req.baseUrl}/${req.path}`;
      if (openApiContext.shouldIgnoreRoute(path)) return next();
      const matched = lookupRoute(req, openApiContext.useRequestUrl);
      if (matched) {
        const { expressRoute, openApiRoute, pathParams, schema } = matched;
        if (!schema) {
          // Prevents validation for routes which match on path but mismatch on method
          if (openApiContext.ignoreUndocumented) return next();
          throw new MethodNotAllowed({
            path: req.path,
            message: `${req.method} method not allowed`,
            headers: {
              Allow: Object.keys(openApiContext.openApiRouteMap[openApiRoute])
                .filter((key) => httpMethods.has(key.toLowerCase()))
                .join(", "),
            },
          });
        }
        req.openapi = { expressRoute, openApiRoute, pathParams, schema, serial: openApiContext.serial };
        req.params = pathParams;
        // add the response schema if validating responses
        if (responseApiDoc) req.openapi._responseSchema = matched._responseSchema;
      } else if (openApiContext.isManagedRoute(path) && !openApiContext.ignoreUndocumented) {
        throw new NotFound({ path: req.path, message: "not found" });
      }
      next();
    };
  };
  (applyOpenApiMetadata as { fast?: boolean }).fast = true;
  mod.applyOpenApiMetadata = applyOpenApiMetadata as MetadataModule["applyOpenApiMetadata"];
}
