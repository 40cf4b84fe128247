// The product's OAuth connection to each `oauth` MCP server: authorization code with PKCE,
// client credentials, refresh before use (one refresher per server across processes),
// revocation, and discovery of what the record leaves out.
import { createAuthorization } from "./authorization.js";
import { contextOf, type OAuthServiceDeps } from "./context.js";
import { createIdentity } from "./identity.js";
import { createMigration } from "./migration.js";
import { createSetup } from "./setup.js";
import { createStepUp } from "./step-up.js";
import { createTokens } from "./tokens.js";
import { createUserTokens } from "./user-tokens.js";

export type { OAuthServiceDeps } from "./context.js";
export type { CallbackOutcome } from "./authorization.js";
export type { TokenOutcome } from "./tokens.js";
export type { UserTokenOutcome } from "./user-tokens.js";
export type { StepUpOutcome } from "./step-up.js";
export type { MigrationOutcome } from "./migration.js";
export { MAX_STEP_UP_RETRIES } from "./step-up.js";
export { REFRESH_MARGIN_MS, returnUrlAllowed, STATE_TTL_MS } from "./rules.js";

export function createOAuthService(deps: OAuthServiceDeps) {
  const ctx = contextOf(deps);
  const setup = createSetup(ctx);
  const identity = createIdentity(ctx);
  const migration = createMigration(ctx);
  const tokens = createTokens(ctx, setup, identity, migration);
  const userTokens = createUserTokens(ctx, setup, identity, deps.userConnections);
  const stepUp = createStepUp(ctx, deps.userConnections);
  const { start, complete, disconnect } = createAuthorization(ctx, setup, identity, tokens, userTokens, stepUp);

  return {
    /** The product's Client ID Metadata Document, served at its own URL (its client id). */
    clientMetadata() {
      return {
        client_id: ctx.metadataDocumentUrl(),
        client_name: "mcp-servers-api",
        client_uri: deps.publicUrl().replace(/\/$/, ""),
        redirect_uris: [ctx.redirectUri()],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
        application_type: "web",
      };
    },
    accessToken: tokens.accessToken,
    userAccessToken: userTokens.userAccessToken,
    revokeUserTokens: userTokens.revokeUserTokens,
    /** A 403 insufficient_scope from the MCP server, on the connection that was used (issue 20 item 6). */
    insufficientScope: stepUp.insufficientScope,
    /** After a 401 from the MCP server: whether its authorization server moved, and if so the record's connection dropped (issue 20 item 6). */
    authorizationServerMoved: migration.authorizationServerMoved,
    start,
    complete,
    disconnect,
  };
}

export type OAuthService = ReturnType<typeof createOAuthService>;
