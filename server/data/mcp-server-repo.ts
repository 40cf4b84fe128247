// MCP server records. Every query is scoped by workspace; secrets are sealed on the
// way in and only opened on request; rows become wire objects in toWire() alone.
import type { Knex } from "knex";
import type { AuthType, ConnectionError, ConnectorStatus, McpServer } from "../wire.js";
import { newUlidFactory } from "./ids.js";
import { EVENT_COLUMNS, eventRow, insertEvent, type AuditEventInput } from "./audit-repo.js";
import { isUniqueViolation, statementsOf, type Statement } from "./db.js";
import { originOf, type SecretBox } from "./secrets.js";

// secretHeaders and connectorSecrets are sealed JSON objects (name → value), bound to url's origin like the API key.
export const SECRET_FIELDS = ["apiKey", "oauthClientSecret", "oauthAccessToken", "oauthRefreshToken", "secretHeaders", "connectorSecrets", "oauthClientPrivateKey"] as const;
export type SecretField = (typeof SECRET_FIELDS)[number];
/** Plaintext secret changes: a string sets, null clears, absent keeps. */
export type SecretChanges = Partial<Record<SecretField, string | null>>;
export type Secrets = Record<SecretField, string | null>;

export interface ServerFields {
  name: string;
  url: string;
  authType: AuthType;
  oauthClientId: string | null;
  oauthTokenEndpoint: string | null;
  oauthAuthorizationEndpoint: string | null;
  oauthScopes: string | null;
  oauthExpiresAt: string | null;
  headers: Record<string, string>;
  connectorId: string | null;
  connectorConfig: Record<string, unknown> | null;
  /** "catalog": rendered from a catalog entry; null: no connector, or one the catalog does not hold (issue 19). */
  connectorSource: "catalog" | null;
  connectorStatus: ConnectorStatus;
  oauthGrantType: OAuthGrantType | null;
  /** How the client authenticates at the token endpoint (null: chosen from metadata); issue 20. */
  oauthClientAuthMethod: OAuthClientAuthMethod | null;
  oauthClientRegistration: OAuthClientRegistration | null;
  /** Gateway policy (issue 10): whether agents may use the server, and which of its tools (null: all). */
  enabled: boolean;
  allowedTools: string[] | null;
  /** Whose credential the gateway uses (issue 20): the record's, or each person's own connection. */
  connectionScope: "workspace" | "user";
  /** Whether tool definitions are pinned at first sight and changed ones held (issue 22). */
  toolPinning: boolean;
  /** Names of the sealed secretHeaders and connectorSecrets (issue 14); kept in step with them by the domain. */
  secretHeaderNames: string[];
  connectorSecretsSet: string[];
}

/** What the product learned about a server's OAuth setup; not part of the wire record. */
export interface OAuthInternals {
  revocationEndpoint: string | null;
  tokenAuthMethod: string | null;
  issuer: string | null;
  resource: string | null;
  /** What discovery learned that decides how the client identifies itself and checks responses. */
  discovery: OAuthDiscovery | null;
  /** When the stored access token was obtained: with oauthExpiresAt, its lifetime. */
  tokenObtainedAt: string | null;
  /**
   * A random value drawn each time the connection is established (the callback, a first
   * client-credentials grant) and null once disconnected; a refresh keeps it. Sessions are bound to it.
   */
  generation: string | null;
  /** Scope step-up (issue 20): what the MCP server demanded with 403 insufficient_scope; null: nothing. */
  stepUp: StepUpState | null;
}

/** Scopes an MCP server demanded beyond what was asked, and how often re-authorizing for them did not help. */
export interface StepUpState {
  required: string[];
  attempts: number;
}

export interface OAuthDiscovery {
  registrationEndpoint: string | null;
  clientIdMetadataDocumentSupported: boolean;
  /** RFC 9207: the authorization server says it sends `iss` with its responses. */
  issParameterSupported: boolean;
  /** Scopes from the MCP server's WWW-Authenticate challenge, else its metadata's scopes_supported. */
  scopes: string | null;
  /** The authorization server lists offline_access among its scopes. */
  offlineAccess: boolean;
  /** The issuer named by authorization server metadata (null when none was used): what `iss` must be. */
  issuer: string | null;
  /** token_endpoint_auth_methods_supported, for a dynamic registration. */
  tokenAuthMethods: string[] | null;
  /**
   * The endpoints the authorization server's own metadata named (null: no metadata was used;
   * absent: learned before issue 18). A dynamic registration is made with, and bound to, these.
   */
  metadataEndpoints?: { tokenEndpoint: string; authorizationEndpoint: string | null; revocationEndpoint: string | null } | null;
  /** The record's endpoints were filled in by discovery, not set by the user: a new authorization may learn them again. */
  endpointsDiscovered?: boolean;
}

