// The console's serving (issue 23): GET / redirects, /console and its client-side paths are the
// built page under a CSP without inline script, assets are files or 404s; and every API call the
// console's source makes names an operation of openapi.yaml.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureConsoleBuilt } from "./helpers/console-build.js";
import { startServer, type TestServer } from "./helpers/server.js";

const spec = JSON.parse(readFileSync(new URL("../generated/openapi.json", import.meta.url), "utf8"));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|tsx)$/.test(name) && !name.endsWith(".config.ts") ? [path] : [];
  });
}

/** Every `.GET("/path"` (POST, PUT, PATCH, DELETE) a file makes through the typed client. */
function apiCalls(text: string): Array<{ method: string; path: string }> {
  return [...text.matchAll(/\.(GET|POST|PUT|PATCH|DELETE)\(\s*"([^"]+)"/g)].map((m) => ({ method: m[1].toLowerCase(), path: m[2] }));
}

let srv: TestServer;
beforeAll(async () => {
  ensureConsoleBuilt();
  srv = await startServer();
}, 120_000);
afterAll(async () => {
  await srv?.stop();
});

describe("GET / and /console", () => {
  test("when / is opened, then 302 to /console", async () => {
    const res = await fetch(`${srv.baseUrl}/`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/console");
  });

  test.each(["/console", "/console/", "/console/servers", "/console/servers/mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE", "/console/activity"])(
    "when %s is opened, then the page comes with lang, a viewport, a favicon, no inline script, and a CSP that allows none",
    async (path) => {
      const res = await fetch(srv.baseUrl + path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).not.toContain("unsafe-eval");
      const html = await res.text();
      expect(html).toMatch(/<html lang="en">/);
      expect(html).toContain('name="viewport"');
      expect(html).toMatch(/<link rel="icon" href="\/console\/favicon.svg"/);
      // Every script is a file of this origin: none has a body.
      for (const script of html.match(/<script[^>]*>[\s\S]*?<\/script>/g) ?? []) expect(script).toMatch(/^<script[^>]*src="\/console\/assets\/[^"]+"[^>]*><\/script>$/);
    },
  );

  test("when the page's assets and favicon are fetched, then each is served with its type, and a missing or escaping path is a 404", async () => {
    const html = await (await fetch(`${srv.baseUrl}/console`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const asset of assets) {
      const res = await fetch(srv.baseUrl + asset);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get("content-type"), asset).toMatch(asset.endsWith(".js") ? /^text\/javascript/ : asset.endsWith(".css") ? /^text\/css/ : /^image\/svg\+xml/);
    }
    expect((await fetch(`${srv.baseUrl}/console/assets/nothing-here.js`)).status).toBe(404);
    expect((await fetch(`${srv.baseUrl}/console/assets/..%2f..%2f..%2fpackage.json`)).status).toBe(404);
  });
});

describe("the console's API calls", () => {
  const files = [...sources(join(process.cwd(), "console")), join(process.cwd(), "client", "index.ts")];

  test("when the console's source is read, then every call it makes is an operation of openapi.yaml", () => {
    const calls = files.flatMap((f) => apiCalls(readFileSync(f, "utf8")).map((c) => ({ ...c, file: f })));
    expect(calls.length).toBeGreaterThan(5);
    const missing = calls.filter((c) => !spec.paths[c.path]?.[c.method]);
    expect(missing).toEqual([]);
  });

  test("when a call names a path or method the spec lacks, then the check reports it", () => {
    const calls = apiCalls(`api().GET("/api/mcp-servers/{id}/nothing", {}); api().PUT("/api/mcp-servers/{id}", {});`);
    expect(calls.filter((c) => !spec.paths[c.path]?.[c.method])).toEqual([
      { method: "get", path: "/api/mcp-servers/{id}/nothing" },
      { method: "put", path: "/api/mcp-servers/{id}" },
    ]);
  });
});
