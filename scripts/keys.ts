// Rotates the key that seals stored secrets, on the store named by DATABASE_URL.
//   keys generate
//   keys status
//   keys rotate [--batch-size N] [--limit N]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { rotateSecrets, secretKeyCounts } from "../server/data/key-rotation.js";
import { keyIdFor, parseKey } from "../server/data/secrets.js";
import { createLogger } from "../server/logger.js";

const USAGE = `usage:
  npm run -s keys -- generate
  npm run -s keys -- status
  npm run -s keys -- rotate [--batch-size <n>] [--limit <n>]

Rotating the encryption key, while the servers keep serving:
  1. npm run -s keys -- generate                  prints a new key (32 random bytes, base64)
  2. on every server process set MCP_API_ENCRYPTION_KEY=<new key> and
     MCP_API_ENCRYPTION_KEYS_PREVIOUS=<old key>, and restart them one by one:
     they seal with the new key and open secrets sealed with either (so that no process
     still on the old key alone meets a secret sealed with the new one, first roll out
     MCP_API_ENCRYPTION_KEYS_PREVIOUS=<new key> with the old key still current)
  3. npm run -s keys -- rotate                    (same environment, once every process runs
     with the new key) re-encrypts every secret sealed with another key; safe to interrupt
     and run again
  4. npm run -s keys -- status                    secrets per key id; once the old key holds 0,
     remove it from MCP_API_ENCRYPTION_KEYS_PREVIOUS and restart the processes`;

const COMMANDS = ["generate", "status", "rotate"];

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (!command || !COMMANDS.includes(command)) throw new UsageError(`unknown command '${command ?? ""}'`);
  let values: { "batch-size"?: string; limit?: string };
  try {
    ({ values } = parseArgs({ args: rest, options: { "batch-size": { type: "string" }, limit: { type: "string" } } }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const options = { batchSize: positiveInt(values["batch-size"], "--batch-size"), limit: positiveInt(values.limit, "--limit") };

  if (command === "generate") {
    const key = randomBytes(32);
    console.error(`key id ${keyIdFor(key)}: set it as MCP_API_ENCRYPTION_KEY and move the old key to MCP_API_ENCRYPTION_KEYS_PREVIOUS`);
    console.log(key.toString("base64"));
    return;
  }

  const config = readConfig();
  // Logs go to stderr so that stdout carries only the report.
  const logger = createLogger(process.env.LOG_LEVEL || "warn", process.stderr as never);
  const services = await openServices(config, logger);
  const { box } = services;
  const { knex } = services.db;
  try {
    if (command === "status") {
      const previous = config.previousEncryptionKeys.map((k, i) => keyIdFor(parseKey(k, `MCP_API_ENCRYPTION_KEYS_PREVIOUS[${i}]`)));
      const counts = await secretKeyCounts(knex, box);
      // Every configured key, even at 0 (that is the signal to drop it), then any key the store needs but the ring lacks.
      const ids = [...new Set([box.currentKeyId, ...previous, ...Object.keys(counts)])];
      for (const id of ids) {
        const role = id === box.currentKeyId ? "current" : previous.includes(id) ? "previous" : "not configured";
        console.log([id, counts[id] ?? 0, role].join("\t"));
      }
    } else {
      const result = await rotateSecrets(knex, box, options);
      for (const f of result.failed) console.error(`failed\t${f.id}\t${f.field}\t${f.reason}`);
      console.log(`rotated ${result.rotated} secrets to key ${box.currentKeyId}; ${result.remaining} remain sealed with other keys`);
      if (result.skipped > 0) console.log(`skipped ${result.skipped} rewritten by a server during the run`);
      if (result.failed.length > 0) {
        console.error(`${result.failed.length} secrets could not be opened with the configured keys; add the key that sealed them to MCP_API_ENCRYPTION_KEYS_PREVIOUS and run rotate again`);
        process.exitCode = 1;
      } else if (result.remaining > 0) {
        console.error("run rotate again to re-encrypt the rest (a process still sealing with an old key adds to them)");
      }
    }
  } finally {
    await services.db.close();
  }
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number; got '${value}'`);
  return n;
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof UsageError ? `${err.message}\n${USAGE}` : `keys: ${err instanceof Error ? err.message : err}`);
  process.exit(2);
});
