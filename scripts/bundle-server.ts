// `npm run build`'s bundling step: esbuild folds server/main.ts and what it imports (node_modules
// included) into dist/server/main.js, overwriting tsc's copy, so start-up reads a few files
// instead of 900. Each dynamic import() becomes a chunk of its own beside it, loaded at first
// use as before. The CLIs in dist/scripts stay tsc's files. Run from the checkout's root.
//   node dist/scripts/bundle-server.js
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build, type Plugin } from "esbuild";

const OUT = "dist/server";
const CHUNK = /\.chunk\.js(\.map)?$/;

// Loaded from node_modules at run time: native addons, and the database drivers Knex requires
// by name (pg only when DATABASE_URL says postgres; the others never, but Knex names them).
const EXTERNAL = ["better-sqlite3", "pg", "pg-native", "pg-query-stream", "sqlite3", "mysql", "mysql2", "mariadb", "tedious", "oracledb"];

// Required only inside functions, and never or seldom called: left in node_modules, loaded
// there at that require() as before, so start-up does not parse them (about 40 ms of CPU).
// Knex's dialects other than better-sqlite3 and postgres (what server/data/db.ts opens), and
// iconv-lite's encoding tables (body-parser's first decode loads them).
const UNUSED_DIALECT = /^\.\/(cockroachdb|mssql|mysql|mariadb|mysql2|oracle|oracledb|pgnative|redshift)$/;
// express-openapi-validator requires these at load but calls them only for specs with external
// `$ref`s (json-schema-ref-parser, js-yaml under it: server/http/validator.ts skips it for ours)
// and for multipart bodies (multer, busboy under it: fileUploader is off). eov gets a stand-in
// that requires the package from node_modules at its first call (about 450 KB not parsed at start).
const REQUIRED_AT_FIRST_CALL: Record<string, { importer: RegExp; standIn: string }> = {
  multer: {
    importer: /express-openapi-validator[/\\]dist[/\\]middlewares[/\\]openapi\.multipart\.js$/,
    // eov also reads multer.MulterError, when a multer middleware failed.
    standIn: 'let m; const load = () => (m ??= require("multer"));\nmodule.exports = (...a) => load()(...a);\nObject.defineProperty(module.exports, "MulterError", { get: () => load().MulterError });',
  },
  "@apidevtools/json-schema-ref-parser": {
    importer: /express-openapi-validator[/\\]dist[/\\]framework[/\\]index\.js$/,
    standIn: 'let p; const load = () => (p ??= require("@apidevtools/json-schema-ref-parser"));\nmodule.exports = { bundle: (...a) => load().bundle(...a), dereference: (...a) => load().dereference(...a) };',
  },
};
const loadedWhereTheyAre: Plugin = {
  name: "loaded-where-they-are",
  setup(b) {
    b.onResolve({ filter: UNUSED_DIALECT }, (a) => (/knex[/\\]lib[/\\]dialects[/\\]index\.js$/.test(a.importer) ? { path: `knex/lib/dialects/${a.path.slice(2)}/index.js`, external: true } : undefined));
    b.onResolve({ filter: /^\.\.\/encodings$/ }, (a) => (/iconv-lite[/\\]lib[/\\]index\.js$/.test(a.importer) ? { path: "iconv-lite/encodings/index.js", external: true } : undefined));
    b.onResolve({ filter: /^(multer|@apidevtools\/json-schema-ref-parser)$/ }, (a) => {
      if (a.namespace === "first-call") return { path: a.path, external: true };
      return REQUIRED_AT_FIRST_CALL[a.path].importer.test(a.importer) ? { path: a.path, namespace: "first-call" } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "first-call" }, (a) => ({ contents: REQUIRED_AT_FIRST_CALL[a.path].standIn, loader: "js", resolveDir: process.cwd() }));
  },
};

for (const file of readdirSync(OUT)) if (CHUNK.test(file)) rmSync(join(OUT, file));

await build({
  entryPoints: { main: "server/main.ts" },
  outdir: OUT,
  // Flat, beside main.js: server/paths.ts finds dist/ as "../" from any of them.
  chunkNames: "[name]-[hash].chunk",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: EXTERNAL.flatMap((name) => [name, `${name}/*`]),
  sourcemap: true,
  // Bundled CommonJS packages call require() for Node's modules and the externals.
  banner: { js: 'import { createRequire as __bundleCreateRequire } from "node:module";\nconst require = __bundleCreateRequire(import.meta.url);' },
  plugins: [loadedWhereTheyAre],
  logLevel: "warning",
});
