// The connector catalog (issue 14): `npm run -s catalog -- sync | import`, GET /api/connectors.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { closedPortUrl } from "./helpers/mcp-peers.js";
import { startFakeRegistry, type FakeRegistry, type RegistryEntry } from "./helpers/fake-registry.js";
import { raw, startServer, type TestServer } from "./helpers/server.js";
import { createRegistryClient } from "../server/outbound/registry-client.js";

const root = join(import.meta.dirname, "..");
const fixture = (name: string) => join(root, "test", "fixtures", "server-json", name);
const started: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function server(): Promise<TestServer> {
  const srv = await startServer();
  started.push({ close: () => srv.stop() });
  return srv;
}

async function registry(entries: RegistryEntry[], pageSize = 2): Promise<FakeRegistry> {
  const r = await startFakeRegistry(entries, pageSize);
  started.push(r);
  return r;
}

function catalog(srv: TestServer, env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "scripts/catalog.ts", ...args],
      { cwd: root, env: { ...process.env, DATABASE_URL: srv.databaseUrl, MCP_API_ENCRYPTION_KEY: srv.config.encryptionKey!, LOG_LEVEL: "silent", ...env }, encoding: "utf8" },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

const doc = (name: string, version = "1.0.0", extra: Record<string, unknown> = {}) => ({
  name,
  description: `The ${name} server.`,
  version,
  remotes: [{ type: "streamable-http", url: `https://${name.split("/")[1]}.example.com/mcp` }],
  ...extra,
});

