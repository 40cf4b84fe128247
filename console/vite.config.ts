// Builds the console into dist/console-app, served by the server at /console (server/http/console.ts).
// Vite 8 compiles TSX itself; the plugin below prints (and bounds) the JS the first page needs.
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const FIRST_PAGE_LIMIT_BYTES = 200 * 1024;

// The entry chunk plus every chunk it imports statically: what a browser must load before the
// first page renders (lazily loaded pages, such as Activity with its chart, are not counted).
function firstPageSize(): Plugin {
  return {
    name: "console-first-page-size",
    apply: "build",
    generateBundle(_options, bundle) {
      const chunks = new Map(Object.values(bundle).flatMap((c) => (c.type === "chunk" ? [[c.fileName, c] as const] : [])));
      const entry = [...chunks.values()].find((c) => c.isEntry);
      if (!entry) return;
      const seen = new Set<string>();
      const walk = (name: string) => {
        if (seen.has(name)) return;
        seen.add(name);
        for (const dep of chunks.get(name)?.imports ?? []) walk(dep);
      };
      walk(entry.fileName);
      const gzip = [...seen].reduce((sum, name) => sum + gzipSync(chunks.get(name)!.code).length, 0);
      const line = `console: first page JS ${(gzip / 1024).toFixed(1)} KB gzip (${seen.size} file${seen.size === 1 ? "" : "s"}; limit ${FIRST_PAGE_LIMIT_BYTES / 1024} KB)`;
      process.stdout.write(line + "\n");
      if (gzip > FIRST_PAGE_LIMIT_BYTES) this.error(`${line}: over the limit`);
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist/console-app", import.meta.url)),
    emptyOutDir: true,
    // No inline script or style anywhere: the CSP allows only files from this origin.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    rollupOptions: {
      // React Query marks its modules "use client" for server-component bundlers; meaningless here.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
  plugins: [firstPageSize()],
});
