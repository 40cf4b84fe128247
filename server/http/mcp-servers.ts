// HTTP adapters for MCP server records: request in, use case, reply out. ETags and
// If-Match are HTTP's spelling of the record version the domain compares.
import type { Idempotency } from "../domain/idempotency.js";
import type { ExpectedVersion, McpServerService, Versioned } from "../domain/mcp-servers.js";
import type { Handler } from "./handler-types.js";

export function etagOf(version: number): string {
  return `"v${version}"`;
}

/** If-Match → the version it names; `*` or absent → no precondition; anything else matches nothing. */
export function parseIfMatch(header: string | string[] | undefined): ExpectedVersion {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(",") : header;
  if (value.trim() === "*") return undefined;
  for (const tag of value.split(",")) {
    const match = /^"v(\d{1,15})"$/.exec(tag.trim());
    if (match) return Number(match[1]);
  }
  return null;
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

export function mcpServerHandlers(servers: McpServerService, idempotency: Idempotency) {
  const single = (v: Versioned) => ({ body: v.server, headers: { ETag: etagOf(v.version) } });

  const createMcpServer: Handler<"createMcpServer"> = async (req) => {
    const actor = req.actor();
    const create = async () => {
      const created = await servers.create(actor, req.body);
      return { status: 201, body: created.server, location: `/api/mcp-servers/${created.server.id}`, etag: etagOf(created.version) };
    };
    const key = header(req.headers["idempotency-key"]);
    const reply = key ? await idempotency.run(actor, key, req.body, create) : { ...(await create()), replayed: false };
    const headers: Record<string, string> = { Location: reply.location!, ETag: reply.etag! };
    if (reply.replayed) headers["Idempotent-Replayed"] = "true";
    return { status: 201, body: reply.body as Versioned["server"], headers };
  };
  const listMcpServers: Handler<"listMcpServers"> = async (req) => ({
    status: 200,
    body: await servers.list(req.actor(), req.query),
  });
  const getMcpServer: Handler<"getMcpServer"> = async (req) => ({
    status: 200,
    ...single(await servers.get(req.actor(), req.params.id)),
  });
  const updateMcpServer: Handler<"updateMcpServer"> = async (req) => ({
    status: 200,
    ...single(await servers.update(req.actor(), req.params.id, req.body, parseIfMatch(req.headers["if-match"]))),
  });
  const deleteMcpServer: Handler<"deleteMcpServer"> = async (req) => {
    await servers.remove(req.actor(), req.params.id, parseIfMatch(req.headers["if-match"]));
    return { status: 204, body: undefined };
  };
  const listMcpServerEvents: Handler<"listMcpServerEvents"> = async (req) => ({
    status: 200,
    body: await servers.listEvents(req.actor(), req.params.id, req.query),
  });
  return { createMcpServer, listMcpServers, getMcpServer, updateMcpServer, deleteMcpServer, listMcpServerEvents };
}
