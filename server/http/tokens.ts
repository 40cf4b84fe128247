// HTTP adapters for who a token is, the tokens people mint themselves, and browser sessions.
import type { SessionService } from "../domain/sessions.js";
import type { TokenService } from "../domain/tokens.js";
import { clearedSessionCookie, cookieIsSecure, readCookie, SESSION_COOKIE, sessionCookie } from "./cookies.js";
import type { Handler } from "./handler-types.js";

export function tokenHandlers(tokens: TokenService, sessions: SessionService, publicOrigin: () => string) {
  const getMe: Handler<"getMe"> = async (req) => {
    const { userId, tokenId, scope, workspaces, expiresAt } = req.actor();
    return { status: 200, body: { userId, tokenId, scope, workspaces: [...workspaces], expiresAt: expiresAt ?? null } };
  };
  const createApiToken: Handler<"createApiToken"> = async (req) => {
    const created = await tokens.mintFor(req.actor(), req.body);
    return { status: 201, body: created, headers: { Location: `/api/tokens/${created.id}`, "Cache-Control": "no-store" } };
  };
  const listApiTokens: Handler<"listApiTokens"> = async (req) => ({ status: 200, body: await tokens.listFor(req.actor(), req.query) });
  const deleteApiToken: Handler<"deleteApiToken"> = async (req) => {
    await tokens.revokeFor(req.actor(), req.params.tokenId);
    return { status: 204, body: undefined };
  };
  const createSession: Handler<"createSession"> = async (req) => {
    const { secret, maxAgeSeconds } = await sessions.create(req.actor());
    return { status: 204, body: undefined, headers: { "Set-Cookie": sessionCookie(secret, maxAgeSeconds, cookieIsSecure(publicOrigin())), "Cache-Control": "no-store" } };
  };
  const deleteSession: Handler<"deleteSession"> = async (req) => {
    // The security handler has checked the cookie names a live session.
    await sessions.end(readCookie(req.headers.cookie, SESSION_COOKIE));
    return { status: 204, body: undefined, headers: { "Set-Cookie": clearedSessionCookie(cookieIsSecure(publicOrigin())) } };
  };
  return { getMe, createApiToken, listApiTokens, deleteApiToken, createSession, deleteSession };
}
