#!/usr/bin/env node
// mcp-servers: the MCP Servers API for people, on top of the typed client.
// Exit status: 0 success, 1 a request failed (problem title and detail on stderr), 2 bad usage.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { parseArgs } from "node:util";
import { createMcpServersClient, ProblemError, type McpServer, type McpServerCreate, type McpServerEvent, type McpServerPatch, type McpServersClient } from "./index.js";
import { table, record } from "./table.js";

const USAGE = `Usage: mcp-servers <command> [options]

Commands:
  login [--url URL] [--token TOKEN]   store where the API is and your token (asked for when left out)
  logout                              forget them
  ls --workspace W [--limit N]        list servers (every page unless --limit)
  get ID                              show one server
  create --workspace W --name NAME --url URL [fields]
  update ID [fields] [--if-match ETAG]
  rm ID [--if-match ETAG]             delete a server
  test ID                             check the connection for real
  tools ID                            list the server's tools
  connect ID [--return-url URL]       print the OAuth authorization URL to open
  events ID [--limit N]               the server's audit trail, newest first

Fields (create and update):
  --name NAME  --url URL  --auth-type none|api_key|oauth  --api-key KEY (- reads it from stdin)
  --header 'Name: value' (repeatable)  --oauth-client-id ID  --oauth-client-secret SECRET (- reads stdin)
  --oauth-scopes SCOPES  --oauth-token-endpoint URL  --oauth-authorization-endpoint URL  --connector-id ID

Options:
  --json      print the API's JSON instead of a table
  --help      this text

Credentials: MCP_SERVERS_URL and MCP_SERVERS_TOKEN, else what \`mcp-servers login\` stored.`;

class UsageError extends Error {}

const OPTIONS = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  url: { type: "string" },
  token: { type: "string" },
  workspace: { type: "string", short: "w" },
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
  "if-match": { type: "string" },
  "return-url": { type: "string" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

// Which options each command takes; anything else is a usage error rather than silently ignored.
const FIELD_OPTIONS = ["name", "url", "auth-type", "api-key", "header", "oauth-client-id", "oauth-client-secret", "oauth-scopes", "oauth-token-endpoint", "oauth-authorization-endpoint", "connector-id"];
const COMMANDS: Record<string, { args: number; options: string[] }> = {
  login: { args: 0, options: ["url", "token"] },
  logout: { args: 0, options: [] },
  ls: { args: 0, options: ["workspace", "limit"] },
  get: { args: 1, options: [] },
  create: { args: 0, options: ["workspace", ...FIELD_OPTIONS] },
  update: { args: 1, options: [...FIELD_OPTIONS, "if-match"] },
  rm: { args: 1, options: ["if-match"] },
  test: { args: 1, options: [] },
  tools: { args: 1, options: [] },
  connect: { args: 1, options: ["return-url"] },
  events: { args: 1, options: ["limit"] },
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
  // There is no "who am I" operation; reading an id that cannot exist tells a valid token (404) from a refused one.
  const { response, error } = await createMcpServersClient({ baseUrl: url, token }).GET("/api/mcp-servers/{id}", { params: { path: { id: "mcp_0" } } });
  if (response.status !== 404) throw new ProblemError(response.status, error);
  const file = configFile();
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o700 });
  // Written whole with mode 0600 and moved into place, so the token is never readable by others, not even briefly.
  const partial = `${file}.${process.pid}`;
  writeFileSync(partial, JSON.stringify({ url, token }, null, 2) + "\n", { mode: 0o600 });
  renameSync(partial, file);
  process.stdout.write(`Logged in to ${url}; saved in ${file}\n`);
}

async function commands(command: string, id: string | undefined, v: Values, api: McpServersClient) {
  const json = v.json ?? false;
  const limit = positiveInt(v.limit, "--limit");
  switch (command) {
    case "ls": {
      if (!v.workspace) throw new UsageError("ls needs --workspace W.");
      const rows: McpServer[] = [];
      let cursor: string | undefined;
      do {
        const pageSize = Math.min(100, limit === undefined ? 100 : limit - rows.length);
        const page = await api.servers.page({ workspaceId: v.workspace, limit: pageSize, ...(cursor ? { cursor } : {}) });
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
      if (!v.workspace) throw new UsageError("create needs --workspace W.");
      const body = { workspaceId: v.workspace, ...(await fields(v)) };
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

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [command, ...args] = positionals;
  if (v.help || command === "help" || command === undefined) {
    (command === undefined && !v.help ? process.stderr : process.stdout).write(USAGE + "\n");
    return command === undefined && !v.help ? 2 : 0;
  }
  try {
    const spec = COMMANDS[command];
    if (!spec) throw new UsageError(`Unknown command '${command}'.`);
    if (args.length !== spec.args) throw new UsageError(spec.args === 1 ? `${command} takes one server id: mcp-servers ${command} ID` : `${command} takes no arguments; got '${args.join(" ")}'.`);
    const stray = Object.keys(v).filter((k) => k !== "json" && !spec.options.includes(k));
    if (stray.length > 0) throw new UsageError(`${command} does not take --${stray[0]}.`);
    if (command === "login") await login(v);
    else if (command === "logout") {
      rmSync(configFile(), { force: true });
      process.stdout.write("Logged out.\n");
    } else {
      const { url, token } = credentials();
      await commands(command, args[0], v, createMcpServersClient({ baseUrl: url, token }));
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\nRun \`mcp-servers --help\` for usage.\n`);
      return 2;
    }
    if (err instanceof ProblemError) {
      process.stderr.write(`${err.title}${err.detail ? ` ${err.detail}` : ""}\n`);
      for (const e of err.errors) process.stderr.write(`  ${e.path} ${e.message}\n`);
      return 1;
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    process.stderr.write(`The request failed: ${cause?.code ?? cause?.message ?? (err as Error).message}\n`);
    return 1;
  } finally {
    reader?.close(); // else a terminal's stdin keeps the process waiting
  }
}

process.exitCode = await main(process.argv.slice(2));
