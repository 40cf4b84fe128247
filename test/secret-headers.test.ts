// secretHeaders (issue 14, item 4): write-only header values, sealed to url's origin, sent only
// to their server by /test and /tools, and never in a response, a log line or the audit trail.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startStreamablePeer, type Peer } from "./helpers/mcp-peers.js";
import { raw, startServer, storeContents, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const SECRET = "hdr_SECRET_value_5c1e77";
const OTHER = "hdr_SECRET_other_9b2d41";
let srv: TestServer;
const peers: Peer[] = [];

beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_CONNECT_TIMEOUT_MS: "3000" } });
});
afterAll(async () => {
  await Promise.all(peers.map((p) => p.close()));
  await srv?.stop();
});

async function peer(header: [string, string]) {
  const p = await startStreamablePeer({ header });
  peers.push(p);
  return p;
}

async function setup() {
  const ws = uniqueWorkspace();
  const token = await srv.token([ws]);
  return { ws, token };
}

async function create(token: string, body: Record<string, unknown>) {
  return raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify(body) });
}

const events = async (token: string, id: string) => (await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/events`, { token })).json.data as { type: string; fields: { name: string; change: string }[] }[];

describe("secretHeaders on POST and PATCH /api/mcp-servers", () => {
  test("when a server is created with a secret header, then the response lists its name only and /test sends it upstream", async () => {
    const p = await peer(["X-Api-Key", SECRET]);
    const { ws, token } = await setup();
    const created = await create(token, { workspaceId: ws, name: "secret-hdr", url: p.url, secretHeaders: { "X-Api-Key": SECRET } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ secretHeaderNames: ["X-Api-Key"], headers: {} });
    expect(created.text).not.toContain(SECRET);
    const id = created.json.id;

    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    expect(check.json).toMatchObject({ connectorStatus: "connected", error: null });
    expect(p.requests.some((h) => h["x-api-key"] === SECRET)).toBe(true);
    const tools = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/tools`, { token });
    expect(tools.status).toBe(200);
    expect(p.requests.filter((h) => h["x-api-key"] === SECRET).length).toBeGreaterThan(1);
  });

  test("when a secret header is patched, then a value replaces, null removes, one left out is kept", async () => {
    const p = await peer(["X-B", OTHER]);
    const { ws, token } = await setup();
    const id = (await create(token, { workspaceId: ws, name: "merge", url: p.url, secretHeaders: { "X-A": SECRET, "X-B": "old" } })).json.id;
    const patched = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify({ secretHeaders: { "X-A": null, "x-b": OTHER } }) });
    expect(patched.status).toBe(200);
    expect(patched.json.secretHeaderNames).toEqual(["x-b"]);
    expect(patched.json.connectorStatus).toBe("");
    const check = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token });
    expect(check.json.connectorStatus).toBe("connected");
    expect(p.requests.some((h) => h["x-a"] !== undefined)).toBe(false);

    const renamed = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify({ name: "merge-2" }) });
    expect(renamed.json.secretHeaderNames).toEqual(["x-b"]);
    const cleared = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify({ secretHeaders: null }) });
    expect(cleared.json.secretHeaderNames).toEqual([]);
    expect((await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/test`, { token })).json.connectorStatus).toBe("error");
    const changes = (await events(token, id)).flatMap((e) => e.fields).filter((f) => f.name === "secretHeaders");
    expect(changes.map((f) => f.change)).toEqual(["cleared", "replaced", "set"]);
  });

  test.each([
    ["a hop-by-hop header", { Connection: "close" }, "/secretHeaders/Connection", "cannot be set"],
    ["a framing header", { "Content-Length": "1" }, "/secretHeaders/Content-Length", "cannot be set"],
    ["the protocol's session header", { "Mcp-Session-Id": "x" }, "/secretHeaders/Mcp-Session-Id", "cannot be set"],
    ["Authorization beside an API key", { Authorization: "Bearer x" }, "/secretHeaders/Authorization", "authType is api_key"],
    ["a name also in headers", { "X-Team": "x" }, "/secretHeaders/X-Team", "also in headers"],
  ])("when secretHeaders holds %s, then 400 naming it and nothing is created", async (_label, secretHeaders, path, message) => {
    const { ws, token } = await setup();
    const res = await create(token, {
      workspaceId: ws,
      name: "refused",
      url: "https://mcp.example.com/mcp",
      authType: "api_key",
      apiKey: "sk_x_123456",
      headers: { "X-Team": "a" },
      secretHeaders,
    });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([expect.objectContaining({ path, message: expect.stringContaining(message) })]);
    expect((await raw(srv.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token })).json.data).toEqual([]);
  });

  test("when a patch would add a reserved secret header, then 400 and the record is unchanged", async () => {
    const { ws, token } = await setup();
    const created = await create(token, { workspaceId: ws, name: "keep", url: "https://mcp.example.com/mcp", secretHeaders: { "X-A": SECRET } });
    const res = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${created.json.id}`, { token, body: JSON.stringify({ secretHeaders: { Host: "evil" } }) });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([expect.objectContaining({ path: "/secretHeaders/Host" })]);
    const after = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${created.json.id}`, { token });
    expect(after.json).toEqual(created.json);
  });

  test("when url moves to another origin without the secret headers, then they are cleared with a credentials_cleared event; a new path keeps them", async () => {
    const { ws, token } = await setup();
    const id = (await create(token, { workspaceId: ws, name: "move", url: "https://a.example.com/mcp", secretHeaders: { "X-A": SECRET } })).json.id;
    const samePath = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify({ url: "https://a.example.com/v2/mcp" }) });
    expect(samePath.json.secretHeaderNames).toEqual(["X-A"]);
    const moved = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, { token, body: JSON.stringify({ url: "https://b.example.com/mcp" }) });
    expect(moved.json.secretHeaderNames).toEqual([]);
    const cleared = (await events(token, id)).find((e) => e.type === "credentials_cleared");
    expect(cleared?.fields).toContainEqual({ name: "secretHeaders", change: "cleared" });

    const regiven = await raw(srv.baseUrl, "PATCH", `/api/mcp-servers/${id}`, {
      token,
      body: JSON.stringify({ url: "https://c.example.com/mcp", secretHeaders: { "X-C": OTHER } }),
    });
    expect(regiven.json.secretHeaderNames).toEqual(["X-C"]);
  });

  test("when secret headers are stored, then no response, log line, event or stored byte holds their values", async () => {
    const p = await peer(["X-Api-Key", SECRET]);
    const { ws, token } = await setup();
    const bodies: string[] = [];
    const created = await create(token, { workspaceId: ws, name: "leak", url: p.url, secretHeaders: { "X-Api-Key": SECRET, "X-Other": OTHER } });
    bodies.push(created.text);
    const id = created.json.id;
    for (const [method, path, body] of [
      ["GET", `/api/mcp-servers/${id}`, undefined],
      ["GET", `/api/mcp-servers?workspaceId=${ws}`, undefined],
      ["PATCH", `/api/mcp-servers/${id}`, JSON.stringify({ secretHeaders: { "X-Other": `${OTHER}-2` } })],
      ["POST", `/api/mcp-servers/${id}/test`, undefined],
      ["GET", `/api/mcp-servers/${id}/tools`, undefined],
      ["GET", `/api/mcp-servers/${id}/events`, undefined],
      ["PATCH", `/api/mcp-servers/${id}`, JSON.stringify({ secretHeaders: { Host: SECRET } })],
    ] as const) {
      const res = await raw(srv.baseUrl, method, path, { token, body });
      bodies.push(res.text, JSON.stringify([...res.headers]));
    }
    for (const value of [SECRET, OTHER]) {
      for (const text of bodies) expect(text).not.toContain(value);
      expect(srv.logs.join("\n")).not.toContain(value);
      expect(await storeContents(srv)).not.toContain(value);
    }
  });
});
