// HTTP adapters for the connector catalog.
import type { ConnectorService } from "../domain/connectors.js";
import type { Handler } from "./handler-types.js";

export function connectorHandlers(connectors: ConnectorService) {
  const listConnectors: Handler<"listConnectors"> = async (req) => {
    req.actor();
    return { status: 200, body: await connectors.list(req.query) };
  };
  // Express has already percent-decoded the name (io.github.acme%2Fweather → io.github.acme/weather).
  const getConnector: Handler<"getConnector"> = async (req) => {
    req.actor();
    return { status: 200, body: await connectors.get(req.params.connectorId) };
  };
  return { listConnectors, getConnector };
}
