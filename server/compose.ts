// The composition root: opens the store and wires data → domain → http. main.ts, the
// token CLI and the tests all go through it, so they run the same product.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { buildApp, type AppDeps } from "./app.js";
import type { Config } from "./config.js";
import { isUnavailable, migrate, MIGRATION_ADVISORY_LOCK, openDatabase, type Database } from "./data/db.js";
import { createMcpServerRepo } from "./data/mcp-server-repo.js";
import { createConnectorRepo } from "./data/connector-repo.js";
import { createConnectorService } from "./domain/connectors.js";
import { createSecretBox, parseKey, type SecretBox } from "./data/secrets.js";
import { createAuditRepo } from "./data/audit-repo.js";
import { bufferAppends } from "./domain/audit-buffer.js";
import { cacheRecordReads } from "./domain/gateway/record-cache.js";
import { withLfEventStreams } from "./outbound/sse.js";
import { sealLegacyToOrigins } from "./data/key-rotation.js";
import { createIdempotencyRepo } from "./data/idempotency-repo.js";
import { createRateLimitRepo } from "./data/rate-limit-repo.js";
import { createTokenRepo } from "./data/token-repo.js";
import { createSessionRepo } from "./data/session-repo.js";
import { createEndedSessionRepo, type EndedSessionRepo } from "./data/ended-session-repo.js";
import { createSessionSubscriptionRepo, type SessionSubscriptionRepo } from "./data/session-subscription-repo.js";
import { createSessionLogLevelRepo, type SessionLogLevelRepo } from "./data/session-log-level-repo.js";
import { createSessionService } from "./domain/sessions.js";
import { createUserConnectionRepo } from "./data/user-connection-repo.js";
import { createUserConnectionService, personalised } from "./domain/user-connections.js";
import { createIdempotency } from "./domain/idempotency.js";
import { createOAuthService } from "./domain/oauth/index.js";
import { createOAuthStateRepo } from "./data/oauth-state-repo.js";
import { createOAuthRegistrationRepo } from "./data/oauth-registration-repo.js";
import { createOAuthClient, isGrantRejected, OAUTH_MAX_BODY_BYTES } from "./outbound/oauth-client.js";
import { createRateLimiter } from "./domain/rate-limit.js";
import { createConnectionService } from "./domain/connections.js";
import { createCursorCodec } from "./domain/cursor.js";
import { createMcpServerService } from "./domain/mcp-servers.js";
import { createActivityService } from "./domain/activity.js";
import { createHealthService } from "./domain/health.js";
import { createHealthRepo } from "./data/health-repo.js";
import { createGatewayService } from "./domain/gateway/service.js";
import { createToolPinRepo } from "./data/tool-pin-repo.js";
import { createPinGuards } from "./domain/gateway/pins/guard.js";
import { createToolPinService } from "./domain/gateway/pins/service.js";
import { createSessionCodec, sessionKey } from "./domain/gateway/session-codec.js";
import { createWorkspaceGateway } from "./domain/workspace-gateway.js";
import type { UpstreamPool } from "./outbound/upstream-pool.js";
import { nameKey } from "./domain/rules.js";
import { namespaceOf } from "./domain/names.js";
import { createEventRetention, type EventRetention } from "./domain/event-retention.js";
import { cacheTokenLookups } from "./domain/token-cache.js";
import { createTokenService } from "./domain/tokens.js";
import { createToolsetService } from "./domain/toolsets.js";
import { createToolsetRepo } from "./data/toolset-repo.js";
import { createGuardedFetch, describeOutboundError, type LiteFetch } from "./outbound/guarded-fetch.js";
import { RateLimited } from "./domain/errors.js";
import { telemetry } from "./observability/hooks.js";
import { observeGateway, observeOAuthClient, observeRateLimiter, observeUpstream, observeWorkspace } from "./observability/interceptors.js";

