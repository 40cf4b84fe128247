// The typed methods of the client (issue 13) against the real server: data back, ProblemError
// thrown, every page iterated, creates made idempotent, 429 retried as Retry-After says.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createMcpServersClient, ProblemError, retryDelayMs } from "../client/index.js";
import { startRugPuller } from "./helpers/rug-pull-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await srv?.stop();
});

interface Sent {
  method: string;
  url: string;
  headers: Headers;
  at: number;
  status: number;
  retryAfter: string | null;
  answeredAt: number;
}

/** The real fetch, recording what went out and what came back. */
function recordingFetch() {
  const sent: Sent[] = [];
  const fetch = async (request: Request) => {
    const at = Date.now();
    const response = await globalThis.fetch(request);
    sent.push({ method: request.method, url: request.url, headers: request.headers, at, status: response.status, retryAfter: response.headers.get("retry-after"), answeredAt: Date.now() });
    return response;
  };
  return { sent, fetch };
}

async function workspace(server = srv) {
  const ws = uniqueWorkspace();
  const token = await server.token([ws]);
  const recorder = recordingFetch();
  return { ws, token, sent: recorder.sent, api: createMcpServersClient({ baseUrl: server.baseUrl, token, fetch: recorder.fetch }) };
}

describe("servers.* typed methods", () => {
  test("when a server is created, read, updated and deleted, then each returns the data", async () => {
    const { ws, api } = await workspace();
    const created = await api.servers.create({ workspaceId: ws, name: "GitHub", url: "https://mcp.example.com/mcp", authType: "api_key", apiKey: "sk_typed" });
    expect(created).toMatchObject({ workspaceId: ws, name: "GitHub", hasApiKey: true });
    expect(await api.servers.get(created.id)).toEqual(created);
    const { server, etag } = await api.servers.getWithEtag(created.id);
    expect(server.id).toBe(created.id);
    const updated = await api.servers.update(created.id, { name: "GitHub (prod)" }, { ifMatch: etag });
    expect(updated.name).toBe("GitHub (prod)");
    await expect(api.servers.delete(created.id)).resolves.toBeUndefined();
    const events = [];
    for await (const e of api.servers.events(created.id, { limit: 1 })) events.push(e.type);
    expect(events).toEqual(["deleted", "updated", "created"]);
  });

  test("when the API answers with a problem, then ProblemError carries status, type, title, detail and errors", async () => {
    const { ws, api } = await workspace();
    const error = await api.servers.create({ workspaceId: ws, name: "", url: "mcp.example.com" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({
      status: 400,
      type: "/problems/validation-error",
      title: "Your request is not valid.",
      detail: "2 fields are not valid.",
      errors: [
        { path: "/name", message: "must not be empty" },
        { path: "/url", message: "must start with http:// or https://" },
      ],
    });
    expect((error as ProblemError).message).toContain("/url must start with http:// or https://");
    const missing = await api.servers.get("mcp_01JDQ4N8ZK3V7W0XG5T2H9RBCE").catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404, type: "/problems/not-found", errors: [] });
  });

  test("when an If-Match is stale, then update throws 412 and nothing changes", async () => {
    const { ws, api } = await workspace();
    const created = await api.servers.create({ workspaceId: ws, name: "a", url: "https://mcp.example.com/mcp" });
    const { etag } = await api.servers.getWithEtag(created.id);
    await api.servers.update(created.id, { name: "b" });
    await expect(api.servers.update(created.id, { name: "c" }, { ifMatch: etag })).rejects.toMatchObject({ status: 412 });
    expect((await api.servers.get(created.id)).name).toBe("b");
  });

  test("when create is called, then it sends an Idempotency-Key of its own, and a replay with the same key creates nothing", async () => {
    const { ws, api, sent } = await workspace();
    const body = { workspaceId: ws, name: "once", url: "https://mcp.example.com/mcp" };
    const first = await api.servers.create(body);
    const key = sent[0].headers.get("idempotency-key");
    expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await api.servers.create({ ...body, name: "twice" });
    expect(sent[1].headers.get("idempotency-key")).not.toBe(key);
    expect(await api.servers.create(body, { idempotencyKey: key! })).toEqual(first);
    const ids = [];
    for await (const s of api.servers.list({ workspaceId: ws })) ids.push(s.id);
    expect(ids).toHaveLength(2);
  });

  test("when the raw calls are used, then they still return { data, error, response } and do not throw", async () => {
    const { ws, api } = await workspace();
    const { data, error, response } = await api.POST("/api/mcp-servers", { body: { workspaceId: ws, name: "", url: "https://mcp.example.com/mcp" } });
    expect(data).toBeUndefined();
    expect(response.status).toBe(400);
    expect(error).toMatchObject({ errors: [{ path: "/name", message: "must not be empty" }] });
  });
});

