// HTTP adapters for per-user connections (issue 20): the connections API and the connect page a
// person's browser opens. The page is the only place here that reads the session cookie.
import { DomainError, NotFound, ValidationFailed } from "../domain/errors.js";
import type { OAuthService } from "../domain/oauth/index.js";
import type { SessionService } from "../domain/sessions.js";
import type { UserConnectionService } from "../domain/user-connections.js";
import { readCookie, SESSION_COOKIE } from "./cookies.js";
import type { Handler } from "./handler-types.js";
import { page } from "./pages.js";

// Pages must not be cached, framed or leak the state through Referer.
const PAGE_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'" };

export function userConnectionHandlers(connections: UserConnectionService, sessions: SessionService, oauth: OAuthService, repoFind: UserConnectionService["findServer"]) {
  const listMcpServerConnections: Handler<"listMcpServerConnections"> = async (req) => ({ status: 200, body: await connections.list(req.actor(), req.params.id, req.query) });
  const updateMcpServerConnection: Handler<"updateMcpServerConnection"> = async (req) => ({ status: 200, body: await connections.setMine(req.actor(), req.params.id, req.body) });
  const deleteMcpServerConnection: Handler<"deleteMcpServerConnection"> = async (req) => {
    await connections.removeMine(req.actor(), req.params.id);
    return { status: 204, body: undefined };
  };
  const deleteMcpServerUserConnection: Handler<"deleteMcpServerUserConnection"> = async (req) => {
    await connections.removeFor(req.actor(), req.params.id, req.params.userId);
    return { status: 204, body: undefined };
  };

  const getMcpServerConnectPage: Handler<"getMcpServerConnectPage"> = async (req) => {
    const id = req.params.serverId;
    const user = await sessions.resolve(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (!user) {
      return {
        status: 200,
        headers: PAGE_HEADERS,
        body: page("Sign in to connect", "To connect your own account to this MCP server, sign in to the product in this browser first (with your token, in the console), then open this link again.", { href: "/console", text: "Sign in at /console" }),
      };
    }
    try {
      const server = await repoFind(user.workspaces, id);
      if (!server) throw new NotFound(`MCP server ${id}`);
      // A workspace-scope record's one connection is authorized again here (its step-up link) by an administrator, as startMcpServerOAuth does.
      if (server.connectionScope !== "user" && (server.authType !== "oauth" || user.scope !== "admin")) {
        throw new ValidationFailed([
          { path: "/connectionScope", message: `is workspace: '${server.name}' has one connection for the whole workspace, set on the record; a person signed in with an admin-scope token authorizes it${server.authType === "oauth" ? "" : " (it must use OAuth)"}` },
        ]);
      }
      if (server.authType !== "oauth") throw new ValidationFailed([{ path: "/authType", message: `is ${server.authType}: set your own credential for '${server.name}' with PUT /api/mcp-servers/${id}/connections/me` }]);
      const started = await oauth.start({ userId: user.userId, tokenId: user.tokenId, workspaces: user.workspaces, scope: user.scope }, id, {});
      return { status: 302, body: undefined, headers: { ...PAGE_HEADERS, Location: started.authorizationUrl } };
    } catch (err) {
      if (!(err instanceof DomainError) || ![400, 404, 502, 504].includes(err.status)) throw err;
      const detail = err instanceof ValidationFailed ? err.errors.map((e) => `${e.path.slice(1)} ${e.message}`).join("; ") : err.message;
      const status = err.status === 504 ? 502 : (err.status as 400 | 404 | 502);
      const title = status === 404 ? "Not found" : status === 400 ? "Nothing to connect here" : "Authorization failed";
      return { status, headers: PAGE_HEADERS, body: page(title, detail) };
    }
  };

  return { listMcpServerConnections, updateMcpServerConnection, deleteMcpServerConnection, deleteMcpServerUserConnection, getMcpServerConnectPage };
}