/** The encryption key: from the environment, or on SQLite one generated once beside the database. */
export function resolveEncryptionKey(config: Config, db: Database, logger: Logger): Buffer {
  if (config.encryptionKey) return parseKey(config.encryptionKey, "MCP_API_ENCRYPTION_KEY");
  if (db.dialect !== "sqlite") {
    throw new Error("MCP_API_ENCRYPTION_KEY is required on PostgreSQL: set it to 32 random bytes in base64 (`openssl rand -base64 32`)");
  }
  if (!db.sqlitePath) {
    logger.warn("MCP_API_ENCRYPTION_KEY is unset and the database is in memory: using a throwaway key");
    return randomBytes(32);
  }
  const keyPath = join(dirname(db.sqlitePath), "mcp-api.key");
  if (!existsSync(keyPath)) {
    writeFileSync(keyPath, randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
    logger.warn({ keyPath }, "MCP_API_ENCRYPTION_KEY is unset: generated a key beside the database; set MCP_API_ENCRYPTION_KEY in production");
  } else {
    logger.warn({ keyPath }, "MCP_API_ENCRYPTION_KEY is unset: using the key file beside the database");
  }
  chmodSync(keyPath, 0o600);
  return parseKey(readFileSync(keyPath, "utf8"), keyPath);
}

/** Credentials sealed before origin binding are bound to where their record points now (once). */
async function bindLegacySecrets(db: Database, box: SecretBox, logger: Logger) {
  const outcome = await sealLegacyToOrigins(db.knex, box);
  if (outcome.rotated > 0) logger.info({ resealed: outcome.rotated }, "bound stored credentials to their destination origins");
  for (const f of outcome.failed) logger.error({ id: f.id, field: f.field, reason: f.reason }, "a stored credential could not be bound to its origin");
}

/** Whether the store is migrated and reachable; requests get 503 until it is. */
export interface Readiness {
  migrated(): boolean;
  check(): Promise<boolean>;
}

export interface Services {
  db: Database;
  box: SecretBox;
  readiness: Readiness;
  tokens: ReturnType<typeof createTokenService>;
  sessions: ReturnType<typeof createSessionService>;
  userConnections: ReturnType<typeof createUserConnectionService>;
  servers: ReturnType<typeof createMcpServerService>;
  toolsets: ReturnType<typeof createToolsetService>;
  activity: ReturnType<typeof createActivityService>;
  health: ReturnType<typeof createHealthService>;
  connections: ReturnType<typeof createConnectionService>;
  toolPins: ReturnType<typeof createToolPinService>;
  connectors: ReturnType<typeof createConnectorService>;
  idempotency: ReturnType<typeof createIdempotency>;
  rateLimiter: ReturnType<typeof createRateLimiter>;
  /** Removes events past MCP_API_EVENT_RETENTION_DAYS; main starts its timer (CLIs do not). */
  retention: EventRetention;
  oauth: ReturnType<typeof createOAuthService>;
  gateway: AppDeps["gateway"];
  /** The process's kept upstream MCP sessions; closed at shutdown. */
  upstreams: UpstreamPool;
}

export interface OpenOptions {
  /** The public base URL when MCP_API_PUBLIC_URL is unset (main passes http://localhost:<port>). */
  publicUrl?: () => string;
  /** Keep retrying migrations while the store is unavailable instead of failing (the server does; the CLI does not). */
  waitForDatabase?: boolean;
  retryMs?: number;
}

export async function openServices(config: Config, logger: Logger, options: OpenOptions = {}): Promise<Services> {
  const db = openDatabase(config.databaseUrl, config.database);
  let migrated = false;
  try {
    const key = resolveEncryptionKey(config, db, logger);
    try {
      await migrateWhenUnlocked(db, logger);
      migrated = true;
    } catch (err) {
      if (!options.waitForDatabase || !isUnavailable(err)) throw err;
      logger.error({ err }, "database unavailable at start-up: serving 503 and retrying");
      retryMigrations(db, logger, options.retryMs ?? 1000, () => (migrated = true));
    }
    const previous = config.previousEncryptionKeys.map((k, i) => parseKey(k, `MCP_API_ENCRYPTION_KEYS_PREVIOUS[${i}]`));
    const box = createSecretBox([key, ...previous]);
    if (migrated) await bindLegacySecrets(db, box, logger);
    const cursorKey = createHash("sha256").update("cursor-signing:").update(key).digest();
    // Every use case writes through `records.repo`; the gateway reads through `records.cached`.
    const records = cacheRecordReads(createMcpServerRepo(db.knex, box, nameKey, namespaceOf));
    const repo = records.repo;
    const audit = bufferAppends(createAuditRepo(db.knex), {
      flushMs: config.auditFlushMs,
      onError: (err, dropped) => logger.error({ err, dropped }, "could not write tool_called events; keeping them to try again"),
    });
    const connectors = createConnectorService({ repo: createConnectorRepo(db.knex), cursors: createCursorCodec(cursorKey) });
    const outboundFetch = createGuardedFetch({
      allowPrivateNetwork: config.allowPrivateNetwork,
      timeoutMs: config.connectTimeoutMs,
      maxBodyBytes: config.maxResponseBytes,
    });
    // The SDKs' SSE parser is linear only on LF line endings (outbound/sse.ts).
    const sdkFetch = withLfEventStreams(outboundFetch);
    const tokenRepo = createTokenRepo(db.knex);
    const endedSessions = createEndedSessionRepo(db.knex);
    const sessionSubscriptions = createSessionSubscriptionRepo(db.knex);
    const sessionLogLevels = createSessionLogLevelRepo(db.knex);
    const userConnectionRepo = createUserConnectionRepo(db.knex, box);
    // Pinned tool definitions (issue 22): one in-memory copy per process, shared by every gateway endpoint and the /tools check.
    const toolPinRepo = createToolPinRepo(db.knex);
    const pinGuards = createPinGuards({ repo: toolPinRepo, onError: (err) => logger.error({ err }, "could not write a tool pin; re-reading the pins") });
    const publicUrl = () => config.publicUrl ?? options.publicUrl?.() ?? `http://localhost:${config.port}`;
    const oauth = createOAuthService({
      userConnections: userConnectionRepo,
      repo,
      states: createOAuthStateRepo(db.knex, box),
      registrations: createOAuthRegistrationRepo(db.knex, box),
      tokens: tokenRepo,
      client: observeOAuthClient(createOAuthClient(outboundFetch.withLimits({ maxBodyBytes: OAUTH_MAX_BODY_BYTES })), isGrantRejected),
      publicUrl: () => config.publicUrl ?? options.publicUrl?.() ?? `http://localhost:${config.port}`,
      returnUrlPrefixes: config.oauthReturnUrlPrefixes,
    });
    const userConnections = createUserConnectionService({
      repo,
      connections: userConnectionRepo,
      audit: createAuditRepo(db.knex),
      cursors: createCursorCodec(cursorKey),
      userAccessToken: (stored, userId) => oauth.userAccessToken(stored, userId),
      revokeUserTokens: (stored, tokens) => oauth.revokeUserTokens(stored, tokens),
      insufficientScope: (stored, userId, demanded) => oauth.insufficientScope(stored, userId, demanded),
      authorizationServerMoved: (stored) => oauth.authorizationServerMoved(stored),
      publicUrl,
    });
    const gw = gatewayDeps(config, () => new URL(config.publicUrl ?? options.publicUrl?.() ?? `http://localhost:${config.port}`).origin, {
      repo: records.cached,
      audit,
      oauthToken: (stored) => oauth.accessToken(stored),
      sessions: createSessionCodec([key, ...previous].map(sessionKey)),
      userCredential: (stored, userId) => userConnections.credentialFor(stored, userId),
      pins: pinGuards,
      stepUp: (stored, userId, demanded) => userConnections.stepUp(stored, userId, demanded),
      migrated: (stored, known) => userConnections.migrated(stored, known),
    }, endedSessions, sessionSubscriptions, sessionLogLevels);
    const toolsetRepo = createToolsetRepo(db.knex);
    const toolsets = createToolsetService({ repo: toolsetRepo, servers: repo, workspace: gw.gateway.workspace, cursors: createCursorCodec(cursorKey) });
    return {
      userConnections,
      toolsets,
      // Closing the store first writes the tool_called events still waiting (graceful shutdown loses none).
      db: {
        ...db,
        async close() {
          await audit.close().catch((err) => logger.error({ err, events: audit.waiting() }, "could not write tool_called events at shutdown"));
          await db.close();
        },
      },
      box,
      readiness: {
        migrated: () => migrated,
        async check() {
          if (!migrated) return false;
          try {
            await db.knex.raw("select 1");
            return true;
          } catch {
            return false;
          }
        },
      },
      tokens: createTokenService(cacheTokenLookups(tokenRepo), { cursors: createCursorCodec(cursorKey), toolsetWorkspace: (id) => toolsetRepo.workspaceOf(id) }),
      sessions: createSessionService(createSessionRepo(db.knex)),
      connectors,
      activity: createActivityService({ audit, cursors: createCursorCodec(cursorKey) }),
      health: createHealthService({ repo: createHealthRepo(db.knex), flushEvents: () => audit.flush() }),
      servers: personalised(createMcpServerService({ repo, audit, cursors: createCursorCodec(cursorKey), connectors, onRemoved: (actor, server) => toolsets.serverDeleted(actor, server) }), userConnections),
      idempotency: createIdempotency(createIdempotencyRepo(db.knex), createHash("sha256").update("idempotency-fingerprint:").update(key).digest()),
      rateLimiter: observeRateLimiter(createRateLimiter(createRateLimitRepo(db.knex), config.rateLimitPerMinute), (err) => err instanceof RateLimited),
      retention: createEventRetention(createAuditRepo(db.knex), {
        days: config.eventRetentionDays,
        onError: (err) => (migrated ? logger.warn({ err }, "removing audit events past retention failed; retrying at the next sweep") : undefined),
        onSwept: (removed) => (removed > 0 ? logger.info({ removed, days: config.eventRetentionDays }, "audit events past retention removed") : undefined),
        // A workspace-endpoint agent session lasts MCP_API_WORKSPACE_SESSION_MAX_MS: its end and its subscriptions are of no use after.
        also: [endedSessions, sessionSubscriptions, sessionLogLevels].map((repo) => ({ repo, keepMs: config.workspaceSessionMaxMs })),
      }),
      oauth,
      ...gw,
      toolPins: createToolPinService({ servers: repo, pins: toolPinRepo, guards: pinGuards, cursors: createCursorCodec(cursorKey) }),
      connections: createConnectionService({
        repo,
        probe: async (target, signal) => (await mcpProbe()).probeMcpServer(target, { fetch: sdkFetch, timeoutMs: config.connectTimeoutMs, signal }),
        oauthToken: (stored) => oauth.accessToken(stored),
        userCredential: (stored, userId) => userConnections.credentialFor(stored, userId),
        pins: pinGuards,
        stepUp: (stored, userId, demanded) => userConnections.stepUp(stored, userId, demanded),
        migrated: (stored) => userConnections.migrated(stored),
      }),
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

// Knex refuses, rather than waits, when another process holds the migration lock (several
// processes starting together on one PostgreSQL), and two processes creating its bookkeeping
// tables at the same moment collide: wait and try again, for a bounded time.
async function migrateWhenUnlocked(db: Database, logger: Logger, attempts = 60): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await migrateSerialized(db);
      return;
    } catch (err) {
      const code = (err as { code?: string })?.code;
      const locked =
        (err as Error)?.name === "MigrationLocked" ||
        /already locked/i.test((err as Error)?.message ?? "") ||
        code === "23505" || // unique_violation: the same table type created twice at once
        code === "42P07" || // duplicate_table
        code === "42710"; // duplicate_object (its row type)
      if (locked && i >= attempts) {
        throw new Error("the migration lock is still held after 30 s; if the process holding it was killed, clear it with `npm run -s db -- unlock`", { cause: err });
      }
      if (!locked) throw err;
      if (i === 1) logger.info("another process is migrating the database; waiting");
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

// Knex's own lock is a row it inserts when its table is empty: processes starting together on a
// fresh PostgreSQL database can insert two and then never agree. A transaction-scoped advisory
// lock makes them take turns (the migrations run on other pooled connections meanwhile).

// SQLite has no advisory lock, and Knex makes its bookkeeping tables by checking, then creating:
// processes starting together on a fresh file collide ("table `knex_migrations` already exists"),
// or insert two lock rows, after which none can ever take the lock. The same tables made first
// with statements that are each atomic leave Knex nothing to race on; its lock row then makes
// them take turns.
const SQLITE_MIGRATION_TABLES = [
  "create table if not exists `knex_migrations` (`id` integer not null primary key autoincrement, `name` varchar(255), `batch` integer, `migration_time` datetime)",
  "create table if not exists `knex_migrations_lock` (`index` integer not null primary key autoincrement, `is_locked` integer)",
  "insert into `knex_migrations_lock` (`is_locked`) select 0 where not exists (select 1 from `knex_migrations_lock`)",
];

async function migrateSerialized(db: Database): Promise<void> {
  if (db.dialect !== "postgres") {
    for (const statement of SQLITE_MIGRATION_TABLES) await db.knex.raw(statement);
    await migrate(db);
    return;
  }
  await db.knex.transaction(async (trx) => {
    await trx.raw("select pg_advisory_xact_lock(?)", [MIGRATION_ADVISORY_LOCK]);
    await migrate(db);
  });
}

function retryMigrations(db: Database, logger: Logger, retryMs: number, done: () => void) {
  const attempt = async () => {
    try {
      await migrateWhenUnlocked(db, logger);
      logger.info("database reachable again: migrations applied, ready");
      done();
    } catch (err) {
      if (!isUnavailable(err)) logger.error({ err }, "migration failed");
      setTimeout(attempt, retryMs).unref();
    }
  };
  setTimeout(attempt, retryMs).unref();
}

// The MCP SDKs (and zod under them) load when a check or the workspace endpoint first needs
// them, not at start-up: they are a fifth of the server's start-up otherwise.
const mcpProbe = () => import("./outbound/mcp-probe.js");
let upstreamModule: typeof import("./outbound/mcp-upstream.js") | undefined;

/** The upstream session pool, created (with the SDK) at its first use. */
function lazyUpstreamPool(options: Parameters<typeof import("./outbound/upstream-pool.js").createUpstreamPool>[0]): UpstreamPool {
  let pool: UpstreamPool | undefined;
  let loading: Promise<UpstreamPool> | undefined;
  // One promise, so that requests arriving together share one pool.
  const ready = () =>
    (loading ??= (async () => {
      upstreamModule ??= await import("./outbound/mcp-upstream.js");
      return (pool = (await import("./outbound/upstream-pool.js")).createUpstreamPool(options));
    })());
  return {
    use: async (target, timeoutMs, use) => (await ready()).use(target, timeoutMs, use),
    watch: async (target, timeoutMs, onChange) => (await ready()).watch(target, timeoutMs, onChange),
    answer: async (target, reply, message, timeoutMs) => (await ready()).answer(target, reply, message, timeoutMs),
    size: () => pool?.size() ?? 0,
    close: async () => pool?.close(),
  };
}

/** The MCP gateway: the per-server relay and the workspace endpoint over one gateway service. */
function gatewayDeps(config: Config, publicOrigin: () => string, deps: Parameters<typeof createGatewayService>[0], endedSessions: EndedSessionRepo, subscriptionStore: SessionSubscriptionRepo, logLevels: SessionLogLevelRepo): { gateway: AppDeps["gateway"]; upstreams: UpstreamPool } {
  const gateway = observeGateway(createGatewayService(deps));
  // Its own deadline: a tool call may take longer than a connection check.
  const guarded = createGuardedFetch({ allowPrivateNetwork: config.allowPrivateNetwork, timeoutMs: config.toolTimeoutMs });
  const fetch = observeUpstream(guarded, describeOutboundError);
  // The per-server relay reads bytes, not Responses: the lite form over the same guarded agent.
  const relayFetch = observeUpstream(guarded.lite as unknown as typeof guarded, describeOutboundError) as unknown as LiteFetch;
  const upstreams = lazyUpstreamPool({
    fetch: withLfEventStreams(fetch), // the SDK's SSE parser is linear only on LF line endings
    // A 2026-07-28 member's listen stream is open as long as its client is kept, not bounded like a
    // request (the largest timer: 24.8 days); its acknowledgement is bounded by the connect timeout.
    listenFetch: withLfEventStreams(observeUpstream(guarded.withLimits({ timeoutMs: 2 ** 31 - 1 }), describeOutboundError)),
    relayFetch, // a 2025-era session's tools/call goes on the relay's connection path, past the SDK client
    idleMs: config.upstreamIdleMs,
    max: config.upstreamPoolMax,
    listTtlMs: config.listTtlMs,
    connectTimeoutMs: config.connectTimeoutMs,
    listenCheckMs: config.listenCheckMs,
    onOpen: () => telemetry.metrics?.upstreamSessionOpened(),
  });
  const workspace = observeWorkspace(createWorkspaceGateway({
    repo: deps.repo,
    gateway,
    useUpstream: (target, timeoutMs, use) => upstreams.use(target, timeoutMs, use),
    watchUpstream: (target, timeoutMs, onChange) => upstreams.watch(target, timeoutMs, onChange),
    answerUpstream: (target, reply, message, timeoutMs) => upstreams.answer(target, reply, message, timeoutMs),
    sessions: deps.sessions,
    endedSessions,
    subscriptionStore,
    logLevels,
    sessionMaxMs: config.workspaceSessionMaxMs,
    listTimeoutMs: config.connectTimeoutMs,
    toolTimeoutMs: config.toolTimeoutMs,
    listTtlMs: config.listTtlMs,
    bareSoleMember: config.workspaceBareNames,
    // Only ever called for a failure of useUpstream, so the module is loaded by then.
    describeFailure: (err, timeoutMs, secrets) => upstreamModule!.describeUpstreamFailure(err, timeoutMs, secrets),
  }));
  return { gateway: { gateway, fetch: relayFetch, toolTimeoutMs: config.toolTimeoutMs, workspace, publicOrigin }, upstreams };
}

export function appFor(services: Services, config: Config, logger: Logger, extra: Partial<AppDeps> = {}) {
  return buildApp({
    tokens: services.tokens,
    sessions: services.sessions,
    userConnections: services.userConnections,
    servers: services.servers,
    toolsets: services.toolsets,
    activity: services.activity,
    health: services.health,
    connections: services.connections,
    toolPins: services.toolPins,
    connectors: services.connectors,
    idempotency: services.idempotency,
    rateLimiter: services.rateLimiter,
    oauth: services.oauth,
    gateway: services.gateway,
    readiness: services.readiness,
    logger, validateResponses: config.validateResponses, storeUnavailable: isUnavailable, ...extra });
}
