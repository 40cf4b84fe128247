// The composition root: opens the store and wires data → domain → http. main.ts, the
// token CLI and the tests all go through it, so they run the same product.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { buildApp, type AppDeps } from "./app.js";
import type { Config } from "./config.js";
import { migrate, openDatabase, type Database } from "./data/db.js";
import { createMcpServerRepo } from "./data/mcp-server-repo.js";
import { createSecretBox, parseKey } from "./data/secrets.js";
import { createTokenRepo } from "./data/token-repo.js";
import { createConnectionService } from "./domain/connections.js";
import { createCursorCodec } from "./domain/cursor.js";
import { createMcpServerService } from "./domain/mcp-servers.js";
import { nameKey } from "./domain/rules.js";
import { createTokenService } from "./domain/tokens.js";
import { createGuardedFetch } from "./outbound/guarded-fetch.js";
import { probeMcpServer } from "./outbound/mcp-probe.js";

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

export interface Services {
  db: Database;
  tokens: ReturnType<typeof createTokenService>;
  servers: ReturnType<typeof createMcpServerService>;
  connections: ReturnType<typeof createConnectionService>;
}

export async function openServices(config: Config, logger: Logger): Promise<Services> {
  const db = openDatabase(config.databaseUrl);
  try {
    await migrate(db);
    const key = resolveEncryptionKey(config, db, logger);
    const box = createSecretBox([key]);
    const cursorKey = createHash("sha256").update("cursor-signing:").update(key).digest();
    const repo = createMcpServerRepo(db.knex, box, nameKey);
    const outboundFetch = createGuardedFetch({ allowPrivateNetwork: config.allowPrivateNetwork, timeoutMs: config.connectTimeoutMs });
    return {
      db,
      tokens: createTokenService(createTokenRepo(db.knex)),
      servers: createMcpServerService({ repo, cursors: createCursorCodec(cursorKey) }),
      connections: createConnectionService({
        repo,
        probe: (target) => probeMcpServer(target, { fetch: outboundFetch, timeoutMs: config.connectTimeoutMs }),
      }),
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

export function appFor(services: Services, config: Config, logger: Logger, extra: Partial<AppDeps> = {}) {
  return buildApp({ tokens: services.tokens, servers: services.servers, connections: services.connections, logger, validateResponses: config.validateResponses, ...extra });
}
