// A fake MCP Registry on loopback serving REST API v0.1 (`GET /v0.1/servers`): cursor pages,
// `updated_since`, the official _meta (status, isLatest, updatedAt), and ways to misbehave.
import { createServer, type ServerResponse } from "node:http";
import { closer, listen } from "./mcp-peers.js";

export interface RegistryEntry {
  server: Record<string, unknown>;
  status?: "active" | "deprecated" | "deleted";
  isLatest?: boolean;
  updatedAt: string;
}

/** ok; http500: every page fails; html: a web page; silent: never answers; page2: the second page fails. */
export type RegistryMode = "ok" | "http500" | "html" | "silent" | "page2" | "wrong-shape";

export interface FakeRegistry {
  url: string;
  /** The query of every request received. */
  queries: URLSearchParams[];
  entries: RegistryEntry[];
  mode: RegistryMode;
  close(): Promise<void>;
}

export async function startFakeRegistry(entries: RegistryEntry[], pageSize = 2): Promise<FakeRegistry> {
  const hanging = new Set<ServerResponse>();
  const registry: FakeRegistry = { url: "", queries: [], entries, mode: "ok", close: async () => undefined };
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.method !== "GET" || url.pathname !== "/v0.1/servers") return void res.writeHead(404).end();
    registry.queries.push(url.searchParams);
    const offset = Number(url.searchParams.get("cursor") ?? 0);
    if (registry.mode === "silent") return void hanging.add(res);
    if (registry.mode === "http500" || (registry.mode === "page2" && offset > 0)) {
      return void res.writeHead(500, { "content-type": "application/json" }).end('{"title":"Internal Server Error"}');
    }
    if (registry.mode === "html") return void res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><p>Welcome</p>");
    if (registry.mode === "wrong-shape") return void res.writeHead(200, { "content-type": "application/json" }).end('{"items":[]}');
    const since = url.searchParams.get("updated_since");
    const limit = Math.min(pageSize, Number(url.searchParams.get("limit") ?? pageSize));
    const matching = registry.entries.filter((e) => !since || e.updatedAt > since);
    const page = matching.slice(offset, offset + limit);
    const next = offset + limit < matching.length ? String(offset + limit) : null;
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        servers: page.map((e) => ({
          server: e.server,
          _meta: {
            "io.modelcontextprotocol.registry/official": {
              status: e.status ?? "active",
              isLatest: e.isLatest ?? true,
              publishedAt: e.updatedAt,
              updatedAt: e.updatedAt,
            },
          },
        })),
        metadata: { count: page.length, ...(next ? { nextCursor: next } : {}) },
      }),
    );
  });
  const port = await listen(http);
  registry.url = `http://127.0.0.1:${port}`;
  const close = closer(http);
  registry.close = async () => {
    for (const res of hanging) res.destroy();
    await close();
  };
  return registry;
}
