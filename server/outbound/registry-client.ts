// Reads one page of an MCP Registry's REST API v0.1 (`GET /v0.1/servers`). Everything that can
// go wrong becomes a RegistryError saying so in words: unreachable, slow, an HTTP error, or an
// answer that is not the API.
import type { FetchRegistryPage, RegistryPage } from "../domain/connectors.js";

export class RegistryError extends Error {}

export interface RegistryClientOptions {
  /** One deadline for the whole page: connection, headers and body. */
  timeoutMs: number;
  maxBytes?: number;
  pageSize?: number;
  fetch?: typeof fetch;
}

async function readCapped(response: Response, maxBytes: number, where: string): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new RegistryError(`${where} answered more than ${maxBytes} bytes for one page; stopped`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function createRegistryClient({ timeoutMs, maxBytes = 16 * 1024 * 1024, pageSize = 100, fetch: doFetch = fetch }: RegistryClientOptions): FetchRegistryPage {
  return async (registryUrl, { cursor, updatedSince }): Promise<RegistryPage> => {
    let url: URL;
    try {
      url = new URL("v0.1/servers", registryUrl.endsWith("/") ? registryUrl : `${registryUrl}/`);
    } catch {
      throw new RegistryError(`MCP_API_REGISTRY_URL is not a URL: ${registryUrl}`);
    }
    url.searchParams.set("limit", String(pageSize));
    url.searchParams.set("version", "latest");
    if (cursor) url.searchParams.set("cursor", cursor);
    if (updatedSince) url.searchParams.set("updated_since", updatedSince);
    const where = `the registry at ${url.origin}`;
    const signal = AbortSignal.timeout(timeoutMs);
    let text: string;
    try {
      const response = await doFetch(url, { headers: { accept: "application/json" }, signal, redirect: "error" });
      if (!response.ok) {
        await response.body?.cancel();
        throw new RegistryError(`${where} answered HTTP ${response.status} to GET ${url.pathname}`);
      }
      text = await readCapped(response, maxBytes, where);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      if (signal.aborted) throw new RegistryError(`${where} did not answer within ${timeoutMs} ms (MCP_API_REGISTRY_TIMEOUT_MS)`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new RegistryError(`${where} cannot be reached: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new RegistryError(`${where} answered something other than the MCP Registry API (the body is not JSON)`);
    }
    const page = body as { servers?: unknown; metadata?: { nextCursor?: unknown } };
    if (!page || typeof page !== "object" || !Array.isArray(page.servers) || page.servers.some((s) => !s || typeof s !== "object")) {
      throw new RegistryError(`${where} answered something other than the MCP Registry API (no "servers" list of objects)`);
    }
    const next = page.metadata?.nextCursor;
    if (next !== undefined && next !== null && typeof next !== "string") {
      throw new RegistryError(`${where} answered something other than the MCP Registry API (metadata.nextCursor is not a string)`);
    }
    return { servers: page.servers as RegistryPage["servers"], nextCursor: next ? next : null };
  };
}
