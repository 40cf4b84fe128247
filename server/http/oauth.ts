// HTTP adapters for the OAuth connection of an MCP server.
import type { OAuthService } from "../domain/oauth/index.js";
import type { SessionService } from "../domain/sessions.js";
import { readCookie, SESSION_COOKIE } from "./cookies.js";
import type { Handler } from "./handler-types.js";
import { etagOf } from "./mcp-servers.js";
import { page } from "./pages.js";

export function oauthHandlers(oauth: OAuthService, sessions: SessionService) {
  const startMcpServerOAuth: Handler<"startMcpServerOAuth"> = async (req) => ({
    status: 200,
    body: await oauth.start(req.actor(), req.params.id, { returnUrl: req.body?.returnUrl }),
  });
  const disconnectMcpServerOAuth: Handler<"disconnectMcpServerOAuth"> = async (req) => {
    const v = await oauth.disconnect(req.actor(), req.params.id);
    return { status: 200, body: v.server, headers: { ETag: etagOf(v.version) } };
  };
  const completeMcpServerOAuth: Handler<"completeMcpServerOAuth"> = async (req) => {
    // A user-scope flow may finish only in the starter's own signed-in browser.
    const browser = await sessions.resolve(readCookie(req.headers.cookie, SESSION_COOKIE));
    const outcome = await oauth.complete(req.query, browser?.userId ?? null);
    // Pages must not be cached, framed or leak the code through Referer.
    const headers = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'" };
    if (outcome.status === 302) return { status: 302, body: undefined, headers: { ...headers, Location: outcome.location } };
    return { status: outcome.status, body: page(outcome.title, outcome.message), headers };
  };
  const getOAuthClientMetadata: Handler<"getOAuthClientMetadata"> = async () => ({
    status: 200,
    body: oauth.clientMetadata(),
    headers: { "Cache-Control": "public, max-age=3600" },
  });
  return { startMcpServerOAuth, disconnectMcpServerOAuth, completeMcpServerOAuth, getOAuthClientMetadata };
}