describe("toolsets.* typed methods", () => {
  test("when a toolset is created, listed, read, updated and deleted, then each returns the data, a stale If-Match throws 412, and events iterate every page", async () => {
    const { ws, api } = await workspace();
    const made = [];
    for (const name of ["One", "Two", "Three"]) made.push(await api.toolsets.create(ws, { name, tools: [] }));
    expect(made[0]).toMatchObject({ workspaceId: ws, name: "One", tools: [], mcpPath: `/api/toolsets/${made[0].id}/mcp` });
    const names = [];
    for await (const t of api.toolsets.list(ws, { limit: 2 })) names.push(t.name);
    expect(names).toEqual(["Three", "Two", "One"]);
    const { toolset, etag } = await api.toolsets.getWithEtag(made[0].id);
    expect(toolset).toEqual(await api.toolsets.get(made[0].id));
    expect((await api.toolsets.update(made[0].id, { name: "Uno" }, { ifMatch: etag })).name).toBe("Uno");
    await expect(api.toolsets.update(made[0].id, { name: "lost" }, { ifMatch: etag })).rejects.toMatchObject({ name: "ProblemError", status: 412 });
    await expect(api.toolsets.delete(made[0].id)).resolves.toBeUndefined();
    await expect(api.toolsets.get(made[0].id)).rejects.toMatchObject({ status: 404 });
    const events = [];
    for await (const e of api.toolsets.events(made[0].id, { limit: 1 })) events.push(e.type);
    expect(events).toEqual(["deleted", "updated", "created"]);
  });
});

describe("toolPins.* typed methods", () => {
  test("when a pinned tool changes, then list and get show it, a stale ifMatch throws 412, approve with get's ETag pins it, and delete forgets it", async () => {
    const peer = await startRugPuller([{ name: "lookup", description: "Looks a word up.", inputSchema: { type: "object" } }]);
    const local = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
    try {
      const { ws, api } = await workspace(local);
      const server = await api.servers.create({ workspaceId: ws, name: "Pinned", url: peer.url });
      await api.servers.tools(server.id); // first sight
      peer.set("lookup", { description: "Looks a word up and more." });
      await api.servers.tools(server.id);
      const pins = [];
      for await (const p of api.toolPins.list(server.id, { limit: 1 })) pins.push([p.tool, p.status, p.changedParts]);
      expect(pins).toEqual([["lookup", "changed", ["description"]]]);
      const { pin, etag } = await api.toolPins.get(server.id, "lookup");
      expect(pin).toMatchObject({ pinned: { description: "Looks a word up." }, current: { description: "Looks a word up and more." } });
      await expect(api.toolPins.approve(server.id, "lookup", { ifMatch: '"stale"' })).rejects.toMatchObject({ name: "ProblemError", status: 412 });
      const approved = await api.toolPins.approve(server.id, "lookup", { ifMatch: etag });
      expect(approved.pin).toMatchObject({ status: "pinned", pinned: { description: "Looks a word up and more." } });
      expect(approved.etag).not.toBe(etag);
      await expect(api.toolPins.delete(server.id, "lookup")).resolves.toBeUndefined();
      await expect(api.toolPins.get(server.id, "lookup")).rejects.toMatchObject({ status: 404 });
    } finally {
      await local.stop();
      await peer.close();
    }
  });
});

describe("servers.list", () => {
  test("when a workspace holds 250 servers, then the iterator walks every page and yields each once, newest first", async () => {
    const { ws, token, api, sent } = await workspace();
    const made: string[] = [];
    for (let i = 0; i < 250; i++) {
      const res = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: `s${i}`, url: "https://mcp.example.com/mcp" }) });
      made.push(res.json.id);
    }
    const seen: string[] = [];
    for await (const s of api.servers.list({ workspaceId: ws, limit: 100 })) seen.push(s.id);
    expect(seen).toEqual([...made].reverse());
    expect(sent.map((s) => new URL(s.url).searchParams.has("cursor"))).toEqual([false, true, true]);
  }, 60_000);

  test("when the caller stops early, then no further page is fetched", async () => {
    const { ws, api, sent } = await workspace();
    for (let i = 0; i < 3; i++) await api.servers.create({ workspaceId: ws, name: `s${i}`, url: "https://mcp.example.com/mcp" });
    sent.length = 0;
    for await (const _ of api.servers.list({ workspaceId: ws, limit: 1 })) break;
    expect(sent).toHaveLength(1);
  });
});

