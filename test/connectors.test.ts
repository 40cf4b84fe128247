// Creating a server from a connector (issue 14, item 3): URL and headers rendered from the
// inputs, connectorConfig validated against them, secret inputs sealed and write-only.
import { createServer, type IncomingMessage } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closer, listen } from "./helpers/mcp-peers.js";
import { raw, startServer, storeContents, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const KEY = "wk_SECRET_connector_8e4f21";
const KEY_2 = "wk_SECRET_connector_second_3a90c";
let srv: TestServer;
let peer: { port: number; requests: { path: string; headers: IncomingMessage["headers"] }[]; close(): Promise<void> };

/** A real SDK MCP server that answers only at /t/acme/mcp and only with `X-Api-Key: <KEY>` or `<KEY_2>`. */
async function startTenantPeer() {
  const requests: { path: string; headers: IncomingMessage["headers"] }[] = [];
  const http = createServer(async (req, res) => {
    requests.push({ path: req.url ?? "", headers: req.headers });
    if (req.url !== "/t/acme/mcp") return void res.writeHead(404).end();
    if (req.headers["x-api-key"] !== KEY && req.headers["x-api-key"] !== KEY_2) return void res.writeHead(401, { "www-authenticate": "ApiKey" }).end();
    const server = new McpServer({ name: "tenant-peer", version: "2.0.0" });
    server.registerTool("forecast", { description: "Says the weather." }, async () => ({ content: [{ type: "text", text: "sunny" }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => void transport.close());
    await server.connect(transport);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    await transport.handleRequest(req, res, chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined);
  });
  const port = await listen(http);
  return { port, requests, close: closer(http) };
}

const CONNECTOR = "io.github.acme/weather-test";

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000" } });
  peer = await startTenantPeer();
  const outcome = await srv.services.connectors.importDocuments([
    {
      label: "test",
      document: {
        name: CONNECTOR,
        description: "Weather for a tenant.",
        version: "1.0.0",
        remotes: [
          {
            type: "streamable-http",
            url: `http://{host}:${peer.port}/t/{tenant}/mcp`,
            variables: {
              tenant: { description: "Your tenant", isRequired: true },
              host: { choices: ["127.0.0.1", "localhost"], default: "127.0.0.1" },
            },
            headers: [
              { name: "X-Api-Key", description: "API key", isRequired: true, isSecret: true },
              { name: "X-Region", choices: ["eu", "us"], default: "eu" },
              { name: "X-Client", value: "mcp-servers-api ({tenant})" },
            ],
          },
        ],
      },
    },
  ]);
  expect(outcome.ok).toBe(true);
});
afterAll(async () => {
  await peer?.close();
  await srv?.stop();
});

async function setup() {
  const ws = uniqueWorkspace();
  return { ws, token: await srv.token([ws]) };
}
const create = (token: string, body: Record<string, unknown>) => raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(body) });
const patch = (token: string, id: string, body: Record<string, unknown>) => raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify(body) });
const check = async (token: string, id: string) => (await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })).json;
const events = async (token: string, id: string) => (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token })).json.data as { type: string; fields: { name: string; change: string }[] }[];

describe("POST /api/mcp-servers with connectorId", () => {
  test("when url is left out, then it is rendered from the template, headers from the inputs, and /test reaches the real server with them", async () => {
    const { ws, token } = await setup();
    const res = await create(token, { workspaceId: ws, name: "weather", connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      url: `http://127.0.0.1:${peer.port}/t/acme/mcp`,
      headers: { "X-Region": "eu", "X-Client": "mcp-servers-api (acme)" },
      secretHeaderNames: ["X-Api-Key"],
      connectorId: CONNECTOR,
      connectorConfig: { tenant: "acme" },
      connectorSecretsSet: ["X-Api-Key"],
    });
    expect(res.text).not.toContain(KEY);
    const seen = peer.requests.length;
    expect(await check(token, res.json.id)).toMatchObject({ connectorStatus: "connected", serverInfo: { name: "tenant-peer" }, toolCount: 1 });
    const sent = peer.requests.slice(seen);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((r) => r.path === "/t/acme/mcp" && r.headers["x-api-key"] === KEY && r.headers["x-region"] === "eu")).toBe(true);
  });

  test.each([
    [
      "missing required inputs",
      { connectorId: CONNECTOR, connectorConfig: {} },
      [
        ["/connectorConfig/tenant", `is required by connector ${CONNECTOR}`],
        ["/connectorConfig/X-Api-Key", `is required by connector ${CONNECTOR}`],
      ],
    ],
    ["a value not among the choices", { connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY, "X-Region": "mars" } }, [["/connectorConfig/X-Region", "must be one of: eu, us"]]],
    ["an input the connector does not have", { connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY, colour: "red" } }, [["/connectorConfig/colour", "is not an input of connector"]]],
    ["an input that is not a string", { connectorId: CONNECTOR, connectorConfig: { tenant: 7, "X-Api-Key": KEY } }, [["/connectorConfig/tenant", "must be a string"]]],
  ])("when given %s, then 400 with one problem per input, naming it, and nothing is created", async (_label, body, want) => {
    const { ws, token } = await setup();
    const res = await create(token, { workspaceId: ws, name: "refused", ...body });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual(want.map(([path, message]) => expect.objectContaining({ path, message: expect.stringContaining(message) })));
    expect(res.text).not.toContain(KEY);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).json.data).toEqual([]);
  });
});

