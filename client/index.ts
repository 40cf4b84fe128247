// The typed client for API consumers: openapi-fetch over the generated `paths`,
// plus a middleware that adds the bearer token. Calls return { data, error, response }.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "../generated/api.js";

export type { components, paths };
export type McpServer = components["schemas"]["McpServer"];
export type McpServerCreate = components["schemas"]["McpServerCreate"];
export type McpServerPatch = components["schemas"]["McpServerPatch"];
export type McpServerList = components["schemas"]["McpServerList"];
export type Problem = components["schemas"]["Problem"];

export interface McpServersClientOptions {
  /** Where the API is served, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** An API token minted with `npm run -s token -- create`. */
  token: string;
  /** A fetch implementation; defaults to the global one. */
  fetch?: typeof globalThis.fetch;
}

export type McpServersClient = Client<paths>;

export function createMcpServersClient({ baseUrl, token, fetch }: McpServersClientOptions): McpServersClient {
  const client = createClient<paths>({ baseUrl, fetch });
  client.use({
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  return client;
}
