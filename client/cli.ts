#!/usr/bin/env node
// mcp-servers: the MCP Servers API for people, on top of the typed client.
// Exit status: 0 success, 1 a request failed (problem title and detail on stderr), 2 bad usage.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { parseArgs } from "node:util";
import { createMcpServersClient, ProblemError, type components, type McpServer, type McpServerCreate, type McpServerEvent, type McpServerPatch, type McpServersClient, type Toolset, type ToolsetCreate, type ToolsetEvent } from "./index.js";
import { table, record } from "./table.js";

// Each command's own usage: printed alone when that command is misused, all together for --help.
const COMMAND_USAGE: Record<string, string> = {
  login: "login [--url URL] [--token TOKEN]     store where the API is and your token (asked for when left out)",
  logout: "logout                                forget them",
  whoami: "whoami                                the user, scope and workspaces of your token",
  ls: "ls [--workspace W] [--limit N]        list servers (every page unless --limit)",
  get: "get ID                                show one server",
  create: "create --workspace W --name NAME --url URL [fields]",
  update: "update ID [fields] [--if-match ETAG]",
  rm: "rm ID [--if-match ETAG]               delete a server",
  test: "test ID                               check the connection for real",
  tools: "tools ID                              list the server's tools",
  connect: "connect ID [--return-url URL]         print the OAuth authorization URL to open",
  events: "events ID [--limit N]                 the server's audit trail, newest first",
  pins: "pins ID [TOOL]                        pinned tool definitions; with TOOL, both definitions and the ETag",
  approve: "approve ID TOOL [--if-match ETAG]     approve a changed tool (without --if-match: what it shows is what it approves)",
  tokens: "tokens ls | tokens create --name NAME [--scope gateway|admin] [--workspace W]... [--toolset TOOLSET_ID]... [--expires-in-days N] | tokens revoke TOKEN_ID",
  toolsets:
    "toolsets ls [--workspace W] | toolsets get|events|rm TOOLSET_ID | toolsets create --name NAME [--workspace W] [--description D] --tool SERVER_ID/TOOL[=NAME]... | toolsets update TOOLSET_ID [--name NAME] [--description D] [--tool ...]... [--if-match ETAG]",
};

const FIELDS_USAGE = `Fields (create and update):
  --name NAME  --url URL  --auth-type none|api_key|oauth  --api-key KEY (- reads it from stdin)
  --enabled / --no-enabled          whether agents may use it through the gateway
  --allowed-tools a,b               the only tools agents may list and call ('' for none)
  --all-tools                       allow every tool again (allowedTools null)
  --header 'Name: value' (repeatable)   --secret-header NAME=VALUE (repeatable; NAME=- reads stdin)
  --oauth-client-id ID  --oauth-client-secret SECRET (- reads stdin)  --oauth-scopes SCOPES
  --oauth-token-endpoint URL  --oauth-authorization-endpoint URL
  --grant-type authorization_code|client_credentials ('' infers it)
  --connection-scope workspace|user   one credential for everyone, or one per person
  --tool-pinning / --no-tool-pinning  pin tool definitions and hold changed ones until approved
  --connector-id ID  --connector-config @file.json (or inline JSON; null clears it)`;

const USAGE = `Usage: mcp-servers <command> [options]

Commands:
${Object.values(COMMAND_USAGE)
  .map((u) => `  ${u}`)
  .join("\n")}

${FIELDS_USAGE}

Options:
  --json      print the API's JSON instead of a table
  --help      this text

Credentials: MCP_SERVERS_URL and MCP_SERVERS_TOKEN, else what \`mcp-servers login\` stored.`;

function commandUsage(command: string): string {
  const own = `Usage: mcp-servers ${COMMAND_USAGE[command]}`;
  return command === "create" || command === "update" ? `${own}\n${FIELDS_USAGE}` : own;
}