describe("POST /api/mcp-servers/{id}/mcp of a connector-backed server", () => {
  test("when an agent calls a tool through the gateway, then the rendered URL and headers, secret one included, reach the server", async () => {
    const { ws, token } = await setup();
    const id = (await create(token, { workspaceId: ws, name: "via-gateway", connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY, "X-Region": "us" } })).json.id;
    const seen = peer.requests.length;
    const client = new Client({ name: "agent", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${srv.baseUrl}/api/mcp-servers/${id}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    const result = await client.callTool({ name: "forecast", arguments: {} });
    await client.close();
    expect(result.content).toEqual([{ type: "text", text: "sunny" }]);
    const sent = peer.requests.slice(seen);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((r) => r.path === "/t/acme/mcp" && r.headers["x-api-key"] === KEY && r.headers["x-region"] === "us")).toBe(true);
    expect(sent.every((r) => !JSON.stringify(r.headers).includes(token))).toBe(true);
  });
});

describe("PATCH /api/mcp-servers/{id} of a connector-backed server", () => {
  test("when connectorConfig changes, then URL and headers are re-rendered and the secret input left out is kept", async () => {
    const { ws, token } = await setup();
    const id = (await create(token, { workspaceId: ws, name: "rerender", connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY } })).json.id;
    const changed = await patch(token, id, { connectorConfig: { tenant: "acme", "X-Region": "us" } });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ headers: { "X-Region": "us", "X-Client": "mcp-servers-api (acme)" }, connectorConfig: { tenant: "acme", "X-Region": "us" }, connectorSecretsSet: ["X-Api-Key"], connectorStatus: "" });
    const seen = peer.requests.length;
    expect((await check(token, id)).connectorStatus).toBe("connected");
    expect(peer.requests.slice(seen).every((r) => r.headers["x-region"] === "us" && r.headers["x-api-key"] === KEY)).toBe(true);

    const other = await patch(token, id, { connectorConfig: { tenant: "globex" } });
    expect(other.json).toMatchObject({ url: `http://127.0.0.1:${peer.port}/t/globex/mcp`, headers: { "X-Region": "eu", "X-Client": "mcp-servers-api (globex)" }, connectorSecretsSet: ["X-Api-Key"] });
    expect((await check(token, id)).connectorStatus).toBe("error");

    const refused = await patch(token, id, { connectorConfig: { tenant: "acme", "X-Region": "mars" } });
    expect(refused.status).toBe(400);
    expect(refused.json.errors).toEqual([expect.objectContaining({ path: "/connectorConfig/X-Region" })]);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token })).json.url).toBe(`http://127.0.0.1:${peer.port}/t/globex/mcp`);

    const replaced = await patch(token, id, { connectorConfig: { tenant: "acme", "X-Api-Key": KEY_2 } });
    expect(replaced.json.connectorSecretsSet).toEqual(["X-Api-Key"]);
    const before = peer.requests.length;
    expect((await check(token, id)).connectorStatus).toBe("connected");
    expect(peer.requests.slice(before).every((r) => r.headers["x-api-key"] === KEY_2)).toBe(true);
    const changes = (await events(token, id)).flatMap((e) => e.fields).filter((f) => f.name === "connectorSecrets");
    // Re-rendering with the stored key kept writes no secret; giving a new one replaces it.
    expect(changes).toEqual([{ name: "connectorSecrets", change: "replaced" }]);
  });

  test("when the inputs move the URL to another origin without the secret input, then it is cleared with a credentials_cleared event", async () => {
    const { ws, token } = await setup();
    const id = (await create(token, { workspaceId: ws, name: "move", connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY } })).json.id;
    const moved = await patch(token, id, { connectorConfig: { tenant: "acme", host: "localhost" } });
    expect(moved.status).toBe(200);
    expect(moved.json).toMatchObject({ url: `http://localhost:${peer.port}/t/acme/mcp`, connectorSecretsSet: [], secretHeaderNames: [] });
    const cleared = (await events(token, id)).find((e) => e.type === "credentials_cleared");
    expect(cleared?.fields).toEqual(expect.arrayContaining([{ name: "connectorSecrets", change: "cleared" }, { name: "secretHeaders", change: "cleared" }]));
    const back = await patch(token, id, { connectorConfig: { tenant: "acme", host: "127.0.0.1", "X-Api-Key": KEY } });
    expect(back.json).toMatchObject({ connectorSecretsSet: ["X-Api-Key"], secretHeaderNames: ["X-Api-Key"] });
    expect((await check(token, id)).connectorStatus).toBe("connected");
  });

  test("when connectorId is cleared, then the secret inputs go and the record keeps its URL and headers", async () => {
    const { ws, token } = await setup();
    const id = (await create(token, { workspaceId: ws, name: "unlink", connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY } })).json.id;
    const res = await patch(token, id, { connectorId: null, connectorConfig: null });
    expect(res.json).toMatchObject({ connectorId: null, connectorConfig: null, connectorSecretsSet: [], secretHeaderNames: ["X-Api-Key"], url: `http://127.0.0.1:${peer.port}/t/acme/mcp` });
    expect((await check(token, id)).connectorStatus).toBe("connected");
    // A connectorId the catalog does not hold is stored as given (issue 19), nothing rendered.
    const unknown = await patch(token, id, { connectorId: "io.github.acme/nope", connectorConfig: { team: "x" } });
    expect(unknown.status).toBe(200);
    expect(unknown.json).toMatchObject({ connectorId: "io.github.acme/nope", connectorConfig: { team: "x" }, connectorSource: null, connectorSecretsSet: [], url: `http://127.0.0.1:${peer.port}/t/acme/mcp` });
  });

  test("when secret inputs are stored, then no response, log line, event or stored byte holds their values", async () => {
    const { ws, token } = await setup();
    const texts: string[] = [];
    const created = await create(token, { workspaceId: ws, name: "leak", connectorId: CONNECTOR, connectorConfig: { tenant: "acme", "X-Api-Key": KEY } });
    texts.push(created.text);
    const id = created.json.id;
    for (const [method, path, body] of [
      ["GET", `/api/mcp-servers/${id}`, undefined],
      ["GET", `/api/mcp-servers?workspaceId=${ws}`, undefined],
      ["PATCH", `/api/mcp-servers/${id}`, JSON.stringify({ connectorConfig: { tenant: "acme", "X-Api-Key": KEY_2 } })],
      ["PATCH", `/api/mcp-servers/${id}`, JSON.stringify({ connectorConfig: { tenant: "acme", "X-Api-Key": KEY, "X-Region": "mars" } })],
      ["POST", `/api/mcp-servers/${id}/test`, undefined],
      ["GET", `/api/mcp-servers/${id}/tools`, undefined],
      ["GET", `/api/mcp-servers/${id}/events`, undefined],
      ["GET", `/api/connectors/${encodeURIComponent(CONNECTOR)}`, undefined],
    ] as const) {
      const res = await raw(srv.baseUrl, method, path, { token, body });
      texts.push(res.text, JSON.stringify([...res.headers]));
    }
    for (const value of [KEY, KEY_2]) {
      for (const text of texts) expect(text).not.toContain(value);
      expect(srv.logs.join("\n")).not.toContain(value);
      expect(await storeContents(srv)).not.toContain(value);
    }
  });
});

