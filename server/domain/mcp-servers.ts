// Use cases for MCP server records: the rules of create, read, list, update and delete.
import { newUlidFactory } from "../data/ids.js";
import type { AuditEventInput, AuditRepo } from "../data/audit-repo.js";
import { movedCredentials, type WriteOutcome, type McpServerRepo, type SecretChanges, type SecretField, type Secrets, type ServerFields, type StoredServer } from "../data/mcp-server-repo.js";
import { originOf } from "../data/secrets.js";
import type { AuthType, FieldChange, McpServer, McpServerCreate, McpServerEventList, McpServerList, McpServerPatch, ProblemFieldError } from "../wire.js";
import type { CursorCodec } from "./cursor.js";
import { Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed } from "./errors.js";
import { namespaceOf } from "./names.js";
import { signingAlgOf } from "../outbound/oauth-client.js";
import { connectorConfigProblems, headerProblems, nameKey, nulProblems, secretHeaderProblems, urlProblems } from "./rules.js";
import type { Actor } from "./tokens.js";
import { secretHeadersOf } from "./upstream.js";
import { planConnector, withoutNames, type ConnectorDef, type ConnectorPlan } from "./connectors.js";

const OAUTH_FIELDS = [
  "oauthClientId",
  "oauthClientSecret",
  "oauthTokenEndpoint",
  "oauthAuthorizationEndpoint",
  "oauthScopes",
  "oauthGrantType",
  "oauthClientAuthMethod",
  "oauthClientPrivateKey",
] as const;

// Changing any of these means the last connection check no longer describes the record.
const CONNECTION_FIELDS = ["url", "authType", "headers", "oauthClientId", "oauthTokenEndpoint", "oauthAuthorizationEndpoint", "oauthScopes", "oauthGrantType", "oauthClientAuthMethod"] as const;

const OAUTH_CLIENT_FIELDS = ["oauthClientId", "oauthTokenEndpoint", "oauthAuthorizationEndpoint", "oauthScopes", "oauthGrantType", "oauthClientAuthMethod"] as const;

const MAX_WRITE_ATTEMPTS = 5;

/** A record and the version its ETag names. */
export interface Versioned {
  server: McpServer;
  version: number;
}

/** `undefined`: no precondition; a number: the version the caller read; `null`: an If-Match that matches nothing. */
export type ExpectedVersion = number | null | undefined;

export interface McpServerServiceDeps {
  repo: McpServerRepo;
  audit: AuditRepo;
  cursors: CursorCodec;
  /** The connector catalog (issue 14); without it every connectorId is unknown. */
  connectors?: { find(name: string): Promise<ConnectorDef | null> };
  /** After a record is deleted: its tools leave every toolset (issue 22). */
  onRemoved?: (actor: Actor, server: { id: string; workspaceId: string }) => Promise<void>;
  now?: () => Date;
}

function requireWorkspace(actor: Actor, workspaceId: string) {
  if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
}

function nameTaken(name: string, workspaceId: string) {
  return new Conflict(`An MCP server named '${name}' already exists in workspace ${workspaceId}.`);
}

/** Problems with credentials given for another authType than the record will have. */
function misplacedCredentials(input: McpServerPatch, authType: AuthType): ProblemFieldError[] {
  const problems: ProblemFieldError[] = [];
  if (input.apiKey != null && authType !== "api_key") {
    problems.push({ path: "/apiKey", message: `is only accepted when authType is api_key (it is ${authType})` });
  }
  if (authType !== "oauth") {
    for (const field of OAUTH_FIELDS) {
      if (input[field] != null) problems.push({ path: `/${field}`, message: `is only accepted when authType is oauth (it is ${authType})` });
    }
  }
  return problems;
}

