// The bench's baseline: the same reads and writes as the API (same table, same keyset
// query, same JSON shapes) on bare node:http + prepared statements, with no validation, no
// auth and no Express. What this machine can do at best, one per store: better-sqlite3 on
// an SQLite file, or `pg` with named prepared statements (parsed and planned once per
// connection, as the product's are) on PostgreSQL; the same statements on both.
// With BASELINE_RELAY_UPSTREAM=<url>, POST /relay/mcp is the gateway's baseline: the body
// forwarded as is to that upstream over a kept-alive connection and its answer piped back,
// with no auth, validation, policy or audit.
//   DATABASE_URL=sqlite:<path>|postgres://… PORT=… HOST=127.0.0.1 BASELINE_WORKSPACES=ws_a,ws_b node --import tsx bench/baseline-server.ts
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import Database from "better-sqlite3";
import pg from "pg";
import { monotonicFactory } from "ulid";

interface Row {
  id: string;
  workspace_id: string;
  name: string;
  url: string;
  auth_type: string;
  api_key_enc: string | null;
  oauth_client_id: string | null;
  oauth_client_secret_enc: string | null;
  oauth_client_private_key_enc: string | null;
  oauth_client_auth_method: string | null;
  oauth_token_endpoint: string | null;
  oauth_authorization_endpoint: string | null;
  oauth_scopes: string | null;
  oauth_expires_at: string | null;
  oauth_grant_type: string | null;
  oauth_client_registration: string | null;
  headers: string;
  secret_header_names: string;
  connector_secret_names: string;
  connector_source: string | null;
  enabled: number | boolean;
  allowed_tools: string | null;
  connection_scope: string;
  tool_pinning: number | boolean;
  connector_id: string | null;
  connector_config: string | null;
  connector_status: string;
  last_checked_at: string | null;
  last_error: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  version: number;
}

/** The values of a create (INSERT) and of a patch (UPDATE), named as the columns they fill. */
interface Insert {
  id: string;
  workspace_id: string;
  name: string;
  name_key: string;
  url: string;
  auth_type: string;
  headers: string;
  connector_id: string | null;
  connector_config: string | null;
  created_by: string;
  at: string;
}
interface Update {
  id: string;
  workspace_id: string;
  version: number;
  name: string;
  name_key: string;
  url: string;
  headers: string;
  connector_id: string | null;
  connector_config: string | null;
  at: string;
}

/** The four statements of the baseline; SQLite answers synchronously, PostgreSQL with a promise. */
interface Store {
  find(id: string): Row | undefined | Promise<Row | undefined>;
  list(workspaceId: string, after: string | null, limit: number): Row[] | Promise<Row[]>;
  /** False when a unique index refused the row. */
  insert(v: Insert): boolean | Promise<boolean>;
  update(v: Update): void | Promise<void>;
  close(): void | Promise<void>;
}

const url = process.env.DATABASE_URL ?? "";
// The caller's workspaces, as a token would give them: get and patch are scoped by them.
const workspaces = (process.env.BASELINE_WORKSPACES ?? "").split(",").filter(Boolean);
if (workspaces.length === 0) throw new Error("BASELINE_WORKSPACES is required");

const INSERT_COLUMNS = "id, workspace_id, name, name_key, url, auth_type, headers, connector_id, connector_config, connector_status, created_by, created_at, updated_at, version";
const UPDATE_SET = "name = {name}, name_key = {name_key}, url = {url}, headers = {headers}, connector_id = {connector_id}, connector_config = {connector_config}, updated_at = {at}, version = version + 1";

function sqliteStore(path: string): Store {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  const inList = workspaces.map(() => "?").join(", ");
  const findOne = db.prepare<unknown[], Row>(`SELECT * FROM mcp_servers WHERE id = ? AND workspace_id IN (${inList}) LIMIT 1`);
  const listFirst = db.prepare<unknown[], Row>("SELECT * FROM mcp_servers WHERE workspace_id = ? ORDER BY id DESC LIMIT ?");
  const listAfter = db.prepare<unknown[], Row>("SELECT * FROM mcp_servers WHERE workspace_id = ? AND id < ? ORDER BY id DESC LIMIT ?");
  const insert = db.prepare(
    `INSERT INTO mcp_servers (${INSERT_COLUMNS})
     VALUES (@id, @workspace_id, @name, @name_key, @url, @auth_type, @headers, @connector_id, @connector_config, '', @created_by, @at, @at, 1)`,
  );
  const update = db.prepare(`UPDATE mcp_servers SET ${UPDATE_SET.replace(/\{(\w+)\}/g, "@$1")} WHERE id = @id AND workspace_id = @workspace_id AND version = @version`);
  return {
    find: (id) => findOne.get(id, ...workspaces),
    list: (workspaceId, after, limit) => (after ? listAfter.all(workspaceId, after, limit) : listFirst.all(workspaceId, limit)),
    insert: (v) => {
      try {
        insert.run(v);
        return true;
      } catch (err) {
        if (String((err as { code?: string }).code).startsWith("SQLITE_CONSTRAINT")) return false;
        throw err;
      }
    },
    update: (v) => void update.run(v),
    close: () => void db.close(),
  };
}

