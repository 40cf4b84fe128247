// Starts the server: reads the environment, migrates, listens, and stops cleanly on SIGTERM/SIGINT.
import { createServer } from "node:http";
import nodeModule from "node:module";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { staleBuild } from "./build-stamp.js";
import { readConfig } from "./config.js";
import { bornExpress } from "./http/born-express.js";
import { MAX_HEADER_BYTES } from "./http/limits.js";
import { whileStarting } from "./http/starting.js";
import { createLogger } from "./logger.js";

// V8's allocation-site pretenuring, off (issue 25, the tail): once it decided that a site on the
// write path allocates long-lived objects, those were made in the old generation, and as garbage
// there they held the young objects they pointed to, so every scavenge kept and then promoted the
// rest of each create or patch (about a quarter of all it allocated). V8 reads the flag as the heap
// runs, so setting it here, before the app loads, takes effect (measured); start-up measured no slower.
v8.setFlagsFromString("--no-allocation-site-pretenuring");
const compiled = import.meta.url.endsWith("/dist/server/main.js");
// Node >= 22.1 keeps V8's compiled code for the modules loaded from here on (in
// NODE_COMPILE_CACHE, else <tmpdir>/node-compile-cache; NODE_DISABLE_COMPILE_CACHE=1 turns it
// off), so later starts skip most parsing. Node 20 has no such API: nothing happens there.
if (compiled) (nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

async function main() {
  // Compiled (dist/server/main.js): refuse a build older than the source beside it.
  if (compiled) {
    const stale = staleBuild(fileURLToPath(new URL("../../", import.meta.url)));
    if (stale) {
      console.error(`mcp-servers-api: ${stale}`);
      process.exit(1);
    }
  }
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  let port = config.port;
  if (config.allowPrivateNetwork) {
    logger.warn("MCP_API_ALLOW_PRIVATE_NETWORK is on: the SSRF guard is lifted, and the server will dial loopback and private addresses (cloud metadata addresses stay refused)");
  }
  // Listening comes first: while the app loads and the store opens, /healthz (liveness) is
  // answered and every other request waits for the app (http/starting.ts).
  const starting = whileStarting(logger);
  const born = bornExpress();
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, IncomingMessage: born.IncomingMessage, ServerResponse: born.ServerResponse }, starting.listener);
  server.on("error", (err: NodeJS.ErrnoException) => {
    const where = `${config.host}:${config.port}`;
    if (err.code === "EADDRINUSE") console.error(`mcp-servers-api: port ${config.port} is already in use (${where}); stop what holds it or set PORT`);
    else if (err.code === "EACCES") console.error(`mcp-servers-api: not allowed to listen on ${where}; pick a port above 1023 with PORT`);
    else console.error(`mcp-servers-api: cannot listen on ${where}: ${err.message}`);
    process.exit(1);
  });
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  port = (server.address() as AddressInfo).port;
  // Loaded after the stale-build check, so a stale build fails with the sentence above, not a
  // missing export (and after the compile cache is on, so the cache covers them).
  const [{ appFor, openServices }, { readObservabilityConfig, startBackgroundChecks, startObservability }] = await Promise.all([
    import("./compose.js"),
    import("./observability/start.js"),
  ]);
  const observabilityConfig = readObservabilityConfig();
  const observability = await startObservability(observabilityConfig, logger);
  const services = await openServices(config, logger, { waitForDatabase: true, publicUrl: () => `http://localhost:${port}` });
  await observability.attach(services);
  const app = appFor(services, config, logger);
  born.adopt(app);
  const metricsHere = observability.onApiPort(config.port);
  starting.serve(metricsHere ? (req, res) => void (metricsHere(req, res) || app(req, res)) : app);
  const metricsPort = await observability.listen(config.host, config.port).catch((err: Error) => {
    console.error(`mcp-servers-api: cannot serve metrics on ${config.host}:${process.env.MCP_API_METRICS_PORT}: ${err.message}`);
    process.exit(1);
  });
  const checks = observabilityConfig.healthIntervalMs ? startBackgroundChecks(services.db, services.connections, observabilityConfig.healthIntervalMs, logger) : null;

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: finishing in-flight requests");
    const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
    force.unref();
    server.close(async () => {
      await services.retention.close(); // a sweep under way stops after its current batch
      await checks?.stop(); // the lease is given up, so another process takes over at once
      await services.rateLimiter.close(); // counts not yet written reach the shared store
      await services.upstreams.close(); // kept upstream sessions end (DELETE) rather than linger upstream
      await services.db.close();
      await observability.close(); // spans not yet exported are sent
      logger.info("stopped");
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // Said once the app serves and SIGTERM stops it cleanly (whoever reads this line may send it at once).
  const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  logger.info({ port }, "listening");
  console.log(`mcp-servers-api listening on http://${host}:${port}`);
  if (metricsPort !== null) console.log(`mcp-servers-api metrics on http://${host}:${metricsPort}/metrics`);
  services.retention.start();
}

main().catch((err) => {
  console.error(`mcp-servers-api failed to start: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