describe("retries", () => {
  test("when Retry-After is seconds or a date or absent, then the wait follows it", () => {
    expect(retryDelayMs("7", 0)).toBe(7000);
    expect(retryDelayMs(new Date(Date.UTC(2026, 0, 1, 0, 0, 30)).toUTCString(), 0, Date.UTC(2026, 0, 1))).toBe(30_000);
    expect([0, 1, 2].map((attempt) => retryDelayMs(null, attempt))).toEqual([500, 1000, 2000]);
  });

  test("when the real server answers 429, then the call waits as Retry-After says and then succeeds", async () => {
    const limited = await startServer({ env: { MCP_API_RATE_LIMIT: "2" } });
    try {
      const { ws, token, api, sent } = await workspace(limited);
      // Spend this minute's quota.
      for (let i = 0; i < 3; i++) await raw(limited.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token });
      const rawTry = await api.GET("/api/mcp-servers", { params: { query: { workspaceId: ws } } });
      expect(rawTry.response.status).toBe(429); // the raw calls do not retry
      sent.length = 0;
      const servers = [];
      for await (const s of api.servers.list({ workspaceId: ws })) servers.push(s);
      expect(servers).toEqual([]);
      expect(sent.map((s) => s.status)).toEqual([429, 200]);
      const waitedMs = sent[1].at - sent[0].answeredAt;
      expect(Number(sent[0].retryAfter)).toBeGreaterThanOrEqual(1);
      expect(waitedMs).toBeGreaterThanOrEqual(Number(sent[0].retryAfter) * 1000 - 5);
    } finally {
      await limited.stop();
    }
  }, 90_000);

  test("when the real server answers 503 while its store cannot be opened, then the call waits as Retry-After says and succeeds once it can", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mcp-client-503-"));
    const storeDir = join(dataDir, "store");
    writeFileSync(storeDir, "a file where the store's directory belongs"); // the store cannot open while it is here
    const starting = await startServer({ reuse: { dataDir, databaseUrl: `sqlite:${join(storeDir, "mcp-api.sqlite")}` }, waitForDatabase: true });
    try {
      // A token can only be minted once the store opens; each attempt carries whatever it is by then.
      let token = "";
      const recorder = recordingFetch();
      const api = createMcpServersClient({
        baseUrl: starting.baseUrl,
        token: "replaced below",
        fetch: (request) => {
          request.headers.set("authorization", `Bearer ${token}`);
          return recorder.fetch(request);
        },
      });
      const listing = api.servers.page({ workspaceId: "ws_later" });
      await vi.waitFor(() => expect(recorder.sent).toHaveLength(1));
      expect(recorder.sent[0]).toMatchObject({ status: 503, retryAfter: "2" });
      rmSync(storeDir);
      mkdirSync(storeDir);
      await vi.waitFor(async () => expect((await raw(starting.baseUrl, "GET", "/readyz")).status).toBe(200), { timeout: 10_000 });
      token = await starting.token(["ws_later"]);
      expect(await listing).toEqual({ data: [], nextCursor: null });
      const statuses = recorder.sent.map((s) => s.status);
      expect(statuses.at(-1)).toBe(200);
      expect(statuses.slice(0, -1).every((s) => s === 503)).toBe(true);
      for (let i = 1; i < recorder.sent.length; i++) expect(recorder.sent[i].at - recorder.sent[i - 1].answeredAt).toBeGreaterThanOrEqual(2000 - 5);
    } finally {
      await starting.stop({ keepData: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("when Retry-After is beyond maxDelayMs, then the 429 is thrown at once", async () => {
    const limited = await startServer({ env: { MCP_API_RATE_LIMIT: "1" } });
    try {
      const ws = uniqueWorkspace();
      const token = await limited.token([ws]);
      const api = createMcpServersClient({ baseUrl: limited.baseUrl, token, retry: { maxDelayMs: 0 } });
      for (let i = 0; i < 2; i++) await raw(limited.baseUrl, "GET", `/api/mcp-servers?workspaceId=${ws}`, { token });
      await expect(api.servers.page({ workspaceId: ws })).rejects.toMatchObject({ status: 429, type: "/problems/rate-limited" });
    } finally {
      await limited.stop();
    }
  });
});