/** A private key must be one the product can sign RFC 7523 assertions with. */
function privateKeyProblems(input: McpServerPatch): ProblemFieldError[] {
  if (input.oauthClientPrivateKey == null) return [];
  return signingAlgOf(input.oauthClientPrivateKey)
    ? []
    : [{ path: "/oauthClientPrivateKey", message: "must be a PEM private key: EC P-256 or P-384, RSA, or Ed25519" }];
}

/** private_key_jwt needs a client id and a key; the next state of the record decides. */
function authMethodProblems(next: { oauthClientAuthMethod: string | null; oauthClientId: string | null }, hasPrivateKey: boolean): ProblemFieldError[] {
  if (next.oauthClientAuthMethod !== "private_key_jwt") return [];
  const problems: ProblemFieldError[] = [];
  if (!next.oauthClientId) problems.push({ path: "/oauthClientId", message: "is required when oauthClientAuthMethod is private_key_jwt" });
  if (!hasPrivateKey) problems.push({ path: "/oauthClientPrivateKey", message: "is required when oauthClientAuthMethod is private_key_jwt" });
  return problems;
}

function endpointProblems(input: McpServerPatch): ProblemFieldError[] {
  return [
    ...(input.url != null ? urlProblems(input.url, "/url") : []),
    ...(input.oauthTokenEndpoint != null ? urlProblems(input.oauthTokenEndpoint, "/oauthTokenEndpoint") : []),
    ...(input.oauthAuthorizationEndpoint != null ? urlProblems(input.oauthAuthorizationEndpoint, "/oauthAuthorizationEndpoint") : []),
  ];
}

function secretChange(field: SecretField, value: string | null, wasSet: boolean): FieldChange | null {
  if (value === null) return wasSet ? { name: field, change: "cleared" } : null;
  return { name: field, change: wasSet ? "replaced" : "set" };
}

function event(actor: Actor, type: AuditEventInput["type"], fields: FieldChange[]): AuditEventInput {
  return { type, actor: actor.userId, tokenId: actor.tokenId, requestId: actor.requestId ?? null, fields };
}

function checkVersion(current: StoredServer, expected: ExpectedVersion) {
  if (expected === undefined || expected === current.version) return;
  throw new PreconditionFailed(`If-Match does not match the current version "v${current.version}".`);
}


function fail(problems: ProblemFieldError[]) {
  if (problems.length > 0) throw new ValidationFailed(problems);
}

const USER_SCOPE_API_KEY = "is set per person on a connectionScope user record: each one sets theirs with PUT /api/mcp-servers/{id}/connections/me";