export type OAuthGrantType = "authorization_code" | "client_credentials";
export type OAuthClientAuthMethod = "client_secret_basic" | "client_secret_post" | "none" | "private_key_jwt";
export type OAuthClientRegistration = "pre_registered" | "metadata_document" | "dynamic";

export interface StoredServer {
  server: McpServer;
  version: number;
  secretsSet: Record<SecretField, boolean>;
  oauth: OAuthInternals;
}

export type WriteOutcome =
  | { ok: true; stored: StoredServer }
  | { ok: false; reason: "name-taken" | "stale" }
  /** Another record of the workspace holds the namespace (its unique index, issue 18); `holder` null if it left meanwhile. */
  | { ok: false; reason: "namespace-taken"; holder: { id: string; name: string } | null };

interface ServerRow {
  id: string;
  workspace_id: string;
  name: string;
  name_key: string;
  namespace: string | null;
  url: string;
  auth_type: string;
  api_key_enc: string | null;
  oauth_client_id: string | null;
  oauth_client_secret_enc: string | null;
  oauth_token_endpoint: string | null;
  oauth_authorization_endpoint: string | null;
  oauth_scopes: string | null;
  oauth_access_token_enc: string | null;
  oauth_refresh_token_enc: string | null;
  oauth_expires_at: string | null;
  headers: string;
  connector_id: string | null;
  connector_config: string | null;
  connector_source: string | null;
  connector_status: string;
  last_checked_at: string | null;
  last_error: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  version: number;
  oauth_revocation_endpoint: string | null;
  oauth_token_auth_method: string | null;
  oauth_issuer: string | null;
  oauth_resource: string | null;
  oauth_grant_type: string | null;
  oauth_client_registration: string | null;
  oauth_discovery: string | null;
  oauth_refresh_lock_until: string | null;
  oauth_obtained_at: string | null;
  oauth_generation: string | null;
  oauth_step_up: string | null;
  oauth_client_auth_method: string | null;
  oauth_client_private_key_enc: string | null;
  enabled: boolean | number;
  allowed_tools: string | null;
  connection_scope: string;
  tool_pinning: boolean | number;
  secret_headers_enc: string | null;
  secret_header_names: string;
  connector_secrets_enc: string | null;
  connector_secret_names: string;
}

/**
 * Every column of a record row, in the order the hot statements select and return them (not
 * `*`: a column added by a migration while this process runs does not change what they
 * answer). Named, these let db.ts read SQLite rows as arrays.
 */
const SERVER_COLUMNS = [
  "id", "workspace_id", "name", "name_key", "namespace", "url", "auth_type", "api_key_enc",
  "oauth_client_id", "oauth_client_secret_enc", "oauth_token_endpoint", "oauth_authorization_endpoint",
  "oauth_scopes", "oauth_access_token_enc", "oauth_refresh_token_enc", "oauth_expires_at", "headers",
  "connector_id", "connector_config", "connector_source", "connector_status", "last_checked_at",
  "last_error", "created_by", "created_at", "updated_at", "version", "oauth_revocation_endpoint",
  "oauth_token_auth_method", "oauth_issuer", "oauth_resource", "oauth_grant_type",
  "oauth_client_registration", "oauth_discovery", "oauth_refresh_lock_until", "oauth_obtained_at",
  "oauth_generation", "oauth_step_up", "oauth_client_auth_method", "oauth_client_private_key_enc", "enabled",
  "allowed_tools", "connection_scope", "tool_pinning", "secret_headers_enc", "secret_header_names",
  "connector_secrets_enc", "connector_secret_names",
] as const satisfies readonly (keyof ServerRow)[];
type UnlistedColumn = Exclude<keyof ServerRow, (typeof SERVER_COLUMNS)[number]>;
// Every column of ServerRow is listed above: a compile error here names the one left out.
const everyColumnListed: [UnlistedColumn] extends [never] ? true : UnlistedColumn = true;

/** Longest `lastError.message` stored and served; longer ones are cut (documented in openapi.yaml). */
export const MAX_ERROR_MESSAGE = 500;

/** Where each credential may be sent: the URL whose origin it is sealed to. */
export function credentialDestination(field: SecretField, f: { url: string; oauthTokenEndpoint: string | null }): string {
  return field === "oauthClientSecret" || field === "oauthClientPrivateKey" ? (f.oauthTokenEndpoint ?? f.url) : f.url;
}

/**
 * Stored credentials that `to` would send to another origin than the one they were given
 * for, and that `secrets` neither replaces nor clears. The domain clears them; the
 * repository refuses a write that would keep them (they could no longer be opened).
 */
export function movedCredentials(
  current: StoredServer,
  to: { url: string; oauthTokenEndpoint: string | null },
  secrets: SecretChanges,
): SecretField[] {
  return SECRET_FIELDS.filter(
    (field) =>
      current.secretsSet[field] &&
      secrets[field] === undefined &&
      originOf(credentialDestination(field, current.server)) !== originOf(credentialDestination(field, to)),
  );
}