function postgresStore(connectionString: string): Store {
  // As many connections as the product's pool (DATABASE_POOL_MAX's default).
  const pool = new pg.Pool({ connectionString, max: 10 });
  const inList = workspaces.map((_, i) => `$${i + 2}`).join(", ");
  const run = async (name: string, text: string, values: unknown[]) => (await pool.query<Row>({ name, text, values })).rows;
  const FIND = `SELECT * FROM mcp_servers WHERE id = $1 AND workspace_id IN (${inList}) LIMIT 1`;
  const LIST_FIRST = "SELECT * FROM mcp_servers WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2";
  const LIST_AFTER = "SELECT * FROM mcp_servers WHERE workspace_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
  const INSERT = `INSERT INTO mcp_servers (${INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10, $11, $11, 1)`;
  const setNames = [...UPDATE_SET.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as keyof Update);
  let n = 0;
  const UPDATE = `UPDATE mcp_servers SET ${UPDATE_SET.replace(/\{(\w+)\}/g, () => `$${++n}`)} WHERE id = $${n + 1} AND workspace_id = $${n + 2} AND version = $${n + 3}`;
  return {
    find: async (id) => (await run("find", FIND, [id, ...workspaces]))[0],
    list: (workspaceId, after, limit) => (after ? run("list-after", LIST_AFTER, [workspaceId, after, limit]) : run("list-first", LIST_FIRST, [workspaceId, limit])),
    insert: async (v) => {
      try {
        await run("insert", INSERT, [v.id, v.workspace_id, v.name, v.name_key, v.url, v.auth_type, v.headers, v.connector_id, v.connector_config, v.created_by, v.at]);
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === "23505") return false;
        throw err;
      }
    },
    update: async (v) => void (await run("update", UPDATE, [...setNames.map((k) => v[k]), v.id, v.workspace_id, v.version])),
    close: () => pool.end(),
  };
}

const store: Store = url.startsWith("sqlite:")
  ? sqliteStore(url.slice("sqlite:".length))
  : url.startsWith("postgres://") || url.startsWith("postgresql://")
    ? postgresStore(url)
    : (() => {
        throw new Error("DATABASE_URL must be sqlite:<path> or postgres://…");
      })();
const newId = monotonicFactory();

function toWire(row: Row) {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    url: row.url,
    authType: row.auth_type,
    hasApiKey: row.api_key_enc !== null,
    hasOauthClientSecret: row.oauth_client_secret_enc !== null,
    hasOauthClientPrivateKey: row.oauth_client_private_key_enc !== null,
    oauthClientAuthMethod: row.oauth_client_auth_method,
    oauthClientId: row.oauth_client_id,
    oauthTokenEndpoint: row.oauth_token_endpoint,
    oauthAuthorizationEndpoint: row.oauth_authorization_endpoint,
    oauthScopes: row.oauth_scopes,
    oauthGrantType: row.oauth_grant_type,
    oauthClientRegistration: row.oauth_client_registration,
    oauthExpiresAt: row.oauth_expires_at,
    headers: JSON.parse(row.headers),
    secretHeaderNames: JSON.parse(row.secret_header_names),
    connectorId: row.connector_id,
    connectorConfig: row.connector_config === null ? null : JSON.parse(row.connector_config),
    connectorSecretsSet: JSON.parse(row.connector_secret_names),
    connectorSource: row.connector_source === "catalog" ? "catalog" : null,
    connectorStatus: row.connector_status,
    lastCheckedAt: row.last_checked_at,
    lastError: row.last_error === null ? null : JSON.parse(row.last_error),
    enabled: Boolean(row.enabled),
    allowedTools: row.allowed_tools === null ? null : JSON.parse(row.allowed_tools),
    connectionScope: row.connection_scope,
    toolPinning: Boolean(row.tool_pinning),
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...extra });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 1024 * 1024) reject(new Error("too large"));
      else chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
  });
}