export function createMcpServerService({ repo, audit, cursors, connectors, onRemoved, now = () => new Date() }: McpServerServiceDeps) {
  const newId = newUlidFactory();
  const findConnector = async (name: string) => (connectors ? connectors.find(name) : null);

  /**
   * What a patch does to a connector-backed record: re-renders URL and headers when it names a
   * catalog connector or changes the inputs; `opened` holds the record's secrets when the patch
   * needs them. A connector the catalog does not hold renders nothing (issue 19): no plan.
   */
  async function connectorChange(current: StoredServer, patch: McpServerPatch) {
    const cur = current.server;
    const connectorId = patch.connectorId !== undefined ? patch.connectorId : cur.connectorId;
    const renders = connectorId !== null && (patch.connectorId !== undefined || patch.connectorConfig !== undefined);
    const opened = patch.secretHeaders || renders ? await repo.openSecrets(cur.workspaceId, cur.id) : null;
    if (!renders) return { plan: null, oldHeaderNames: [] as string[], opened };
    const def = await findConnector(connectorId);
    if (!def) return { plan: null, oldHeaderNames: [] as string[], opened };
    const same = connectorId === cur.connectorId;
    const old = !same && cur.connectorId ? await findConnector(cur.connectorId) : null;
    const stored = same && opened?.connectorSecrets ? (JSON.parse(opened.connectorSecrets) as Record<string, string>) : {};
    const config = patch.connectorConfig !== undefined ? (patch.connectorConfig ?? {}) : same ? (cur.connectorConfig ?? {}) : {};
    const { problems, plan } = planConnector(def, { stored, config, explicitUrl: patch.url, currentOrigin: originOf(cur.url) });
    fail(problems);
    return { plan, oldHeaderNames: old ? old.remotes.flatMap((r) => r.headers.map((h) => h.name)) : [], opened };
  }

  /** The 409 of a write whose name gives the workspace endpoint a namespace another server has (their tool names would collide). */
  function namespaceTaken(name: string, workspaceId: string, holder: { id: string; name: string } | null) {
    const namespace = namespaceOf(name);
    const other = holder ? `MCP server '${holder.name}' (${holder.id})` : "another MCP server";
    return new Conflict(
      `The name '${name}' gives the gateway namespace '${namespace}', which ${other} already has in workspace ${workspaceId}: their tool names would collide on the workspace endpoint. Choose another name.`,
    );
  }

  /** Maps a write refused by a unique index (name, or namespace: issue 18) to its 409. */
  function refusedWrite(outcome: Exclude<WriteOutcome, { ok: true }>, name: string, workspaceId: string): Conflict | null {
    if (outcome.reason === "name-taken") return nameTaken(name, workspaceId);
    if (outcome.reason === "namespace-taken") return namespaceTaken(name, workspaceId, outcome.holder);
    return null;
  }

  async function findOrThrow(actor: Actor, id: string): Promise<StoredServer> {
    const stored = await repo.find(actor.workspaces, id);
    if (!stored) throw new NotFound(`MCP server ${id}`);
    return stored;
  }

  /** Works out the next state of a record from a patch, or says why it cannot. `opened`: its secrets, when the patch merges into them. */
  function applyPatch(current: StoredServer, patch: McpServerPatch, opened: Secrets | null, plan: ConnectorPlan | null = null, oldHeaderNames: string[] = []) {
    const cur = current.server;
    const authType = patch.authType ?? cur.authType;
    const touchesConnector = patch.connectorId !== undefined || patch.connectorConfig !== undefined;
    const problems = [
      ...nulProblems(patch),
      ...endpointProblems(patch),
      ...misplacedCredentials(patch, authType),
      ...connectorConfigProblems(patch.connectorConfig),
      ...privateKeyProblems(patch),
    ];

    const next: ServerFields = {
      name: patch.name ?? cur.name,
      url: patch.url ?? plan?.url ?? cur.url,
      authType,
      oauthClientId: patch.oauthClientId !== undefined ? patch.oauthClientId : cur.oauthClientId,
      oauthTokenEndpoint: patch.oauthTokenEndpoint !== undefined ? patch.oauthTokenEndpoint : cur.oauthTokenEndpoint,
      oauthAuthorizationEndpoint:
        patch.oauthAuthorizationEndpoint !== undefined ? patch.oauthAuthorizationEndpoint : cur.oauthAuthorizationEndpoint,
      oauthScopes: patch.oauthScopes !== undefined ? patch.oauthScopes : cur.oauthScopes,
      oauthGrantType: patch.oauthGrantType !== undefined ? patch.oauthGrantType : cur.oauthGrantType,
      oauthClientAuthMethod: patch.oauthClientAuthMethod !== undefined ? patch.oauthClientAuthMethod : cur.oauthClientAuthMethod,
      oauthClientRegistration: cur.oauthClientRegistration,
      oauthExpiresAt: cur.oauthExpiresAt,
      headers: patch.headers === null ? {} : (patch.headers ?? cur.headers),
      connectorId: patch.connectorId !== undefined ? patch.connectorId : cur.connectorId,
      connectorConfig: patch.connectorConfig !== undefined ? patch.connectorConfig : cur.connectorConfig,
      // Only a write touching the connector fields decides their source; a catalog entry arriving later changes nothing until then.
      connectorSource: touchesConnector ? (plan ? "catalog" : null) : cur.connectorSource,
      connectorStatus: cur.connectorStatus,
      enabled: patch.enabled ?? cur.enabled,
      allowedTools: patch.allowedTools !== undefined ? patch.allowedTools : cur.allowedTools,
      connectionScope: patch.connectionScope ?? cur.connectionScope,
      toolPinning: patch.toolPinning ?? cur.toolPinning,
      secretHeaderNames: cur.secretHeaderNames,
      connectorSecretsSet: cur.connectorSecretsSet,
    };
    // Headers the connector renders replace those of its (or the previous connector's) names.
    const connectorHeaderNames = plan ? [...plan.headerNames, ...oldHeaderNames] : [];
    if (plan) {
      next.headers = { ...withoutNames(next.headers, connectorHeaderNames), ...plan.headers };
      next.connectorConfig = plan.config;
    }
    const movedAway: SecretField[] = [];
    const secrets: SecretChanges = {};
    if (patch.apiKey !== undefined) secrets.apiKey = patch.apiKey;
    if (patch.oauthClientSecret !== undefined) secrets.oauthClientSecret = patch.oauthClientSecret;
    if (patch.oauthClientPrivateKey !== undefined) secrets.oauthClientPrivateKey = patch.oauthClientPrivateKey;
    if (patch.secretHeaders !== undefined || plan) {
      // A value sets, null removes, left out keeps. Moving to another origin keeps only those given again.
      const originMoves = problems.length === 0 && originOf(next.url) !== originOf(cur.url);
      let merged = patch.secretHeaders === null || originMoves || !opened ? {} : secretHeadersOf(opened);
      if (originMoves && patch.secretHeaders === undefined && current.secretsSet.secretHeaders) movedAway.push("secretHeaders");
      for (const [name, value] of Object.entries(patch.secretHeaders ?? {})) {
        for (const known of Object.keys(merged)) if (known.toLowerCase() === name.toLowerCase()) delete merged[known];
        if (value !== null) merged[name] = value;
      }
      if (plan) merged = { ...withoutNames(merged, connectorHeaderNames), ...plan.secretHeaders };
      next.secretHeaderNames = Object.keys(merged);
      const sealed = next.secretHeaderNames.length > 0 ? JSON.stringify(merged) : null;
      if (sealed !== (opened?.secretHeaders ?? null) || !opened) {
        if (sealed !== null) secrets.secretHeaders = sealed;
        else if (current.secretsSet.secretHeaders) secrets.secretHeaders = null;
      }
    }
    if (plan) {
      next.connectorSecretsSet = Object.keys(plan.secretInputs);
      const sealed = next.connectorSecretsSet.length > 0 ? JSON.stringify(plan.secretInputs) : null;
      if (sealed !== (opened?.connectorSecrets ?? null)) secrets.connectorSecrets = sealed;
      if (plan.droppedSecrets) movedAway.push("connectorSecrets");
    } else if (touchesConnector && current.secretsSet.connectorSecrets) {
      // No connector, or one the catalog does not hold: no input is known to be secret.
      secrets.connectorSecrets = null;
      next.connectorSecretsSet = [];
    }

    // Switching authType away drops the old type's credentials.
    if (authType !== "api_key" && current.secretsSet.apiKey) secrets.apiKey = null;
    if (authType !== "oauth") {
      next.oauthClientId = next.oauthTokenEndpoint = next.oauthAuthorizationEndpoint = next.oauthScopes = next.oauthExpiresAt = next.oauthGrantType = next.oauthClientRegistration = next.oauthClientAuthMethod = null;
      for (const field of ["oauthClientSecret", "oauthAccessToken", "oauthRefreshToken", "oauthClientPrivateKey"] as const) {
        if (current.secretsSet[field]) secrets[field] = null;
      }
    }

    // A URL with problems has no origin to compare; the patch fails on those problems anyway.
    const clearedByMove = problems.length === 0 ? movedCredentials(current, next, secrets) : [];
    for (const field of clearedByMove) secrets[field] = null;
    if (clearedByMove.includes("secretHeaders")) next.secretHeaderNames = [];
    if (clearedByMove.includes("connectorSecrets")) next.connectorSecretsSet = [];
    clearedByMove.push(...movedAway);

    // On a user-scope record each person brings their own credential: the record's own is dropped.
    if (next.connectionScope === "user") {
      if (typeof patch.apiKey === "string") problems.push({ path: "/apiKey", message: USER_SCOPE_API_KEY });
      for (const field of ["apiKey", "oauthAccessToken", "oauthRefreshToken"] as const) if (current.secretsSet[field]) secrets[field] = null;
      if (cur.connectionScope !== "user") next.oauthExpiresAt = null;
    }
    const hasApiKey = secrets.apiKey !== undefined ? secrets.apiKey !== null : current.secretsSet.apiKey;
    if (authType === "api_key" && next.connectionScope !== "user" && !hasApiKey && !clearedByMove.includes("apiKey")) {
      problems.push({ path: "/apiKey", message: patch.apiKey === null ? "cannot be cleared while authType is api_key" : "is required when authType is api_key" });
    }
    // Endpoints left out are discovered (RFC 9728 / RFC 8414) when the OAuth flow starts.
    // Without a client id, the product identifies itself by metadata document or registers (issue 11).
    problems.push(...headerProblems(next.headers, authType));
    problems.push(...secretHeaderProblems(Object.fromEntries(next.secretHeaderNames.map((n) => [n, ""])), next.headers, authType));
    const hasPrivateKey = secrets.oauthClientPrivateKey !== undefined ? secrets.oauthClientPrivateKey !== null : current.secretsSet.oauthClientPrivateKey;
    if (problems.length === 0) problems.push(...authMethodProblems(next, hasPrivateKey));
    fail(problems);

    // Keep only what really changes, so that `{}` (or a no-op patch) writes nothing.
    const changed: Partial<ServerFields> = {};
    for (const key of Object.keys(next) as (keyof ServerFields)[]) {
      if (JSON.stringify(next[key]) !== JSON.stringify(cur[key])) (changed as Record<string, unknown>)[key] = next[key];
    }
    const credentialsChanged = Object.keys(secrets).length > 0;
    if (credentialsChanged || CONNECTION_FIELDS.some((f) => f in changed)) changed.connectorStatus = "";
    // Tokens belong to the OAuth client and endpoints that obtained them.
    const oauthClientChanged = OAUTH_CLIENT_FIELDS.some((f) => f in changed) || secrets.oauthClientSecret !== undefined || secrets.oauthClientPrivateKey !== undefined;
    const tokensCleared = clearedByMove.includes("oauthAccessToken") || clearedByMove.includes("oauthRefreshToken");
    if (authType === "oauth" && cur.authType === "oauth" && (oauthClientChanged || tokensCleared)) {
      if (current.secretsSet.oauthAccessToken) secrets.oauthAccessToken = null;
      if (current.secretsSet.oauthRefreshToken) secrets.oauthRefreshToken = null;
      if (cur.oauthExpiresAt !== null) changed.oauthExpiresAt = null;
      changed.connectorStatus = "disconnected";
    }
    if (changed.connectorStatus === cur.connectorStatus) delete changed.connectorStatus;
    return { changed, secrets, clearedByMove };
  }

  return {
    async create(actor: Actor, input: McpServerCreate): Promise<Versioned> {
      requireWorkspace(actor, input.workspaceId);
      const authType = input.authType ?? "none";
      let headers = input.headers ?? {};
      let secretHeaders = input.secretHeaders ?? {};
      const problems = [
        ...nulProblems(input),
        ...endpointProblems(input),
        ...misplacedCredentials(input, authType),
        ...connectorConfigProblems(input.connectorConfig),
        ...privateKeyProblems(input),
      ];
      const scope = input.connectionScope ?? "workspace";
      if (authType === "api_key" && scope === "workspace" && input.apiKey == null) problems.push({ path: "/apiKey", message: "is required when authType is api_key" });
      if (scope === "user" && input.apiKey != null) problems.push({ path: "/apiKey", message: USER_SCOPE_API_KEY });
      if (authType === "oauth") problems.push(...authMethodProblems({ oauthClientAuthMethod: input.oauthClientAuthMethod ?? null, oauthClientId: input.oauthClientId ?? null }, input.oauthClientPrivateKey != null));
      // A connector renders the URL (unless given) and headers from its inputs.
      let plan: ConnectorPlan | null = null;
      let fromCatalog = false;
      if (input.connectorId != null) {
        // A connector the catalog does not hold is stored as given, as the seed allows (issue 19).
        const def = await findConnector(input.connectorId);
        fromCatalog = def !== null;
        if (def) {
          const planned = planConnector(def, { stored: {}, config: input.connectorConfig ?? {}, explicitUrl: input.url, currentOrigin: null });
          problems.push(...planned.problems);
          plan = planned.plan;
        }
      }
      if (plan) {
        headers = { ...withoutNames(headers, plan.headerNames), ...plan.headers };
        secretHeaders = { ...withoutNames(secretHeaders, plan.headerNames), ...plan.secretHeaders };
      }
      problems.push(...headerProblems(headers, authType));
      problems.push(...secretHeaderProblems(secretHeaders, headers, authType));
      if (input.url == null && !fromCatalog) problems.push({ path: "/url", message: "is required (unless connectorId names a connector of the catalog)" });
      fail(problems);
      const url = (input.url ?? plan?.url)!;

      const outcome = await repo.insert({
        id: `mcp_${newId()}`,
        workspaceId: input.workspaceId,
        fields: {
          name: input.name,
          url,
          authType,
          oauthClientId: input.oauthClientId ?? null,
          oauthTokenEndpoint: input.oauthTokenEndpoint ?? null,
          oauthAuthorizationEndpoint: input.oauthAuthorizationEndpoint ?? null,
          oauthScopes: input.oauthScopes ?? null,
          oauthGrantType: input.oauthGrantType ?? null,
          oauthClientAuthMethod: input.oauthClientAuthMethod ?? null,
          oauthClientRegistration: null,
          oauthExpiresAt: null,
          headers,
          connectorId: input.connectorId ?? null,
          connectorConfig: plan ? plan.config : (input.connectorConfig ?? null),
          connectorSource: plan ? "catalog" : null,
          connectorStatus: "",
          enabled: input.enabled ?? true,
          allowedTools: input.allowedTools ?? null,
          connectionScope: input.connectionScope ?? "workspace",
          // New records pin tool definitions; records from before issue 22 keep false (migration 018).
          toolPinning: input.toolPinning ?? true,
          secretHeaderNames: Object.keys(secretHeaders),
          connectorSecretsSet: plan ? Object.keys(plan.secretInputs) : [],
        },
        secrets: {
          apiKey: input.apiKey ?? null,
          oauthClientSecret: input.oauthClientSecret ?? null,
          oauthClientPrivateKey: input.oauthClientPrivateKey ?? null,
          secretHeaders: Object.keys(secretHeaders).length > 0 ? JSON.stringify(secretHeaders) : null,
          connectorSecrets: plan && Object.keys(plan.secretInputs).length > 0 ? JSON.stringify(plan.secretInputs) : null,
        },
        createdBy: actor.userId,
        at: now().toISOString(),
        event: event(
          actor,
          "created",
          Object.entries(input)
            .filter(([k, v]) => v != null && k !== "workspaceId")
            .map(([name]) => ({ name, change: "set" as const })),
        ),
      });
      if (!outcome.ok) throw refusedWrite(outcome, input.name, input.workspaceId) ?? new Conflict(`MCP server ${input.name} could not be created; try again.`);
      return outcome.stored;
    },

    async get(actor: Actor, id: string): Promise<Versioned> {
      return findOrThrow(actor, id);
    },

    async list(actor: Actor, query: { workspaceId: string; limit?: number; cursor?: string }): Promise<McpServerList> {
      requireWorkspace(actor, query.workspaceId);
      const limit = query.limit ?? 20;
      const scope = `mcp-servers:${query.workspaceId}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      // One extra row tells whether another page exists.
      const rows = await repo.page(query.workspaceId, limit + 1, after);
      const page = rows.length > limit ? rows.slice(0, limit) : rows;
      const nextCursor = rows.length > limit ? cursors.encode(scope, page[page.length - 1].id) : null;
      return { data: page, nextCursor };
    },

    async update(actor: Actor, id: string, patch: McpServerPatch, expected?: ExpectedVersion): Promise<Versioned> {
      for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
        const current = await findOrThrow(actor, id);
        checkVersion(current, expected);
        const { plan, oldHeaderNames, opened } = await connectorChange(current, patch);
        const { changed, secrets, clearedByMove } = applyPatch(current, patch, opened, plan, oldHeaderNames);
        if (Object.keys(changed).length === 0 && Object.keys(secrets).length === 0) return current;
        const fields: FieldChange[] = Object.keys(changed)
          .filter((k) => !["connectorStatus", "connectorSource", "secretHeaderNames", "connectorSecretsSet"].includes(k))
          .map((name) => ({ name, change: "changed" as const }));
        const given = (Object.entries(secrets) as [SecretField, string | null][]).filter(([field]) => !clearedByMove.includes(field));
        for (const [field, value] of given) {
          const change = secretChange(field, value, current.secretsSet[field]);
          if (change) fields.push(change);
        }
        const credentials = "authType" in changed || given.length > 0;
        const events = [event(actor, credentials ? "credentials_changed" : "updated", fields)];
        if (clearedByMove.length > 0) {
          events.push(event(actor, "credentials_cleared", clearedByMove.map((name) => ({ name, change: "cleared" as const }))));
        }
        const outcome = await repo.update(current, changed, secrets, now().toISOString(), events);
        if (outcome.ok) return outcome.stored;
        const refused = refusedWrite(outcome, changed.name ?? current.server.name, current.server.workspaceId);
        if (refused) throw refused;
        // "stale": someone else wrote in between. With If-Match that is a failed precondition;
        // without, apply the patch to what they wrote.
        if (expected !== undefined) throw new PreconditionFailed(`MCP server ${id} changed while it was being updated.`);
      }
      throw new Conflict(`MCP server ${id} is being changed by others; try again.`);
    },

    async listEvents(actor: Actor, id: string, query: { limit?: number; cursor?: string }): Promise<McpServerEventList> {
      const limit = query.limit ?? 20;
      const scope = `events:${id}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await audit.list(actor.workspaces, id, limit + 1, after);
      if (rows.length === 0 && !after) throw new NotFound(`MCP server ${id}`);
      const page = rows.slice(0, limit);
      return { data: page, nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].id) : null };
    },

    /** The record's plaintext credentials, for outbound calls only; never for a response. */
    openSecrets: (workspaceId: string, id: string) => repo.openSecrets(workspaceId, id),

    async remove(actor: Actor, id: string, expected?: ExpectedVersion): Promise<void> {
      const current = await findOrThrow(actor, id);
      checkVersion(current, expected);
      const removed = await repo.remove(current, expected === undefined ? null : current.version, now().toISOString(), event(actor, "deleted", []));
      if (removed) {
        await onRemoved?.(actor, { id, workspaceId: current.server.workspaceId });
        return;
      }
      if (expected !== undefined && (await repo.find(actor.workspaces, id))) throw new PreconditionFailed(`MCP server ${id} changed while it was being deleted.`);
      throw new NotFound(`MCP server ${id}`);
    },
  };
}

export type McpServerService = ReturnType<typeof createMcpServerService>;
