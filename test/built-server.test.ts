// The bundled build (dist/server/main.js and its *.chunk.js, scripts/bundle-server.ts) through
// real requests: every part it loads lazily is loaded here, so an interop break in the bundle
// (a chunk's import() of a package answering something else than under tsx, as undici's did:
// "Agent is not a constructor") fails this file, which the tests on the sources cannot see.
// One server start: metrics on a listener of their own and tracing to a loopback collector,
// a real SDK MCP server and a real OAuth authorization server on loopback.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureBuilt } from "./helpers/dist-build.js";
import { startV2Peer, type GatewayPeer } from "./helpers/gateway-peers.js";
import { json, startHostilePeer, type HostilePeer } from "./helpers/hostile-peer.js";
import { closer, listen } from "./helpers/mcp-peers.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { dropStore, provisionStore, raw } from "./helpers/server.js";

const root = join(import.meta.dirname, "..");
const run = promisify(execFile);
const WS = "ws_built";
let dataDir: string;
let databaseUrl: string;
let child: ChildProcess;
let out = "";
let baseUrl: string;
let metricsUrl: string;
let admin: string;
let agent: string;
let upstream: GatewayPeer;
let oauth: OAuthPeer;
let collector: Server;
let jwtAs: HostilePeer;
const exported: { path: string; body: string }[] = [];