function bounded(error: ConnectionError): ConnectionError {
  if (error.message.length <= MAX_ERROR_MESSAGE) return error;
  return { ...error, message: `${error.message.slice(0, MAX_ERROR_MESSAGE - 1)}…` };
}

const storedError = (error: ConnectionError | null): string | null => (error === null ? null : JSON.stringify(bounded(error)));

export const SECRET_COLUMNS = {
  apiKey: "api_key_enc",
  oauthClientSecret: "oauth_client_secret_enc",
  oauthAccessToken: "oauth_access_token_enc",
  oauthRefreshToken: "oauth_refresh_token_enc",
  secretHeaders: "secret_headers_enc",
  connectorSecrets: "connector_secrets_enc",
  oauthClientPrivateKey: "oauth_client_private_key_enc",
} as const satisfies Record<SecretField, keyof ServerRow>;

/**
 * The columns a wire record is made from (toWire), and what a page selects besides them: whether
 * each sealed column the record shows as `has…` is set, not its ciphertext. A page reads no
 * other column (issue 25: the 48 columns of a full row cost about a fifth more to read).
 */
const WIRE_COLUMNS = [
  "id", "workspace_id", "name", "url", "auth_type", "oauth_client_auth_method", "oauth_client_id",
  "oauth_token_endpoint", "oauth_authorization_endpoint", "oauth_scopes", "oauth_grant_type",
  "oauth_client_registration", "oauth_expires_at", "headers", "secret_header_names", "connector_id",
  "connector_config", "connector_secret_names", "connector_source", "connector_status", "last_checked_at",
  "last_error", "enabled", "allowed_tools", "connection_scope", "tool_pinning", "created_by", "created_at", "updated_at",
] as const satisfies readonly (keyof ServerRow)[];
const SEALED_FLAGS = { has_api_key: "api_key_enc", has_oauth_client_secret: "oauth_client_secret_enc", has_oauth_client_private_key: "oauth_client_private_key_enc" } as const;
const PAGE_COLUMNS: readonly string[] = [...WIRE_COLUMNS, ...Object.keys(SEALED_FLAGS)];
type WireRow = Pick<ServerRow, (typeof WIRE_COLUMNS)[number]>;
/** Which sealed columns are set (SQLite answers `is not null` as 0 or 1, PostgreSQL as a boolean). */
type SealedFlags = Record<keyof typeof SEALED_FLAGS, boolean | number>;
/** What a page selects, in PAGE_COLUMNS order. */
const PAGE_SELECTED = [...WIRE_COLUMNS.map((c) => `"${c}"`), ...Object.values(SEALED_FLAGS).map((c) => `"${c}" is not null`)];
const PAGE_ROW = Object.fromEntries(PAGE_COLUMNS.map((c) => [c, null]));

/**
 * A page's row on SQLite, from the JSON array its statement made of the row's values. better-sqlite3
 * hands each of a row's values to JavaScript with a property set of its own (about half the page's
 * CPU, issue 25); one text per row and JSON.parse cost half as much. The row is a copy of one
 * template filled in place, cheaper than adding its 32 properties to an empty object one by one.
 */
function pageRowOf(json: string): WireRow & SealedFlags {
  const values = JSON.parse(json) as unknown[];
  if (values.length !== PAGE_COLUMNS.length) throw new Error(`a page row held ${values.length} values where ${PAGE_COLUMNS.length} were selected`);
  const row: Record<string, unknown> = { ...PAGE_ROW };
  for (let i = 0; i < PAGE_COLUMNS.length; i++) row[PAGE_COLUMNS[i]] = values[i];
  return row as WireRow & SealedFlags;
}

