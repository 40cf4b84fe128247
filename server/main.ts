// Starts the server: reads the environment, migrates, listens, and stops cleanly on SIGTERM/SIGINT.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { MAX_HEADER_BYTES } from "./app.js";
import { appFor, openServices } from "./compose.js";
import { readConfig } from "./config.js";
import { createLogger } from "./logger.js";

async function main() {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  let port = config.port;
  const services = await openServices(config, logger, { waitForDatabase: true, publicUrl: () => `http://localhost:${port}` });
  const app = appFor(services, config, logger);
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app).listen(config.port, config.host, () => {
    port = (server.address() as AddressInfo).port;
    const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
    logger.info({ port }, "listening");
    console.log(`mcp-servers-api listening on http://${host}:${port}`);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: finishing in-flight requests");
    const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
    force.unref();
    server.close(async () => {
      await services.db.close();
      logger.info("stopped");
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err) => {
  console.error(`mcp-servers-api failed to start: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