beforeAll(async () => {
  await ensureBuilt();
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-built-"));
  databaseUrl = await provisionStore(dataDir); // a fresh SQLite file, or a fresh PostgreSQL database (TEST_STORE=postgres)
  collector = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    exported.push({ path: req.url ?? "", body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  const collectorPort = await listen(collector);
  upstream = await startV2Peer();
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    MCP_API_ALLOW_PRIVATE_NETWORK: "true",
    MCP_API_METRICS_PORT: "0",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    LOG_LEVEL: "warn",
    CHUNK_LOG: join(dataDir, "chunks.log"),
  };
  const token = async (scope: string) => (await run(process.execPath, ["dist/scripts/token.js", "create", "--user", "usr_built", "--workspace", WS, "--scope", scope], { cwd: root, env })).stdout.trim();
  [admin, agent] = [await token("admin"), await token("gateway")];
  child = spawn(process.execPath, ["--import", "./test/helpers/chunk-log.mjs", "dist/server/main.js"], { cwd: root, env: { ...env, PORT: "0", HOST: "127.0.0.1" }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (err += c));
  for (let i = 0; i < 300 && !/metrics on (http:\/\/\S+)/.test(out) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  const listening = /listening on (http:\/\/\S+)/.exec(out);
  const metrics = /metrics on (http:\/\/\S+)/.exec(out);
  if (!listening || !metrics) throw new Error(`the built server did not start: ${out} ${err}`);
  baseUrl = listening[1].replace("localhost", "127.0.0.1");
  metricsUrl = metrics[1].replace("localhost", "127.0.0.1");
  oauth = await startOAuthPeer({ redirectUri: `${baseUrl}/api/oauth/callback` });
}, 180_000);

afterAll(async () => {
  if (child?.exitCode === null) child.kill("SIGKILL");
  await upstream?.close();
  await oauth?.close();
  await jwtAs?.close();
  if (collector) await closer(collector)();
  if (child && child.exitCode === null) await new Promise((r) => child.once("exit", r));
  if (databaseUrl) await dropStore(databaseUrl);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function register(body: Record<string, unknown>): Promise<string> {
  const res = await raw(baseUrl, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify({ workspaceId: WS, ...body }) });
  expect(res.status, res.text).toBe(201);
  return res.json.id as string;
}

async function callEcho(endpoint: string, name: string, text: string) {
  const client = new Client({ name: "built-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${agent}` } } }));
  try {
    return await client.callTool({ name, arguments: { text } });
  } finally {
    await client.close();
  }
}

describe("the bundled server (dist/server/main.js)", () => {
  test("when a client-credentials record signs with private_key_jwt, then its connection test gets a token with a valid assertion and connects", async () => {
    // The SDK signs with jose, which it imports lazily: a chunk of its own in the bundle.
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const signed: boolean[] = [];
    // One loopback peer: the authorization server (it accepts only a valid assertion) and the
    // resource it protects, which relays an authorized request to the real SDK upstream.
    jwtAs = await startHostilePeer();
    jwtAs.handle(async (req, res) => {
      const origin = jwtAs.origin;
      if (req.path.startsWith("/.well-known/oauth-protected-resource")) return json(res, 200, { resource: `${origin}/mcp`, authorization_servers: [origin] });
      if (req.path.startsWith("/.well-known/")) {
        return json(res, 200, { issuer: origin, authorization_endpoint: `${origin}/authorize`, token_endpoint: `${origin}/token`, response_types_supported: ["code"], code_challenge_methods_supported: ["S256"], token_endpoint_auth_methods_supported: ["private_key_jwt"], token_endpoint_auth_signing_alg_values_supported: ["ES256"] });
      }
      if (req.path === "/token") {
        const [h, p, sig] = (new URLSearchParams(req.body).get("client_assertion") ?? "").split(".");
        const ok = !!sig && verify("sha256", Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: "ieee-p1363" }, Buffer.from(sig, "base64url"));
        signed.push(ok);
        return ok ? json(res, 200, { access_token: "issued-to-jwt-client", token_type: "Bearer", expires_in: 3600 }) : json(res, 401, { error: "invalid_client" });
      }
      if (req.headers.authorization !== "Bearer issued-to-jwt-client") return void res.writeHead(401, { "www-authenticate": `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"` }).end();
      const headers: Record<string, string> = {};
      for (const name of ["content-type", "accept", "mcp-protocol-version", "mcp-session-id"]) if (typeof req.headers[name] === "string") headers[name] = req.headers[name];
      const relayed = await fetch(upstream.url, { method: req.method, headers, body: req.method === "POST" ? req.body : undefined });
      res.writeHead(relayed.status, Object.fromEntries(relayed.headers)).end(Buffer.from(await relayed.arrayBuffer()));
    });
    const id = await register({ name: "JWT upstream", url: `${jwtAs.origin}/mcp`, authType: "oauth", oauthGrantType: "client_credentials", oauthClientId: "jwt-client", oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString() });
    const tested = await raw(baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token: admin });
    expect(tested.json.connectorStatus, tested.text).toBe("connected");
    expect(signed).toEqual([true]);
  });

  test("when an MCP server on loopback is registered, then its connection test connects and tools/call answers through the per-server and the workspace endpoints", async () => {
    const id = await register({ name: "Echo upstream", url: upstream.url });
    const tested = await raw(baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token: admin });
    expect(tested.status, tested.text).toBe(200);
    expect(tested.json.connectorStatus, tested.text).toBe("connected");

    const direct = await callEcho(`${baseUrl}/api/mcp-servers/${id}/mcp`, "echo", "through the server endpoint");
    expect(direct.content).toEqual([{ type: "text", text: "through the server endpoint" }]);
    const workspace = await callEcho(`${baseUrl}/api/workspaces/${WS}/mcp`, "echo_upstream__echo", "through the workspace endpoint");
    expect(workspace.content).toEqual([{ type: "text", text: "through the workspace endpoint" }]);
  });

  test("when an OAuth record's authorization starts, then it answers an authorizationUrl at the authorization server's endpoint", async () => {
    const id = await register({ name: "OAuth upstream", url: oauth.mcpUrl, authType: "oauth", oauthClientId: oauth.clientId, oauthClientSecret: oauth.clientSecret, oauthScopes: "mcp:tools" });
    const started = await raw(baseUrl, "POST", `/api/mcp-servers/${id}/oauth/authorize`, { token: admin });
    expect(started.status, started.text).toBe(200);
    const url = new URL(started.json.authorizationUrl);
    expect(url.origin + url.pathname).toBe(oauth.authorizationEndpoint);
    expect(url.searchParams.get("client_id")).toBe(oauth.clientId);
  });

  test("when the docs, the spec, the console and /metrics are asked for, then each answers its content", async () => {
    const docs = await raw(baseUrl, "GET", "/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toMatch(/text\/html/);
    const spec = await raw(baseUrl, "GET", "/openapi.json");
    expect(spec.status).toBe(200);
    expect(spec.json.openapi).toMatch(/^3\./);
    const consolePage = await raw(baseUrl, "GET", "/console");
    expect(consolePage.status).toBe(200);
    expect(consolePage.text).toMatch(/<html/i);
    const metrics = await fetch(metricsUrl);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^mcp_api_\w+/m);
  });

  test("when tracing is on, then spans reach the loopback OTLP collector, statements' included", async () => {
    await raw(baseUrl, "GET", `/api/mcp-servers?workspaceId=${WS}`, { token: admin });
    await expect.poll(() => exported.filter((e) => e.path === "/v1/traces").map((e) => e.body).join("\n"), { timeout: 10_000 }).toMatch(/"db\.system(\.name)?"/);
  });
});

// Source files whose chunks no request of the server loads, and why. A chunk is excused when
// every source in its map is one of these; any other chunk not loaded above is a lazily loaded
// part this file does not exercise yet, and the test below names it.
const NOT_LOADED_BY_THE_SERVER: [RegExp, string][] = [
  [/\/server\/domain\/server-json\.ts$/, "only `npm run catalog` (dist/scripts, not the bundle) imports or syncs server.json documents"],
  [/\/@opentelemetry\/resources\/.*\/machine-id\//, "the host detector's machine id; server/observability/tracing.ts uses envDetector only"],
];
const excused = (chunk: string) => {
  const sources = (JSON.parse(readFileSync(join(root, "dist", "server", `${chunk}.map`), "utf8")) as { sources: string[] }).sources;
  return sources.length > 0 && sources.every((source) => NOT_LOADED_BY_THE_SERVER.some(([path]) => path.test(source)));
};

describe("coverage of the bundle's chunks", () => {
  test("when every request above has been made, then every *.chunk.js was loaded but the few no server request loads", () => {
    const chunks = readdirSync(join(root, "dist", "server")).filter((f) => f.endsWith(".chunk.js"));
    const log = join(dataDir, "chunks.log");
    const loaded = new Set(existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).map((url) => url.slice(url.lastIndexOf("/") + 1)) : []);
    const missing = chunks.filter((f) => !loaded.has(f) && !excused(f));
    expect(missing).toEqual([]);
  });
});