// Issue 19: the seed allows any connectorId; one the catalog does not hold is stored as given.
describe("POST /api/mcp-servers with a connectorId the catalog may not hold", () => {
  let fresh: TestServer;
  beforeAll(async () => {
    fresh = await startServer();
  });
  afterAll(async () => {
    await fresh?.stop();
  });
  const SEED_KEY = "ghp_SECRET_seed_example_51c0";
  /** The seed's example body, verbatim except for values. */
  const seedBody = (ws: string, connectorId: string, connectorConfig: Record<string, unknown>) => ({
    workspaceId: ws,
    name: "GitHub",
    url: "https://api.github.example/mcp",
    authType: "api_key",
    apiKey: SEED_KEY,
    connectorId,
    connectorConfig,
  });
  /** A catalog entry named `name` with one required input, `org`, rendered into the URL and a header. */
  const githubEntry = (name: string) => ({
    name,
    description: "GitHub for one organisation.",
    version: "1.0.0",
    remotes: [{ type: "streamable-http", url: "https://{org}.github.example/mcp", variables: { org: { isRequired: true } }, headers: [{ name: "X-Org", value: "{org}" }] }],
  });

  test.each([
    {
      label: "on an empty catalog, the seed's example body is stored as given",
      catalog: null,
      connectorId: "github",
      config: { org: "acme" },
      status: 201,
      want: { url: "https://api.github.example/mcp", connectorId: "github", connectorConfig: { org: "acme" }, connectorSource: null, headers: {}, connectorSecretsSet: [] },
    },
    {
      label: "with a catalog entry of that id, it is validated and rendered",
      catalog: "io.github.acme/github-rendered",
      connectorId: "io.github.acme/github-rendered",
      config: { org: "acme" },
      status: 201,
      want: { url: "https://api.github.example/mcp", connectorConfig: { org: "acme" }, connectorSource: "catalog", headers: { "X-Org": "acme" } },
    },
    {
      label: "with a catalog entry of that id, a missing required input is still a 400 naming it",
      catalog: "io.github.acme/github-missing",
      connectorId: "io.github.acme/github-missing",
      config: {},
      status: 400,
      errors: [{ path: "/connectorConfig/org", message: "is required by connector io.github.acme/github-missing" }],
    },
  ])("when $label, then $status", async ({ catalog, connectorId, config, status, want, errors }) => {
    if (catalog === null) expect((await raw(fresh.baseUrl, "GET", "/api/connectors", { token: await fresh.token(["any"]) })).json.data).toEqual([]);
    else expect((await fresh.services.connectors.importDocuments([{ label: "t", document: githubEntry(catalog) }])).ok).toBe(true);
    const ws = uniqueWorkspace();
    const token = await fresh.token([ws]);
    const res = await raw(fresh.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(seedBody(ws, connectorId, config)) });
    expect(res.status).toBe(status);
    expect(res.text).not.toContain(SEED_KEY);
    if (status !== 201) {
      expect(res.json.errors).toEqual(errors);
      expect((await raw(fresh.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).json.data).toEqual([]);
      return;
    }
    expect(res.json).toMatchObject({ ...want, connectorId, hasApiKey: true });
    expect((await raw(fresh.baseUrl, "GET", `/api/mcp-servers/${res.json.id}`, { token })).json).toMatchObject({ ...want, connectorId });
  });

  test("when a catalog entry for a stored id arrives later, then the record is unchanged until a PATCH touches connectorConfig, which renders it", async () => {
    const ws = uniqueWorkspace();
    const token = await fresh.token([ws]);
    const id = "io.github.acme/github-later";
    const created = await raw(fresh.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(seedBody(ws, id, { org: "acme" })) });
    expect(created.status).toBe(201);
    expect((await fresh.services.connectors.importDocuments([{ label: "t", document: githubEntry(id) }])).ok).toBe(true);
    const read = await raw(fresh.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token });
    expect(read.json).toEqual(created.json);

    const renamed = await raw(fresh.baseUrl, "PATCH", `/api/mcp-servers/${created.json.id}`, { token, body: JSON.stringify({ name: "GitHub (acme)" }) });
    expect(renamed.json).toMatchObject({ connectorSource: null, headers: {}, connectorConfig: { org: "acme" } });

    const touched = await raw(fresh.baseUrl, "PATCH", `/api/mcp-servers/${created.json.id}`, { token, body: JSON.stringify({ connectorConfig: { org: "globex" } }) });
    expect(touched.status).toBe(200);
    expect(touched.json).toMatchObject({ connectorSource: "catalog", headers: { "X-Org": "globex" }, connectorConfig: { org: "globex" } });
    // The seed body gave url explicitly, and a PATCH without url renders it from the template.
    expect(touched.json.url).toBe("https://globex.github.example/mcp");

    const refused = await raw(fresh.baseUrl, "PATCH", `/api/mcp-servers/${created.json.id}`, { token, body: JSON.stringify({ connectorConfig: { colour: "red" } }) });
    expect(refused.status).toBe(400);
  });
});