async function names(srv: TestServer): Promise<string[]> {
  const token = await srv.token(["ws_catalog"]);
  const out: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await raw(srv.baseUrl, "GET", `/api/connectors?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token });
    out.push(...page.json.data.map((c: { name: string; version: string }) => `${c.name}@${c.version}`));
    cursor = page.json.nextCursor;
  } while (cursor);
  return out;
}

describe("npm run -s catalog -- sync", { timeout: 120_000 }, () => {
  test("when the registry serves several pages with two versions, deleted and deprecated entries, then only active latest versions are kept", async () => {
    const srv = await server();
    const reg = await registry([
      { server: doc("io.github.acme/alpha", "1.0.0"), isLatest: false, updatedAt: "2026-01-01T00:00:00Z" },
      { server: doc("io.github.acme/alpha", "2.0.0"), updatedAt: "2026-01-02T00:00:00Z" },
      { server: doc("io.github.acme/beta"), updatedAt: "2026-01-03T00:00:00Z" },
      { server: doc("io.github.acme/gone"), status: "deleted", updatedAt: "2026-01-04T00:00:00Z" },
      { server: doc("io.github.acme/old"), status: "deprecated", updatedAt: "2026-01-05T00:00:00Z" },
      { server: { name: "io.github.acme/broken", description: "no version" }, updatedAt: "2026-01-06T00:00:00Z" },
    ]);
    const result = await catalog(srv, { MCP_API_REGISTRY_URL: reg.url }, "sync");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`synced 3 pages from ${reg.url}: 2 added or updated, 0 removed, 1 skipped\n`);
    expect(result.stderr).toContain("skipped io.github.acme/broken: not valid server.json: version:");
    expect(await names(srv)).toEqual(["io.github.acme/alpha@2.0.0", "io.github.acme/beta@1.0.0"]);
    expect(reg.queries.map((q) => q.get("cursor"))).toEqual([null, "2", "4"]);
    expect(reg.queries.every((q) => q.get("version") === "latest" && q.get("updated_since") === null)).toBe(true);

    // Later: beta is deprecated, alpha gets 3.0.0, gamma appears; only what changed since is asked for.
    reg.entries.push(
      { server: doc("io.github.acme/beta"), status: "deprecated", updatedAt: "2026-02-01T00:00:00Z" },
      { server: doc("io.github.acme/alpha", "3.0.0"), updatedAt: "2026-02-02T00:00:00Z" },
      { server: doc("io.github.acme/gamma"), updatedAt: "2026-02-03T00:00:00Z" },
    );
    reg.queries.length = 0;
    const again = await catalog(srv, { MCP_API_REGISTRY_URL: reg.url }, "sync");
    expect(again.stdout).toBe(`synced 2 pages from ${reg.url}: 2 added or updated, 1 removed, 0 skipped\n`);
    expect(reg.queries[0].get("updated_since")).toBe("2026-01-06T00:00:00Z");
    expect(await names(srv)).toEqual(["io.github.acme/alpha@3.0.0", "io.github.acme/gamma@1.0.0"]);
  });

  test.each([
    ["down", "cannot be reached"],
    ["http500", "answered HTTP 500 to GET /v0.1/servers"],
    ["html", "answered something other than the MCP Registry API (the body is not JSON)"],
    ["wrong-shape", 'answered something other than the MCP Registry API (no "servers" list of objects)'],
    ["silent", "did not answer within 500 ms (MCP_API_REGISTRY_TIMEOUT_MS)"],
    ["page2", "answered HTTP 500"],
  ] as const)("when the registry is %s, then sync exits 1 saying so and the catalog is unchanged", async (mode, message) => {
    const srv = await server();
    const before = await registry([{ server: doc("io.github.acme/kept"), updatedAt: "2026-01-01T00:00:00Z" }]);
    await srv.services.connectors.sync(before.url, createRegistryClient({ timeoutMs: 5000 }));

    const reg = await registry([
      { server: doc("io.github.acme/kept"), status: "deleted", updatedAt: "2026-03-01T00:00:00Z" },
      { server: doc("io.github.acme/new-1"), updatedAt: "2026-03-02T00:00:00Z" },
      { server: doc("io.github.acme/new-2"), updatedAt: "2026-03-03T00:00:00Z" },
    ]);
    let url = reg.url;
    if (mode === "down") url = (await closedPortUrl()).replace(/\/mcp$/, "");
    else reg.mode = mode;
    const result = await catalog(srv, { MCP_API_REGISTRY_URL: url, MCP_API_REGISTRY_TIMEOUT_MS: "500" }, "sync");
    expect(result).toMatchObject({ code: 1, stdout: "" });
    expect(result.stderr).toContain("catalog sync failed, the catalog is unchanged: the registry at http://127.0.0.1:");
    expect(result.stderr).toContain(message);
    expect(await names(srv)).toEqual(["io.github.acme/kept@1.0.0"]);
  });

  test("when MCP_API_REGISTRY_URL is unset, then sync exits 2 and says what to set", async () => {
    const srv = await server();
    const result = await catalog(srv, { MCP_API_REGISTRY_URL: "" }, "sync");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("MCP_API_REGISTRY_URL is not set");
  });
});

describe("npm run -s catalog -- import", { timeout: 120_000 }, () => {
  test("when the files are valid server.json, then they are imported and served", async () => {
    const srv = await server();
    const result = await catalog(srv, {}, "import", fixture("weather.json"), fixture("minimal.json"));
    expect(result).toMatchObject({ code: 0, stdout: "imported io.github.acme/weather\nimported io.github.acme/minimal\n" });
    expect(await names(srv)).toEqual(["io.github.acme/minimal@0.1.0", "io.github.acme/weather@1.4.0"]);
  });

  test("when any file is not valid server.json, then exit 1 naming each problem by file and field, and nothing is imported", async () => {
    const srv = await server();
    const files = ["invalid-no-version.json", "invalid-name-and-remote.json", "invalid-undeclared-variable.json", "invalid-packages-only.json"];
    const result = await catalog(srv, {}, "import", fixture("minimal.json"), ...files.map(fixture));
    expect(result).toMatchObject({ code: 1, stdout: "" });
    expect(result.stderr).toContain("catalog import failed, nothing imported: not valid server.json (schema 2025-12-11");
    for (const [file, message] of [
      ["invalid-no-version.json", "version: Invalid input"],
      ["invalid-name-and-remote.json", "name: must be a reverse-DNS name with one slash"],
      ["invalid-name-and-remote.json", "remotes.0.type:"],
      ["invalid-undeclared-variable.json", "remotes.0.url: uses {tenant}, which is not among its variables"],
      ["invalid-packages-only.json", "remotes: a connector needs at least one remote"],
    ]) {
      expect(result.stderr).toContain(`${fixture(file)}: ${message}`);
    }
    expect(result.stderr).not.toContain("minimal.json:");
    expect(await names(srv)).toEqual([]);
  });

  test("when a file is not JSON or missing, then exit 1 and nothing is imported", async () => {
    const srv = await server();
    const missing = await catalog(srv, {}, "import", fixture("nope.json"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("nope.json: cannot be read (ENOENT)");
    const usage = await catalog(srv, {}, "import");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("usage:");
  });
});

describe("GET /api/connectors", () => {
  test("when the catalog has entries, then search, limit and cursor page through them by name", async () => {
    const srv = await server();
    await srv.services.connectors.importDocuments(
      ["io.github.acme/a-weather", "io.github.acme/b-maps", "io.github.acme/c-weather", "io.github.acme/d-weather"].map((name) => ({ label: name, document: doc(name) })),
    );
    const token = await srv.token(["ws_any"]);
    const first = await raw(srv.baseUrl, "GET", "/api/connectors?search=WEATHER&limit=2", { token });
    expect(first.status).toBe(200);
    expect(first.json.data.map((c: { name: string }) => c.name)).toEqual(["io.github.acme/a-weather", "io.github.acme/c-weather"]);
    const second = await raw(srv.baseUrl, "GET", `/api/connectors?search=WEATHER&limit=2&cursor=${first.json.nextCursor}`, { token });
    expect(second.json).toEqual({ data: [expect.objectContaining({ name: "io.github.acme/d-weather" })], nextCursor: null });
    expect((await raw(srv.baseUrl, "GET", "/api/connectors?search=100%25", { token })).json.data).toEqual([]);
    // A cursor is only good for the search that issued it.
    const other = await raw(srv.baseUrl, "GET", `/api/connectors?search=maps&cursor=${first.json.nextCursor}`, { token });
    expect(other.status).toBe(400);
    expect(other.json.errors).toEqual([{ path: "/query/cursor", message: "is not a cursor this server issued for this list" }]);
    expect((await raw(srv.baseUrl, "GET", "/api/connectors?limit=0", { token })).status).toBe(400);
    expect((await raw(srv.baseUrl, "GET", "/api/connectors")).status).toBe(401);
  });
});

describe("GET /api/connectors/{connectorId}", { timeout: 120_000 }, () => {
  test("when the name is percent-encoded, then the entry with its remotes and inputs, and no secret input's value", async () => {
    const srv = await server();
    expect((await catalog(srv, {}, "import", fixture("weather.json"))).code).toBe(0);
    const token = await srv.token(["ws_any"]);
    const res = await raw(srv.baseUrl, "GET", "/api/connectors/io.github.acme%2Fweather", { token });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      name: "io.github.acme/weather",
      title: "Weather",
      description: "Forecasts and observations for a region.",
      version: "1.4.0",
      websiteUrl: "https://weather.acme.example",
      source: "file",
      updatedAt: expect.any(String),
      remotes: [
        {
          type: "streamable-http",
          url: "https://{region}.weather.acme.example/mcp",
          variables: [{ name: "region", description: "Region", isRequired: true, isSecret: false, default: "eu", choices: ["eu", "us"] }],
          headers: [
            { name: "X-Api-Key", description: "Your API key", isRequired: true, isSecret: true, default: null, choices: null, value: null },
            { name: "X-Units", description: "Units", isRequired: false, isSecret: false, default: "metric", choices: ["metric", "imperial"], value: null },
          ],
        },
      ],
    });
    expect(res.text).not.toContain("demo-key-never-shown");
    expect((await raw(srv.baseUrl, "GET", "/api/connectors/io.github.acme%2Fnope", { token })).status).toBe(404);
    expect((await raw(srv.baseUrl, "GET", "/api/connectors/io.github.acme%2Fweather")).status).toBe(401);
    expect((await raw(srv.baseUrl, "GET", "/api/connectors/%E0%A4%A", { token })).status).toBe(400);
  });
});