class UsageError extends Error {
  /** The command whose usage to print with the message, if one. */
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

const OPTIONS = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  url: { type: "string" },
  token: { type: "string" },
  workspace: { type: "string", short: "w", multiple: true },
  limit: { type: "string" },
  name: { type: "string" },
  "auth-type": { type: "string" },
  "api-key": { type: "string" },
  header: { type: "string", multiple: true },
  "oauth-client-id": { type: "string" },
  "oauth-client-secret": { type: "string" },
  "oauth-scopes": { type: "string" },
  "oauth-token-endpoint": { type: "string" },
  "oauth-authorization-endpoint": { type: "string" },
  "connector-id": { type: "string" },
  "connector-config": { type: "string" },
  enabled: { type: "boolean" },
  "allowed-tools": { type: "string" },
  "all-tools": { type: "boolean" },
  "secret-header": { type: "string", multiple: true },
  "grant-type": { type: "string" },
  "connection-scope": { type: "string" },
  "tool-pinning": { type: "boolean" },
  scope: { type: "string" },
  "expires-in-days": { type: "string" },
  "if-match": { type: "string" },
  "return-url": { type: "string" },
  tool: { type: "string", multiple: true },
  description: { type: "string" },
  toolset: { type: "string", multiple: true },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; allowNegative: true }>>["values"];

// Which options each command takes; anything else is a usage error rather than silently ignored.
const FIELD_OPTIONS = [
  "name",
  "url",
  "auth-type",
  "api-key",
  "header",
  "secret-header",
  "oauth-client-id",
  "oauth-client-secret",
  "oauth-scopes",
  "oauth-token-endpoint",
  "oauth-authorization-endpoint",
  "grant-type",
  "connection-scope",
  "connector-id",
  "connector-config",
  "enabled",
  "allowed-tools",
  "all-tools",
  "tool-pinning",
];
const COMMANDS: Record<string, { args: number | [number, number]; options: string[] }> = {
  login: { args: 0, options: ["url", "token"] },
  logout: { args: 0, options: [] },
  whoami: { args: 0, options: [] },
  ls: { args: 0, options: ["workspace", "limit"] },
  get: { args: 1, options: [] },
  create: { args: 0, options: ["workspace", ...FIELD_OPTIONS] },
  update: { args: 1, options: [...FIELD_OPTIONS, "if-match"] },
  rm: { args: 1, options: ["if-match"] },
  test: { args: 1, options: [] },
  tools: { args: 1, options: [] },
  connect: { args: 1, options: ["return-url"] },
  events: { args: 1, options: ["limit"] },
  pins: { args: [1, 2], options: ["limit"] },
  approve: { args: [2, 2], options: ["if-match"] },
  tokens: { args: [1, 2], options: ["name", "scope", "workspace", "toolset", "expires-in-days", "limit"] },
  toolsets: { args: [1, 2], options: ["name", "workspace", "description", "tool", "if-match", "limit"] },
};

function configFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = process.platform === "win32" ? (env.APPDATA ?? join(homedir(), "AppData", "Roaming")) : env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "mcp-servers", "config.json");
}

function credentials(): { url: string; token: string } {
  const env = process.env;
  let stored: { url?: string; token?: string } = {};
  try {
    stored = JSON.parse(readFileSync(configFile(), "utf8"));
  } catch {
    // not logged in
  }
  const url = env.MCP_SERVERS_URL || stored.url;
  const token = env.MCP_SERVERS_TOKEN || stored.token;
  if (!url || !token) throw new UsageError("Not logged in: set MCP_SERVERS_URL and MCP_SERVERS_TOKEN, or run `mcp-servers login`.");
  return { url, token };
}

// Line by line, so a person typing at the prompts is answered at each Enter (not at end of input).
let reader: Interface | null = null;
let stdinLines: AsyncIterator<string> | null = null;
async function stdinLine(): Promise<string> {
  reader ??= createInterface({ input: process.stdin, terminal: false });
  stdinLines ??= reader[Symbol.asyncIterator]();
  const next = await stdinLines.next();
  return next.done ? "" : next.value;
}

async function ask(question: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(question);
  return (await stdinLine()).trim();
}

async function secret(value: string | undefined): Promise<string | undefined> {
  return value === "-" ? stdinLine() : value;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`${flag} must be a whole number of 1 or more; got '${value}'.`);
  return Number(value);
}

