// The console's only way to the server: the typed client of client/, so every call is one that
// openapi.yaml documents (tsc checks paths, parameters and bodies against generated/).
import { createMcpServersClient, ProblemError, type McpServersClient } from "../client/index.js";

export { ProblemError };

const TOKEN_KEY = "mcp-console:token";
const WORKSPACE_KEY = "mcp-console:workspace";

// The token lives only in this tab's sessionStorage: closing the tab forgets it.
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  setToken: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  workspace: () => sessionStorage.getItem(WORKSPACE_KEY),
  setWorkspace: (ws: string) => sessionStorage.setItem(WORKSPACE_KEY, ws),
  clear: () => {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(WORKSPACE_KEY);
  },
};

let cached: { token: string; client: McpServersClient } | null = null;

/** The client for the signed-in token (or for `token`, while signing in). */
export function api(token = session.token() ?? ""): McpServersClient {
  if (cached?.token !== token) cached = { token, client: createMcpServersClient({ baseUrl: window.location.origin, token, retry: { retries: 1, maxDelayMs: 5000 } }) };
  return cached.client;
}

/** A raw call's data, or its problem+json thrown as ProblemError (what React Query reports). */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ProblemError(response.status, error);
  return data as T;
}

/** The message a person sees for a failed call: the API's title and detail. */
export function messageOf(err: unknown): string {
  if (err instanceof ProblemError) return [err.title, err.detail].filter(Boolean).join(/[.!?]$/.test(err.title) ? " " : ": ");
  return err instanceof Error ? err.message : String(err);
}

/** The problem's `errors` entry for a field (by its JSON pointer, e.g. `/url`; with `exact`, not its sub-fields), if any. */
export function fieldError(err: unknown, pointer: string, { exact = false } = {}): string | undefined {
  if (!(err instanceof ProblemError)) return undefined;
  const hit = err.errors.find((e) => e.path === pointer || e.path === `/body${pointer}` || (!exact && e.path.startsWith(`${pointer}/`)));
  return hit?.message;
}
