// Rate limits on every unauthenticated route (issue 18 item 6), per client address: each case
// comes from its own loopback address (127.0.0.x), so each counts in its own bucket.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startServer, type TestServer } from "./helpers/server.js";

const LIMIT = 5;
let srv: TestServer;

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_RATE_LIMIT: String(LIMIT), MCP_API_PUBLIC_URL: "http://127.0.0.1:9" } });
});
afterAll(async () => {
  await srv?.stop();
});

/** A GET from `localAddress` (a loopback address of its own), without any credential. */
function get(path: string, localAddress: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(path, srv.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: "GET", localAddress, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Fixed one-minute windows: start a counting test early in one, so it does not straddle two. */
async function startOfWindow() {
  const second = (Date.now() / 1000) % 60;
  if (second > 50) await new Promise((r) => setTimeout(r, (61 - second) * 1000));
}

let nextAddress = 10;
const freshAddress = () => `127.0.0.${nextAddress++}`;

describe("unauthenticated routes", () => {
  test.each([
    ["GET /api/oauth/callback", "/api/oauth/callback?state=forged&code=x", 400, "text/html"],
    ["GET /client-metadata.json", "/client-metadata.json", 200, "application/json"],
    ["GET /docs", "/docs", 200, "text/html"],
    ["GET /openapi.json", "/openapi.json", 200, "application/json"],
    ["GET /openapi.yaml", "/openapi.yaml", 200, "application/yaml"],
    ["a path of no operation", "/api/no-such-thing", 404, "application/problem+json"],
  ])("when one address sends %s past MCP_API_RATE_LIMIT, then 429 with Retry-After, and another address is still served", async (_label, path, status, type) => {
    await startOfWindow();
    const address = freshAddress();
    for (let i = 0; i < LIMIT; i++) {
      const res = await get(path, address);
      expect(res.status).toBe(status);
      expect(res.headers["content-type"]).toContain(type);
    }
    const limited = await get(path, address);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    // The callback is opened by a browser: its 429 is a page, like its other failures.
    expect(limited.headers["content-type"]).toContain(path.startsWith("/api/oauth/callback") ? "text/html" : "application/problem+json");
    expect((await get(path, freshAddress())).status).toBe(status);
  });

  test.each(["/healthz", "/readyz"])("when one address polls %s well past the limit, then every answer is 200", async (path) => {
    const address = freshAddress();
    for (let i = 0; i < LIMIT * 3; i++) expect((await get(path, address)).status).toBe(200);
  });

  test("when the OAuth callback is limited, then nothing about the state is looked up or written", async () => {
    await startOfWindow();
    const address = freshAddress();
    for (let i = 0; i < LIMIT; i++) await get("/client-metadata.json", address);
    const before = await srv.services.db.knex("oauth_states").count({ n: "*" }).first();
    const limited = await get("/api/oauth/callback?state=forged&code=x", address);
    expect(limited.status).toBe(429);
    expect(limited.body).toContain("Too many requests");
    expect(await srv.services.db.knex("oauth_states").count({ n: "*" }).first()).toEqual(before);
  });
});