function headers(values: string[] | undefined): Record<string, string> | undefined {
  if (!values) return undefined;
  const out: Record<string, string> = {};
  for (const h of values) {
    const i = h.indexOf(":");
    if (i <= 0) throw new UsageError(`--header takes 'Name: value'; got '${h}'.`);
    out[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  return out;
}

function secretHeaders(values: string[] | undefined): Promise<Record<string, string> | undefined> | undefined {
  if (!values) return undefined;
  return (async () => {
    const out: Record<string, string> = {};
    for (const h of values) {
      const i = h.indexOf("=");
      if (i <= 0) throw new UsageError(`--secret-header takes NAME=VALUE (or NAME=- to read the value from stdin); got '${h.slice(0, 40)}${h.length > 40 ? "…" : ""}'.`);
      const value = h.slice(i + 1);
      out[h.slice(0, i).trim()] = value === "-" ? await stdinLine() : value;
    }
    return out;
  })();
}

function connectorConfig(value: string | undefined): McpServerPatch["connectorConfig"] | undefined {
  if (value === undefined) return undefined;
  let text = value;
  if (value.startsWith("@")) {
    try {
      text = readFileSync(value.slice(1), "utf8");
    } catch (err) {
      throw new UsageError(`--connector-config: cannot read ${value.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
    }
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`--connector-config takes @file.json or a JSON object; ${value.startsWith("@") ? value.slice(1) : "the value"} is not JSON.`);
  }
}

function allowedTools(v: Values): McpServerPatch["allowedTools"] | undefined {
  if (v["all-tools"] && v["allowed-tools"] !== undefined) throw new UsageError("Give --allowed-tools or --all-tools, not both.");
  if (v["all-tools"]) return null;
  if (v["allowed-tools"] === undefined) return undefined;
  return v["allowed-tools"]
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

async function fields(v: Values): Promise<McpServerPatch> {
  const patch: McpServerPatch = {
    name: v.name,
    url: v.url,
    authType: v["auth-type"] as McpServerPatch["authType"],
    apiKey: await secret(v["api-key"]),
    headers: headers(v.header),
    oauthClientId: v["oauth-client-id"],
    oauthClientSecret: await secret(v["oauth-client-secret"]),
    oauthScopes: v["oauth-scopes"],
    oauthTokenEndpoint: v["oauth-token-endpoint"],
    oauthAuthorizationEndpoint: v["oauth-authorization-endpoint"],
    connectorId: v["connector-id"],
    connectorConfig: connectorConfig(v["connector-config"]),
    secretHeaders: await secretHeaders(v["secret-header"]),
    oauthGrantType: v["grant-type"] === undefined ? undefined : v["grant-type"] === "" ? null : (v["grant-type"] as McpServerPatch["oauthGrantType"]),
    enabled: v.enabled,
    allowedTools: allowedTools(v),
    connectionScope: v["connection-scope"] as McpServerPatch["connectionScope"],
    toolPinning: v["tool-pinning"],
  };
  for (const k of Object.keys(patch) as (keyof McpServerPatch)[]) if (patch[k] === undefined) delete patch[k];
  return patch;
}

function print(json: boolean, value: unknown, human: () => string) {
  if (json && value === undefined) return;
  process.stdout.write(json ? JSON.stringify(value, null, 2) + "\n" : human());
}

const SERVER_COLUMNS = ["id", "name", "authType", "connectorStatus", "url"] as const;

async function login(v: Values) {
  const url = (v.url ?? (await ask("API URL (e.g. http://localhost:8080): "))).replace(/\/+$/, "");
  const token = v.token ?? (await ask("Token: "));
  if (!/^https?:\/\//i.test(url)) throw new UsageError("--url must start with http:// or https://.");
  if (!token) throw new UsageError("A token is needed: pass --token or type it when asked.");
  const me = await whoami(createMcpServersClient({ baseUrl: url, token, retry: { retries: 0 } }), url);
  const file = configFile();
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o700 });
  // Written whole with mode 0600 and moved into place, so the token is never readable by others, not even briefly.
  const partial = `${file}.${process.pid}`;
  writeFileSync(partial, JSON.stringify({ url, token }, null, 2) + "\n", { mode: 0o600 });
  renameSync(partial, file);
  process.stdout.write(`Logged in to ${url} as ${me.userId} (scope ${me.scope}; ${me.workspaces.join(", ")}); saved in ${file}\n`);
}

type Me = components["schemas"]["Me"];

async function whoami(api: McpServersClient, url: string): Promise<Me> {
  const { data, error, response } = await reach(url, api.GET("/api/me"));
  if (!response.ok) throw new ProblemError(response.status, error);
  return data as Me;
}

/** The workspace a command acts in: the one given, else the token's only one. */
async function workspaceOf(v: Values, command: string, api: McpServersClient, url: string): Promise<string> {
  const given = v.workspace ?? [];
  if (given.length > 1) throw new UsageError(`${command} takes one --workspace.`);
  if (given.length === 1) return given[0];
  const me = await whoami(api, url);
  if (me.workspaces.length === 1) return me.workspaces[0];
  throw new UsageError(`${command} needs --workspace W (your token covers ${me.workspaces.join(", ") || "no workspace"}).`);
}

/** A request that could not reach the server names the URL it tried. */
async function reach<T>(url: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new Unreachable(url, err);
  }
}

class Unreachable extends Error {
  constructor(url: string, err: unknown) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    super(`Could not reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
}

const TOKEN_COLUMNS = ["id", "name", "scope", "workspaces", "toolsets", "createdAt", "expiresAt"] as const;

async function tokens([sub, tokenId]: string[], v: Values, api: McpServersClient, json: boolean, limit: number | undefined) {
  const call = async <T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> => {
    const { data, error, response } = await p;
    if (!response.ok) throw new ProblemError(response.status, error);
    return data as T;
  };
  const only = (allowed: string[]) => {
    const stray = Object.keys(v).filter((k) => k !== "json" && !allowed.includes(k));
    if (stray.length > 0) throw new UsageError(`tokens ${sub} does not take --${stray[0]}.`, "tokens");
  };
  if (sub === "ls" && tokenId === undefined) {
    only(["limit"]);
    const page = await call(api.GET("/api/tokens", { params: { query: { limit: limit ?? 100 } } }));
    const rows = page.data.map((t) => ({ ...t, workspaces: t.workspaces.join(","), toolsets: t.toolsets ? t.toolsets.join(",") : "" }));
    return print(json, page, () => table(rows, TOKEN_COLUMNS));
  }
  if (sub === "create" && tokenId === undefined) {
    only(["name", "scope", "workspace", "toolset", "expires-in-days"]);
    if (!v.name) throw new UsageError("tokens create needs --name NAME.", "tokens");
    const days = positiveInt(v["expires-in-days"], "--expires-in-days");
    const created = await call(
      api.POST("/api/tokens", {
        body: { name: v.name, ...(v.scope ? { scope: v.scope as "gateway" | "admin" } : {}), ...(v.workspace ? { workspaces: v.workspace } : {}), ...(v.toolset ? { toolsets: v.toolset } : {}), ...(days ? { expiresInDays: days } : {}) },
      }),
    );
    // The secret alone on stdout (shown once), what it is on stderr.
    if (!json) process.stderr.write(`created ${created.id} (scope ${created.scope}) in ${created.workspaces.join(", ")}${created.toolsets ? `, limited to toolsets ${created.toolsets.join(", ")}` : ""}${created.expiresAt ? `, expires ${created.expiresAt}` : ""} (shown once; store it now)\n`);
    return print(json, created, () => `${created.token}\n`);
  }
  if (sub === "revoke" && tokenId !== undefined) {
    only([]);
    await call(api.DELETE("/api/tokens/{tokenId}", { params: { path: { tokenId } } }));
    return print(json, undefined, () => `Revoked ${tokenId}\n`);
  }
  throw new UsageError(sub && ["ls", "create", "revoke"].includes(sub) ? `tokens ${sub} ${sub === "revoke" ? "takes one token id" : "takes no argument"}.` : `Unknown tokens command '${sub ?? ""}'.`, "tokens");
}

/** `--tool SERVER_ID/TOOL[=NAME]`: one tool of a toolset, optionally under a name of its own. */
function toolEntries(values: string[] | undefined): ToolsetCreate["tools"] | undefined {
  return values?.map((value) => {
    const match = /^(mcp_[0-9A-Za-z]+)\/([^=]+)(?:=(.+))?$/.exec(value);
    if (!match) throw new UsageError(`--tool '${value}' is not SERVER_ID/TOOL or SERVER_ID/TOOL=NAME.`, "toolsets");
    return { serverId: match[1], tool: match[2], ...(match[3] ? { name: match[3] } : {}) };
  });
}

const TOOLSET_COLUMNS = ["id", "name", "tools", "mcpPath", "updatedAt"] as const;

async function toolsets([sub, toolsetId]: string[], v: Values, api: McpServersClient, url: string, json: boolean) {
  const only = (allowed: string[]) => {
    const stray = Object.keys(v).filter((k) => k !== "json" && !allowed.includes(k));
    if (stray.length > 0) throw new UsageError(`toolsets ${sub} does not take --${stray[0]}.`, "toolsets");
  };
  const shown = (t: Toolset) => record({ ...t, tools: t.tools.map((x) => `${x.exposedName} = ${x.serverId}/${x.tool}${x.description ? ` (${x.description})` : ""}`).join("\n  ") });
  const needsId = ["get", "events", "rm", "update"].includes(sub ?? "");
  if (needsId !== (toolsetId !== undefined)) {
    throw new UsageError(sub && ["ls", "create", "get", "events", "rm", "update"].includes(sub) ? `toolsets ${sub} ${needsId ? "takes one toolset id" : "takes no argument"}.` : `Unknown toolsets command '${sub ?? ""}'.`, "toolsets");
  }
  switch (sub) {
    case "ls": {
      only(["workspace"]);
      const rows: Toolset[] = [];
      for await (const t of api.toolsets.list(await workspaceOf(v, "toolsets ls", api, url), { limit: 100 })) rows.push(t);
      return print(json, { data: rows, nextCursor: null }, () => table(rows.map((t) => ({ ...t, tools: String(t.tools.length) })), TOOLSET_COLUMNS));
    }
    case "get": {
      only([]);
      const t = await api.toolsets.get(toolsetId!);
      return print(json, t, () => shown(t));
    }
    case "create": {
      only(["name", "workspace", "description", "tool"]);
      if (!v.name) throw new UsageError("toolsets create needs --name NAME.", "toolsets");
      const t = await api.toolsets.create(await workspaceOf(v, "toolsets create", api, url), { name: v.name, ...(v.description ? { description: v.description } : {}), tools: toolEntries(v.tool) ?? [] });
      return print(json, t, () => shown(t));
    }
    case "update": {
      only(["name", "description", "tool", "if-match"]);
      const tools = toolEntries(v.tool);
      const patch = { ...(v.name ? { name: v.name } : {}), ...(v.description !== undefined ? { description: v.description || null } : {}), ...(tools ? { tools } : {}) };
      if (Object.keys(patch).length === 0) throw new UsageError("toolsets update needs --name, --description or --tool.", "toolsets");
      const t = await api.toolsets.update(toolsetId!, patch, { ifMatch: v["if-match"] });
      return print(json, t, () => shown(t));
    }
    case "rm":
      only(["if-match"]);
      await api.toolsets.delete(toolsetId!, { ifMatch: v["if-match"] });
      return print(json, undefined, () => `Deleted ${toolsetId}\n`);
    case "events": {
      only([]);
      const rows: ToolsetEvent[] = [];
      for await (const e of api.toolsets.events(toolsetId!, { limit: 100 })) rows.push(e);
      const lines = rows.map((e) => ({ at: e.at, type: e.type, actor: e.actor, change: [...e.fields.map((f) => `${f.name} ${f.change}`), ...(e.removedTools ?? []).map((r) => `-${r.serverId}/${r.tool}`)].join(", ") }));
      return print(json, { data: rows, nextCursor: null }, () => table(lines, ["at", "type", "actor", "change"]));
    }
  }
}

async function commands(command: string, args: string[], v: Values, api: McpServersClient, url: string) {
  const id = args[0];
  const json = v.json ?? false;
  const limit = positiveInt(v.limit, "--limit");
  switch (command) {
    case "ls": {
      const workspaceId = await workspaceOf(v, "ls", api, url);
      const rows: McpServer[] = [];
      let cursor: string | undefined;
      do {
        const pageSize = Math.min(100, limit === undefined ? 100 : limit - rows.length);
        const page = await api.servers.page({ workspaceId, limit: pageSize, ...(cursor ? { cursor } : {}) });
        rows.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && (limit === undefined || rows.length < limit));
      return print(json, { data: rows, nextCursor: cursor ?? null }, () => table(rows, SERVER_COLUMNS));
    }
    case "get": {
      const server = await api.servers.get(id!);
      return print(json, server, () => record(server));
    }
    case "create": {
      const body = { workspaceId: await workspaceOf(v, "create", api, url), ...(await fields(v)) };
      if (!body.name || !body.url) throw new UsageError("create needs --name and --url.");
      const server = await api.servers.create(body as McpServerCreate);
      return print(json, server, () => record(server));
    }
    case "update": {
      const patch = await fields(v);
      if (Object.keys(patch).length === 0) throw new UsageError("update needs at least one field to change, e.g. --name.");
      const server = await api.servers.update(id!, patch, { ifMatch: v["if-match"] });
      return print(json, server, () => record(server));
    }
    case "rm":
      await api.servers.delete(id!, { ifMatch: v["if-match"] });
      // The API answers 204 with no body; --json prints nothing either.
      return print(json, undefined, () => `Deleted ${id}\n`);
    case "test": {
      const check = await api.servers.test(id!);
      return print(json, check, () =>
        record({
          connectorStatus: check.connectorStatus,
          latencyMs: check.latencyMs,
          protocolVersion: check.protocolVersion,
          server: check.serverInfo ? `${check.serverInfo.name} ${check.serverInfo.version}` : null,
          toolCount: check.toolCount,
          error: check.error ? `${check.error.class}: ${check.error.message}` : null,
        }),
      );
    }
    case "tools": {
      const list = await api.servers.tools(id!);
      return print(json, list, () => table(list.data, ["name", "title", "description"]));
    }
    case "connect": {
      const authorization = await api.servers.connect(id!, v["return-url"] ? { returnUrl: v["return-url"] } : undefined);
      return print(json, authorization, () => `${authorization.authorizationUrl}\n`);
    }
    case "whoami": {
      const me = await whoami(api, url);
      return print(json, me, () => record({ ...me, workspaces: me.workspaces.join(", ") }));
    }
    case "tokens":
      return tokens(args, v, api, json, limit);
    case "pins":
      return pins(args, v, api, json, limit);
    case "approve":
      return approve(args, v, api, json);
    case "toolsets":
      return toolsets(args, v, api, url, json);
    case "events": {
      const rows: McpServerEvent[] = [];
      let cursor: string | undefined;
      do {
        const pageSize = Math.min(100, limit === undefined ? 100 : limit - rows.length);
        const page = await api.servers.eventsPage(id!, { limit: pageSize, ...(cursor ? { cursor } : {}) });
        rows.push(...page.data);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && (limit === undefined || rows.length < limit));
      const shown = rows.map((e) => ({ at: e.at, type: e.type, actor: e.actor, fields: e.fields.map((f) => `${f.name} ${f.change}`).join(", ") }));
      return print(json, { data: rows, nextCursor: cursor ?? null }, () => table(shown, ["at", "type", "actor", "fields"]));
    }
  }
}

type ToolPinDetail = components["schemas"]["ToolPinDetail"];

/** A pin for a person: its state, and each changed part as pinned and as the server gives it now. */
function pinText(pin: ToolPinDetail, etag: string): string {
  const shown = (def: ToolPinDetail["pinned"] | null, part: string) => (def === null ? "(missing)" : JSON.stringify((def as Record<string, unknown>)[part] ?? null));
  const parts = pin.changedParts.flatMap((part) => [`${part} pinned:  ${shown(pin.pinned, part)}`, `${part} current: ${shown(pin.current, part)}`]);
  return record({ tool: pin.tool, status: pin.status, pinnedAt: pin.pinnedAt, changedAt: pin.changedAt, changedParts: pin.changedParts.join(", "), etag }) + parts.map((l) => `${l}\n`).join("");
}

async function pins([id, tool]: string[], v: Values, api: McpServersClient, json: boolean, limit: number | undefined) {
  if (tool !== undefined) {
    const { pin, etag } = await api.toolPins.get(id, tool);
    return print(json, pin, () => pinText(pin, etag));
  }
  const rows: components["schemas"]["ToolPin"][] = [];
  let cursor: string | undefined;
  do {
    const pageSize = Math.min(100, limit === undefined ? 100 : limit - rows.length);
    const page = await api.toolPins.page(id, { limit: pageSize, ...(cursor ? { cursor } : {}) });
    rows.push(...page.data);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && (limit === undefined || rows.length < limit));
  const shown = rows.map((p) => ({ tool: p.tool, status: p.status, changedParts: p.changedParts.join(","), pinnedAt: p.pinnedAt, changedAt: p.changedAt }));
  return print(json, { data: rows, nextCursor: cursor ?? null }, () => table(shown, ["tool", "status", "changedParts", "pinnedAt", "changedAt"]));
}

async function approve([id, tool]: string[], v: Values, api: McpServersClient, json: boolean) {
  let ifMatch = v["if-match"];
  if (ifMatch === undefined) {
    // The definition shown here is the one approved: its ETag goes with the approval.
    const { pin, etag } = await api.toolPins.get(id, tool);
    if (!json) process.stderr.write(pinText(pin, etag));
    ifMatch = etag;
  }
  const { pin } = await api.toolPins.approve(id, tool, { ifMatch });
  return print(json, pin, () => `Approved ${pin.tool}: pinned ${pin.pinnedHash.slice(0, 12)}… at ${pin.pinnedAt}\n`);
}

/** The command a misused argv was meant for: its first word naming one. */
const commandIn = (argv: string[]) => argv.find((a) => Object.hasOwn(COMMANDS, a));

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, allowNegative: true, strict: true });
  } catch (err) {
    // One line naming the flag (Node's own message suggests quoting it, unbalanced), then the command's usage.
    const flag = /'(-[^']*)'/.exec((err as Error).message)?.[1];
    const command = commandIn(argv);
    const line = (err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag ? `Unknown option '${flag}'${command ? ` for ${command}` : ""}.` : (err as Error).message.split("\n")[0];
    process.stderr.write(`${line}\n${command ? commandUsage(command) : USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, ...args] = positionals;
  if (v.help || command === "help" || command === undefined) {
    (command === undefined && !v.help ? process.stderr : process.stdout).write(USAGE + "\n");
    return command === undefined && !v.help ? 2 : 0;
  }
  let url = "";
  try {
    const spec = COMMANDS[command];
    if (!spec) throw new UsageError(`Unknown command '${command}'.`);
    const [min, max] = typeof spec.args === "number" ? [spec.args, spec.args] : spec.args;
    if (args.length < min || args.length > max) {
      throw new UsageError(spec.args === 1 ? `${command} takes one server id: mcp-servers ${command} ID` : spec.args === 0 ? `${command} takes no arguments; got '${args.join(" ")}'.` : min === max ? `${command} takes ${min} arguments: mcp-servers ${COMMAND_USAGE[command].split("  ")[0]}` : `${command} takes ${min} to ${max} arguments.`, command);
    }
    const stray = Object.keys(v).filter((k) => k !== "json" && !spec.options.includes(k));
    if (stray.length > 0) throw new UsageError(`${command} does not take --${stray[0]}.`, command);
    if (command === "login") await login(v);
    else if (command === "logout") {
      rmSync(configFile(), { force: true });
      process.stdout.write("Logged out.\n");
    } else {
      const creds = credentials();
      url = creds.url;
      await commands(command, args, v, createMcpServersClient({ baseUrl: creds.url, token: creds.token }), creds.url);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${err.command ? commandUsage(err.command) : "Run `mcp-servers --help` for usage."}\n`);
      return 2;
    }
    if (err instanceof ProblemError) {
      process.stderr.write(`${err.title}${err.detail ? ` ${err.detail}` : ""}\n`);
      for (const e of err.errors) process.stderr.write(`  ${e.path} ${e.message}\n`);
      return 1;
    }
    if (err instanceof Unreachable) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    process.stderr.write(`${new Unreachable(url || "the API", err).message}\n`);
    return 1;
  } finally {
    reader?.close(); // else a terminal's stdin keeps the process waiting
  }
}

process.exitCode = await main(process.argv.slice(2));
