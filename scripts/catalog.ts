// Fills the connector catalog on the store named by DATABASE_URL (migrating it first).
//   catalog sync                      from the MCP Registry at MCP_API_REGISTRY_URL (REST API v0.1)
//   catalog import <server.json> […]  from server.json files
import { readFileSync } from "node:fs";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { createRegistryClient, RegistryError } from "../server/outbound/registry-client.js";

const USAGE = `usage:
  npm run -s catalog -- sync                         fill the catalog from the registry at MCP_API_REGISTRY_URL
                                                     (MCP_API_REGISTRY_TIMEOUT_MS per page, default 10000)
  npm run -s catalog -- import <server.json> [<server.json> …]   add or replace entries from files`;

class UsageError extends Error {}

function registryTimeout(): number {
  const raw = process.env.MCP_API_REGISTRY_TIMEOUT_MS;
  if (raw === undefined || raw === "") return 10_000;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`MCP_API_REGISTRY_TIMEOUT_MS must be a positive whole number of milliseconds; got '${raw}'`);
  return n;
}

/** Reads and parses every file first, so that one bad file imports nothing. */
function readDocuments(files: string[]): { file: string; document: unknown }[] {
  return files.map((file) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ImportFailed(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      return { file, document: JSON.parse(text) as unknown };
    } catch (err) {
      throw new ImportFailed(`${file}: is not JSON (${(err as Error).message})`);
    }
  });
}

class ImportFailed extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "sync" && rest.length === 0) {
    const registryUrl = process.env.MCP_API_REGISTRY_URL;
    if (!registryUrl) throw new UsageError("MCP_API_REGISTRY_URL is not set: set it to the registry's base URL (e.g. https://registry.modelcontextprotocol.io)");
    const fetchPage = createRegistryClient({ timeoutMs: registryTimeout() });
    const services = await openServices(readConfig(), createLogger(process.env.LOG_LEVEL || "warn", process.stderr as never));
    try {
      const outcome = await services.connectors.sync(registryUrl, fetchPage);
      for (const s of outcome.skipped) console.error(`skipped ${s.name}: not valid server.json: ${s.problems.join("; ")}`);
      console.log(
        `synced ${outcome.pages} page${outcome.pages === 1 ? "" : "s"} from ${registryUrl}: ${outcome.upserted} added or updated, ${outcome.removed} removed, ${outcome.skipped.length} skipped`,
      );
      return 0;
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      console.error(`catalog sync failed, the catalog is unchanged: ${err.message}`);
      return 1;
    } finally {
      await services.db.close();
    }
  }
  if (command === "import" && rest.length > 0) {
    let documents;
    try {
      documents = readDocuments(rest);
    } catch (err) {
      if (!(err instanceof ImportFailed)) throw err;
      console.error(`catalog import failed, nothing imported: ${err.message}`);
      return 1;
    }
    const services = await openServices(readConfig(), createLogger(process.env.LOG_LEVEL || "warn", process.stderr as never));
    try {
      const outcome = await services.connectors.importDocuments(documents.map(({ file, document }) => ({ label: file, document })));
      if (!outcome.ok) {
        console.error(`catalog import failed, nothing imported: not valid server.json (schema 2025-12-11, the subset in server/domain/server-json.ts):\n  ${outcome.problems.join("\n  ")}`);
        return 1;
      }
      for (const name of outcome.names) console.log(`imported ${name}`);
      return 0;
    } finally {
      await services.db.close();
    }
  }
  throw new UsageError(command ? `unknown command '${[command, ...rest].join(" ")}'` : "a command is required");
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof UsageError ? `${err.message}\n${USAGE}` : `catalog: ${err instanceof Error ? err.message : err}`);
    process.exit(2);
  },
);
