import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { raw, startServer, type TestServer } from "./helpers/server.js";

const specYaml = readFileSync(new URL("../openapi.yaml", import.meta.url), "utf8");
const specJson = JSON.parse(readFileSync(new URL("../generated/openapi.json", import.meta.url), "utf8"));

// Sources a directive may name without letting the page reach another machine.
const LOCAL_SOURCES = new Set(["'self'", "'none'", "'unsafe-inline'", "data:", "blob:"]);

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv.stop();
});

describe("GET /openapi.yaml", () => {
  test("when asked without a token, then 200 with the repository's openapi.yaml as YAML", async () => {
    const res = await raw(srv.baseUrl, "GET", "/openapi.yaml");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/yaml; charset=utf-8");
    expect(res.text).toBe(specYaml);
  });
});

describe("GET /openapi.json", () => {
  test("when asked without a token, then 200 with the bundled spec the server enforces", async () => {
    const res = await raw(srv.baseUrl, "GET", "/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.json).toEqual(specJson);
  });
});

describe("GET /docs", () => {
  test("when asked without a token, then 200 HTML whose CSP allows no remote origin", async () => {
    const res = await raw(srv.baseUrl, "GET", "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.text).toContain('<meta charset="utf-8">');

    const csp = res.headers.get("content-security-policy");
    expect(csp).toBeTruthy();
    const directives = csp!.split(";").map((d) => d.trim().split(/\s+/));
    expect(directives.map(([name]) => name)).toEqual(expect.arrayContaining(["default-src", "script-src", "connect-src"]));
    const remote = directives.flatMap(([name, ...sources]) => sources.filter((s) => !LOCAL_SOURCES.has(s)).map((s) => `${name} ${s}`));
    expect(remote).toEqual([]);
  });

  test("when the page loads its scripts, then they come from this server as UTF-8 JavaScript", async () => {
    const page = await raw(srv.baseUrl, "GET", "/docs");
    const scripts = [...page.text.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      expect(src).toMatch(/^\/[^/]/);
      const res = await raw(srv.baseUrl, "GET", src);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/javascript; charset=utf-8");
      expect(res.text.length).toBeGreaterThan(0);
    }
  });
});