function toWire(row: WireRow, sealed: SealedFlags): McpServer {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    url: row.url,
    authType: row.auth_type as AuthType,
    hasApiKey: Boolean(sealed.has_api_key),
    hasOauthClientSecret: Boolean(sealed.has_oauth_client_secret),
    hasOauthClientPrivateKey: Boolean(sealed.has_oauth_client_private_key),
    oauthClientAuthMethod: row.oauth_client_auth_method as OAuthClientAuthMethod | null,
    oauthClientId: row.oauth_client_id,
    oauthTokenEndpoint: row.oauth_token_endpoint,
    oauthAuthorizationEndpoint: row.oauth_authorization_endpoint,
    oauthScopes: row.oauth_scopes,
    oauthGrantType: row.oauth_grant_type as OAuthGrantType | null,
    oauthClientRegistration: row.oauth_client_registration as OAuthClientRegistration | null,
    oauthExpiresAt: row.oauth_expires_at,
    headers: JSON.parse(row.headers) as Record<string, string>,
    secretHeaderNames: JSON.parse(row.secret_header_names) as string[],
    connectorId: row.connector_id,
    connectorConfig: row.connector_config === null ? null : (JSON.parse(row.connector_config) as Record<string, unknown>),
    connectorSecretsSet: JSON.parse(row.connector_secret_names) as string[],
    connectorSource: row.connector_source === "catalog" ? "catalog" : null,
    connectorStatus: row.connector_status as ConnectorStatus,
    lastCheckedAt: row.last_checked_at,
    lastError: row.last_error === null ? null : bounded(JSON.parse(row.last_error) as ConnectionError),
    enabled: Boolean(row.enabled),
    allowedTools: row.allowed_tools === null ? null : (JSON.parse(row.allowed_tools) as string[]),
    connectionScope: row.connection_scope === "user" ? "user" : "workspace",
    toolPinning: Boolean(row.tool_pinning),
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toStored(row: ServerRow): StoredServer {
  return {
    server: toWire(row, {
      has_api_key: row.api_key_enc !== null,
      has_oauth_client_secret: row.oauth_client_secret_enc !== null,
      has_oauth_client_private_key: row.oauth_client_private_key_enc !== null,
    }),
    version: row.version,
    secretsSet: {
      apiKey: row.api_key_enc !== null,
      oauthClientSecret: row.oauth_client_secret_enc !== null,
      oauthAccessToken: row.oauth_access_token_enc !== null,
      oauthRefreshToken: row.oauth_refresh_token_enc !== null,
      secretHeaders: row.secret_headers_enc !== null,
      connectorSecrets: row.connector_secrets_enc !== null,
      oauthClientPrivateKey: row.oauth_client_private_key_enc !== null,
    },
    oauth: {
      revocationEndpoint: row.oauth_revocation_endpoint,
      tokenAuthMethod: row.oauth_token_auth_method,
      issuer: row.oauth_issuer,
      resource: row.oauth_resource,
      discovery: row.oauth_discovery === null ? null : (JSON.parse(row.oauth_discovery) as OAuthDiscovery),
      tokenObtainedAt: row.oauth_obtained_at,
      generation: row.oauth_generation,
      stepUp: row.oauth_step_up ? (JSON.parse(row.oauth_step_up) as StepUpState) : null,
    },
  };
}

type NameKeys = { nameKey: (n: string) => string; namespaceOf: (n: string) => string };

function fieldColumns(f: Partial<ServerFields>, keys: NameKeys): Partial<ServerRow> {
  const row: Partial<ServerRow> = {};
  if (f.name !== undefined) {
    row.name = f.name;
    row.name_key = keys.nameKey(f.name);
    row.namespace = keys.namespaceOf(f.name);
  }
  if (f.url !== undefined) row.url = f.url;
  if (f.authType !== undefined) row.auth_type = f.authType;
  if (f.oauthClientId !== undefined) row.oauth_client_id = f.oauthClientId;
  if (f.oauthTokenEndpoint !== undefined) row.oauth_token_endpoint = f.oauthTokenEndpoint;
  if (f.oauthAuthorizationEndpoint !== undefined) row.oauth_authorization_endpoint = f.oauthAuthorizationEndpoint;
  if (f.oauthScopes !== undefined) row.oauth_scopes = f.oauthScopes;
  if (f.oauthExpiresAt !== undefined) row.oauth_expires_at = f.oauthExpiresAt;
  if (f.headers !== undefined) row.headers = JSON.stringify(f.headers);
  if (f.connectorId !== undefined) row.connector_id = f.connectorId;
  if (f.connectorConfig !== undefined) row.connector_config = f.connectorConfig === null ? null : JSON.stringify(f.connectorConfig);
  if (f.connectorSource !== undefined) row.connector_source = f.connectorSource;
  if (f.connectorStatus !== undefined) row.connector_status = f.connectorStatus;
  if (f.oauthGrantType !== undefined) row.oauth_grant_type = f.oauthGrantType;
  if (f.oauthClientRegistration !== undefined) row.oauth_client_registration = f.oauthClientRegistration;
  if (f.oauthClientAuthMethod !== undefined) row.oauth_client_auth_method = f.oauthClientAuthMethod;
  if (f.enabled !== undefined) row.enabled = f.enabled;
  if (f.connectionScope !== undefined) row.connection_scope = f.connectionScope;
  if (f.toolPinning !== undefined) row.tool_pinning = f.toolPinning;
  if (f.allowedTools !== undefined) row.allowed_tools = f.allowedTools === null ? null : JSON.stringify(f.allowedTools);
  if (f.secretHeaderNames !== undefined) row.secret_header_names = JSON.stringify(f.secretHeaderNames);
  if (f.connectorSecretsSet !== undefined) row.connector_secret_names = JSON.stringify(f.connectorSecretsSet);
  return row;
}

// `limit 1` written into the SQL, not bound: better-sqlite3 runs `limit ?` about 3× slower
// (4.4 against 1.5 µs a lookup on 100,000 rows), and a limit is always an integer here.
const LITERAL = { skipBinding: true };

/** `nameKey` and `namespaceOf` (the domain's) fill the two columns each workspace keeps unique. */
export function createMcpServerRepo(knex: Knex, box: SecretBox, nameKey: (name: string) => string, namespaceOf: (name: string) => string) {
  const keys: NameKeys = { nameKey, namespaceOf };
  const table = (db: Knex | Knex.Transaction = knex) => db<ServerRow>("mcp_servers");
  /** Which unique rule a write of `name` broke: one probe per index, after the failed write. */
  const collision = async (workspaceId: string, selfId: string, name: string): Promise<WriteOutcome> => {
    if (await table().where({ workspace_id: workspaceId, name_key: nameKey(name) }).whereNot({ id: selfId }).first("id")) return { ok: false, reason: "name-taken" };
    const holder = await table().where({ workspace_id: workspaceId, namespace: namespaceOf(name) }).whereNot({ id: selfId }).first("id", "name");
    return { ok: false, reason: "namespace-taken", holder: holder ? { id: holder.id, name: holder.name } : null };
  };
  const eventId = newUlidFactory();
  const record = async (db: Knex.Transaction, server: { id: string; workspaceId: string }, event: AuditEventInput | AuditEventInput[] | undefined, at: string) => {
    for (const e of Array.isArray(event) ? event : event ? [event] : []) await insertEvent(db, `evt_${eventId()}`, server, e, at);
  };
  // The hot statements (find, page, insert, update) run past Knex (db.ts: statementsOf), their
  // SQL text made once per shape and kept, and prepared once per connection.
  const statements = statementsOf(knex);
  const pg = statements.dialect === "postgres";
  /** The n-th value's placeholder (from 1). */
  const slot = (n: number) => (pg ? `$${n}` : "?");
  const slots = (from: number, count: number) => Array.from({ length: count }, (_, i) => slot(from + i)).join(", ");
  const sqlByShape = new Map<string, string>();
  const sqlFor = (shape: string, make: () => string) => {
    let sql = sqlByShape.get(shape);
    if (!sql) {
      sql = make();
      if (sqlByShape.size < 256) sqlByShape.set(shape, sql);
    }
    return sql;
  };
  const columns = (names: readonly string[]) => names.map((c) => `"${c}"`).join(", ");
  const SELECTED = columns(SERVER_COLUMNS);
  const readRows = (sql: string, values: readonly unknown[]) => statements.read<ServerRow>({ sql, values, columns: SERVER_COLUMNS });

  /**
   * A write of one record row (an INSERT or UPDATE … RETURNING *) and its audit events in one
   * transaction; the events are written only when the row is. PostgreSQL: one statement, the
   * events inserted from the written row's CTE (one round trip). Returns the written row.
   */
  const writeWithEvents = async (shape: string, write: Statement, server: { id: string; workspaceId: string }, event: AuditEventInput | AuditEventInput[] | undefined, at: string) => {
    const events = (Array.isArray(event) ? event : event ? [event] : []).map((e) => eventRow(`evt_${eventId()}`, server, e, at));
    const eventValues = events.map((e) => EVENT_COLUMNS.map((c) => e[c]));
    let steps: Statement[];
    if (pg) {
      const sql = sqlFor(`${shape}|events:${events.length}`, () => {
        const inserts = events.map((_, i) => {
          const from = write.values.length + i * EVENT_COLUMNS.length + 1;
          return `, e${i} as (insert into "audit_events" (${columns(EVENT_COLUMNS)}) select ${slots(from, EVENT_COLUMNS.length)} from s)`;
        });
        return `with s as (${write.sql})${inserts.join("")} select * from s`;
      });
      steps = [{ sql, values: [...write.values, ...eventValues.flat()], columns: SERVER_COLUMNS }];
    } else {
      const insertEventSql = sqlFor("event", () => `insert into "audit_events" (${columns(EVENT_COLUMNS)}) values (${slots(1, EVENT_COLUMNS.length)})`);
      steps = [write, ...eventValues.map((values) => ({ sql: insertEventSql, values }))];
    }
    const [row] = await statements.write<ServerRow>(steps);
    return row ? toStored(row) : null;
  };

  const findIn = async (db: Knex | Knex.Transaction, workspaceId: string, id: string) => {
    const row = await table(db).where({ id, workspace_id: workspaceId }).first().limit(1, LITERAL);
    return row ? toStored(row) : null;
  };

  type Destinations = { url: string; oauthTokenEndpoint: string | null };
  const binding = (id: string, workspaceId: string, field: SecretField, to: Destinations) => ({
    recordId: id,
    workspaceId,
    field,
    origin: originOf(credentialDestination(field, to)),
  });

  function sealColumns(id: string, workspaceId: string, changes: SecretChanges, to: Destinations): Partial<ServerRow> {
    const row: Partial<ServerRow> = {};
    for (const field of SECRET_FIELDS) {
      const value = changes[field];
      if (value === undefined) continue;
      (row as Record<string, unknown>)[SECRET_COLUMNS[field]] = value === null ? null : box.seal(value, binding(id, workspaceId, field, to));
    }
    return row;
  }

  /** Where the record's credentials will go once `fields` are applied. */
  const destinationsAfter = (current: StoredServer, fields: Partial<ServerFields>): Destinations => ({
    url: fields.url ?? current.server.url,
    oauthTokenEndpoint: fields.oauthTokenEndpoint !== undefined ? fields.oauthTokenEndpoint : current.server.oauthTokenEndpoint,
  });


  /**
   * Opens the stored secrets of one record, for outbound calls only. Each opens only for
   * the origin the record now points it at; a row repointed behind the domain's back throws.
   */
  async function openSecrets(workspaceId: string, id: string): Promise<Secrets> {
    const row = await table().where({ id, workspace_id: workspaceId }).first().limit(1, LITERAL);
    const out: Secrets = { apiKey: null, oauthClientSecret: null, oauthAccessToken: null, oauthRefreshToken: null, secretHeaders: null, connectorSecrets: null, oauthClientPrivateKey: null };
    if (!row) return out;
    const to = { url: row.url, oauthTokenEndpoint: row.oauth_token_endpoint };
    for (const field of SECRET_FIELDS) {
      const sealed = row[SECRET_COLUMNS[field]] as string | null;
      out[field] = sealed === null ? null : box.open(sealed, binding(id, workspaceId, field, to));
    }
    return out;
  }

  return {
    async insert(input: {
      id: string;
      workspaceId: string;
      fields: ServerFields;
      secrets: SecretChanges;
      createdBy: string;
      at: string;
      event?: AuditEventInput;
    }): Promise<WriteOutcome> {
      const row = {
        id: input.id,
        workspace_id: input.workspaceId,
        ...fieldColumns(input.fields, keys),
        ...sealColumns(input.id, input.workspaceId, input.secrets, input.fields),
        created_by: input.createdBy,
        created_at: input.at,
        updated_at: input.at,
        version: 1,
      };
      const names = Object.keys(row);
      const shape = `insert:${names.join(",")}`;
      // RETURNING (SQLite ≥ 3.35, PostgreSQL): the stored row without reading it again.
      const sql = sqlFor(shape, () => `insert into "mcp_servers" (${columns(names)}) values (${slots(1, names.length)}) returning ${SELECTED}`);
      try {
        const stored = await writeWithEvents(shape, { sql, values: Object.values(row), columns: SERVER_COLUMNS }, { id: input.id, workspaceId: input.workspaceId }, input.event, input.at);
        if (!stored) throw new Error(`record ${input.id} vanished right after insert`);
        return { ok: true, stored };
      } catch (err) {
        if (isUniqueViolation(err)) return collision(input.workspaceId, input.id, input.fields.name);
        throw err;
      }
    },

    async find(workspaces: readonly string[], id: string): Promise<StoredServer | null> {
      if (workspaces.length === 0) return null;
      // Every GET, PATCH and DELETE starts here: the SQL text is made once per workspace count.
      const sql = sqlFor(`find:${workspaces.length}`, () => `select ${SELECTED} from "mcp_servers" where "id" = ${slot(1)} and "workspace_id" in (${slots(2, workspaces.length)}) limit 1`);
      const [row] = await readRows(sql, [id, ...workspaces]);
      return row ? toStored(row) : null;
    },

    /** The record holding a namespace in a workspace (its unique index): the workspace endpoint's name lookup. */
    async findByNamespace(workspaceId: string, namespace: string): Promise<StoredServer | null> {
      const sql = sqlFor("find-namespace", () => `select ${SELECTED} from "mcp_servers" where "workspace_id" = ${slot(1)} and "namespace" = ${slot(2)} limit 1`);
      const [row] = await readRows(sql, [workspaceId, namespace]);
      return row ? toStored(row) : null;
    },

    /** The record whatever its workspace: for a cache that scopes it to each caller itself. */
    async findAnyWorkspace(id: string): Promise<StoredServer | null> {
      const [row] = await readRows(sqlFor("find-any", () => `select ${SELECTED} from "mcp_servers" where "id" = ${slot(1)} limit 1`), [id]);
      return row ? toStored(row) : null;
    },

    /** Newest first; `beforeId` is the last id of the previous page. */
    async list(workspaceId: string, limit: number, beforeId: string | null): Promise<StoredServer[]> {
      // The limit is written into the SQL, not bound (see LITERAL); it is an integer from the validated query.
      if (!Number.isSafeInteger(limit) || limit < 0) throw new Error(`list limit must be a non-negative integer, got ${limit}`);
      const sql = beforeId
        ? sqlFor(`list-after:${limit}`, () => `select ${SELECTED} from "mcp_servers" where "workspace_id" = ${slot(1)} and "id" < ${slot(2)} order by "id" desc limit ${limit}`)
        : sqlFor(`list:${limit}`, () => `select ${SELECTED} from "mcp_servers" where "workspace_id" = ${slot(1)} order by "id" desc limit ${limit}`);
      const rows = await readRows(sql, beforeId ? [workspaceId, beforeId] : [workspaceId]);
      return rows.map(toStored);
    },

    /** The REST list's page: wire records only, newest first, read from WIRE_COLUMNS and the sealed columns' flags. */
    async page(workspaceId: string, limit: number, beforeId: string | null): Promise<McpServer[]> {
      if (!Number.isSafeInteger(limit) || limit < 0) throw new Error(`list limit must be a non-negative integer, got ${limit}`);
      // PostgreSQL's rows come named (db.ts); SQLite's as one JSON array each (pageRowOf).
      const selected = () => (pg ? PAGE_SELECTED.map((e, i) => `${e} as "${PAGE_COLUMNS[i]}"`).join(", ") : `json_array(${PAGE_SELECTED.join(", ")})`);
      const sql = beforeId
        ? sqlFor(`page-after:${limit}`, () => `select ${selected()} from "mcp_servers" where "workspace_id" = ${slot(1)} and "id" < ${slot(2)} order by "id" desc limit ${limit}`)
        : sqlFor(`page:${limit}`, () => `select ${selected()} from "mcp_servers" where "workspace_id" = ${slot(1)} order by "id" desc limit ${limit}`);
      const values = beforeId ? [workspaceId, beforeId] : [workspaceId];
      if (pg) return (await statements.read<WireRow & SealedFlags>({ sql, values, columns: PAGE_COLUMNS })).map((row) => toWire(row, row));
      const rows = await statements.read<{ row: string }>({ sql, values, columns: ["row"] });
      return rows.map(({ row }) => {
        const named = pageRowOf(row);
        return toWire(named, named);
      });
    },

    /** Writes only if the record is still at `current.version`; "stale" tells the caller to re-read. */
    async update(
      current: StoredServer,
      fields: Partial<ServerFields>,
      secrets: SecretChanges,
      at: string,
      event?: AuditEventInput | AuditEventInput[],
    ): Promise<WriteOutcome> {
      const { id, workspaceId } = current.server;
      const to = destinationsAfter(current, fields);
      const moved = movedCredentials(current, to, secrets);
      if (moved.length > 0) throw new Error(`credentials ${moved.join(", ")} would move to another origin without being cleared`);
      const changes: Partial<ServerRow> = { ...fieldColumns(fields, keys), ...sealColumns(id, workspaceId, secrets, to) };
      // What discovery learned describes the old URL and endpoints: learn it again.
      if (["url", "authType", "oauthTokenEndpoint", "oauthAuthorizationEndpoint"].some((f) => f in fields)) {
        Object.assign(changes, { oauth_revocation_endpoint: null, oauth_token_auth_method: null, oauth_issuer: null, oauth_resource: null, oauth_discovery: null, oauth_step_up: null });
      }
      const set: Record<string, unknown> = { ...changes, updated_at: at, version: current.version + 1 };
      const names = Object.keys(set);
      const shape = `update:${names.join(",")}`;
      const sql = sqlFor(
        shape,
        () =>
          `update "mcp_servers" set ${names.map((c, i) => `"${c}" = ${slot(i + 1)}`).join(", ")} ` +
          `where "id" = ${slot(names.length + 1)} and "workspace_id" = ${slot(names.length + 2)} and "version" = ${slot(names.length + 3)} returning ${SELECTED}`,
      );
      try {
        const stored = await writeWithEvents(shape, { sql, values: [...Object.values(set), id, workspaceId, current.version], columns: SERVER_COLUMNS }, current.server, event, at);
        return stored ? { ok: true, stored } : { ok: false, reason: "stale" };
      } catch (err) {
        if (isUniqueViolation(err)) return collision(workspaceId, id, fields.name ?? current.server.name);
        throw err;
      }
    },

    /**
     * Records the outcome of a connection check, unless the record changed while the
     * check ran (its outcome would then describe a configuration that no longer exists).
     */
    async recordCheck(
      current: StoredServer,
      outcome: { connectorStatus: ConnectorStatus; checkedAt: string; error: ConnectionError | null },
      event?: AuditEventInput,
    ): Promise<boolean> {
      const { id, workspaceId } = current.server;
      return knex.transaction(async (trx) => {
        const n = await table(trx)
          .where({ id, workspace_id: workspaceId, version: current.version })
          .update({
            connector_status: outcome.connectorStatus,
            last_checked_at: outcome.checkedAt,
            last_error: storedError(outcome.error),
            version: current.version + 1,
          });
        if (n > 0) await record(trx, current.server, event, outcome.checkedAt);
        return n > 0;
      });
    },

    /** Deletes the record if it is still at `version` (any version when null). */
    async remove(current: StoredServer, version: number | null, at: string, event?: AuditEventInput): Promise<boolean> {
      const { id, workspaceId } = current.server;
      return knex.transaction(async (trx) => {
        const q = table(trx).where({ id, workspace_id: workspaceId });
        if (version !== null) q.andWhere({ version });
        const n = await q.delete();
        if (n > 0) await record(trx, current.server, event, at);
        // Each person's own connection goes with the record: no credential outlives it (issue 20).
        if (n > 0) await trx("user_connections").where({ server_id: id }).delete();
        // Its pinned tool definitions too: a new record of the same id cannot exist, but nothing should linger (issue 22).
        if (n > 0) await trx("tool_pins").where({ server_id: id }).delete();
        return n > 0;
      });
    },

    /**
     * Writes what the OAuth flows learn or obtain (endpoints, tokens, status) only if the record
     * is still at `current.version`: what was learned for one configuration is never written
     * onto another (issue 18). Null when the record changed or is gone; the caller re-reads.
     * `anyVersion` is for writes that only forget (disconnecting), which are safe on any version.
     */
    async writeOAuth(
      current: StoredServer,
      changes: {
        fields?: Partial<ServerFields>;
        internals?: Partial<OAuthInternals>;
        secrets?: SecretChanges;
        lastError?: ConnectionError | null;
        lastCheckedAt?: string;
      },
      at: string,
      event?: AuditEventInput,
      options: { anyVersion?: boolean } = {},
    ): Promise<StoredServer | null> {
      const { id, workspaceId } = current.server;
      const fields = changes.fields ?? {};
      const to = destinationsAfter(current, fields);
      const secrets = { ...changes.secrets };
      for (const field of movedCredentials(current, to, secrets)) {
        // Discovery filling in a token endpoint the record left open: the client secret was
        // given for "wherever the server's own metadata points", so it follows. Nothing else moves.
        if ((field !== "oauthClientSecret" && field !== "oauthClientPrivateKey") || current.server.oauthTokenEndpoint !== null) {
          throw new Error(`credential ${field} would move to another origin`);
        }
        secrets[field] = (await openSecrets(workspaceId, id))[field];
      }
      const row: Partial<ServerRow> = { ...fieldColumns(fields, keys), ...sealColumns(id, workspaceId, secrets, to) };
      const i = changes.internals ?? {};
      if (i.revocationEndpoint !== undefined) row.oauth_revocation_endpoint = i.revocationEndpoint;
      if (i.tokenAuthMethod !== undefined) row.oauth_token_auth_method = i.tokenAuthMethod;
      if (i.issuer !== undefined) row.oauth_issuer = i.issuer;
      if (i.resource !== undefined) row.oauth_resource = i.resource;
      if (i.discovery !== undefined) row.oauth_discovery = i.discovery === null ? null : JSON.stringify(i.discovery);
      if (i.tokenObtainedAt !== undefined) row.oauth_obtained_at = i.tokenObtainedAt;
      if (i.generation !== undefined) row.oauth_generation = i.generation;
      if (i.stepUp !== undefined) row.oauth_step_up = i.stepUp === null ? null : JSON.stringify(i.stepUp);
      if (changes.lastError !== undefined) row.last_error = storedError(changes.lastError);
      if (changes.lastCheckedAt !== undefined) row.last_checked_at = changes.lastCheckedAt;
      return knex.transaction(async (trx) => {
        const n = await table(trx)
          .where({ id, workspace_id: workspaceId, ...(options.anyVersion ? {} : { version: current.version }) })
          .update({ ...row, version: trx.raw("version + 1") } as never);
        if (n === 0) return null;
        await record(trx, current.server, event, at);
        return findIn(trx, workspaceId, id);
      });
    },

    /** Takes the per-server refresh lock until `until`, unless another holder's lock is still live. */
    async tryRefreshLock(current: StoredServer, until: string, now: string): Promise<boolean> {
      const { id, workspaceId } = current.server;
      const n = await table()
        .where({ id, workspace_id: workspaceId })
        .andWhere((q) => q.whereNull("oauth_refresh_lock_until").orWhere("oauth_refresh_lock_until", "<", now))
        .update({ oauth_refresh_lock_until: until });
      return n > 0;
    },

    async releaseRefreshLock(current: StoredServer): Promise<void> {
      await table().where({ id: current.server.id, workspace_id: current.server.workspaceId }).update({ oauth_refresh_lock_until: null });
    },

    openSecrets,


  };
}

export type McpServerRepo = ReturnType<typeof createMcpServerRepo>;