const relayTarget = process.env.BASELINE_RELAY_UPSTREAM ? new URL(process.env.BASELINE_RELAY_UPSTREAM) : null;
const relayAgent = new Agent({ keepAlive: true });
const RELAYED_HEADERS = ["accept", "content-type", "mcp-protocol-version", "mcp-session-id"];

async function relay(req: IncomingMessage, res: ServerResponse, target: URL) {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const headers: Record<string, string> = { "content-length": String(body.length) };
  for (const name of RELAYED_HEADERS) if (typeof req.headers[name] === "string") headers[name] = req.headers[name];
  const up = request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent: relayAgent, headers }, (answer) => {
    const back: Record<string, string> = {};
    for (const name of ["content-type", "mcp-session-id"]) if (typeof answer.headers[name] === "string") back[name] = answer.headers[name];
    res.writeHead(answer.statusCode ?? 502, back);
    answer.pipe(res);
  });
  up.on("error", () => (res.headersSent ? res.destroy() : send(res, 502, { status: 502 })));
  up.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const u = new URL(req.url ?? "/", "http://127.0.0.1");
  const path = u.pathname;
  if (req.method === "GET" && path === "/healthz") return send(res, 200, { status: "ok" });
  if (req.method === "POST" && path === "/relay/mcp" && relayTarget) return relay(req, res, relayTarget);

  if (path === "/api/mcp-servers") {
    if (req.method === "GET") {
      const workspaceId = u.searchParams.get("workspaceId") ?? "";
      const limit = Number(u.searchParams.get("limit") ?? 20);
      const cursor = u.searchParams.get("cursor");
      const after = cursor ? (JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { a: string }).a : null;
      const rows = await store.list(workspaceId, after, limit + 1);
      const data = rows.slice(0, limit).map(toWire);
      const nextCursor =
        rows.length > limit ? Buffer.from(JSON.stringify({ s: `mcp-servers:${workspaceId}`, a: data[data.length - 1].id })).toString("base64url") : null;
      return send(res, 200, { data, nextCursor });
    }
    if (req.method === "POST") {
      const body = await readBody(req);
      const id = `mcp_${newId()}`;
      const inserted = await store.insert({
        id,
        workspace_id: body.workspaceId,
        name: body.name,
        name_key: String(body.name).toLowerCase(),
        url: body.url,
        auth_type: body.authType ?? "none",
        headers: JSON.stringify(body.headers ?? {}),
        connector_id: body.connectorId ?? null,
        connector_config: body.connectorConfig == null ? null : JSON.stringify(body.connectorConfig),
        created_by: "usr_bench",
        at: new Date().toISOString(),
      });
      if (!inserted) return send(res, 409, { status: 409 });
      const row = (await store.find(id))!;
      return send(res, 201, toWire(row), { location: `/api/mcp-servers/${id}` });
    }
  }

  const match = /^\/api\/mcp-servers\/(mcp_[0-9A-Za-z]+)$/.exec(path);
  if (match) {
    const id = match[1];
    if (req.method === "GET") {
      const row = await store.find(id);
      return row ? send(res, 200, toWire(row)) : send(res, 404, { status: 404 });
    }
    if (req.method === "PATCH") {
      const patch = await readBody(req);
      const cur = await store.find(id);
      if (!cur) return send(res, 404, { status: 404 });
      const name = patch.name ?? cur.name;
      await store.update({
        id,
        workspace_id: cur.workspace_id,
        version: cur.version,
        name,
        name_key: String(name).toLowerCase(),
        url: patch.url ?? cur.url,
        headers: patch.headers !== undefined ? JSON.stringify(patch.headers ?? {}) : cur.headers,
        connector_id: patch.connectorId !== undefined ? patch.connectorId : cur.connector_id,
        connector_config: patch.connectorConfig !== undefined ? (patch.connectorConfig === null ? null : JSON.stringify(patch.connectorConfig)) : cur.connector_config,
        at: new Date().toISOString(),
      });
      return send(res, 200, toWire((await store.find(id))!));
    }
  }
  send(res, 404, { status: 404 });
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) send(res, 400, { status: 400 });
    else res.destroy();
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1");

const stop = () => server.close(() => void Promise.resolve(store.close()).finally(() => process.exit(0)));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
