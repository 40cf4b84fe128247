// What every part of the OAuth service shares: its dependencies and the product's own URLs.
import type { McpServerRepo } from "../../data/mcp-server-repo.js";
import type { OAuthRegistrationRepo } from "../../data/oauth-registration-repo.js";
import type { OAuthStateRepo } from "../../data/oauth-state-repo.js";
import type { TokenRepo } from "../../data/token-repo.js";
import type { UserConnectionRepo } from "../../data/user-connection-repo.js";
import type { OAuthClient } from "../../outbound/oauth-client.js";

export interface OAuthServiceDeps {
  repo: McpServerRepo;
  states: OAuthStateRepo;
  tokens: TokenRepo;
  registrations: OAuthRegistrationRepo;
  /** Each person's own connection to a user-scope server (issue 20). */
  userConnections: UserConnectionRepo;
  client: OAuthClient;
  /** The product's public base URL; the callback is `<publicUrl>/api/oauth/callback`. */
  publicUrl: () => string;
  /** Allowed prefixes for `returnUrl`. */
  returnUrlPrefixes: string[];
  now?: () => Date;
}

export interface OAuthContext {
  deps: OAuthServiceDeps;
  repo: McpServerRepo;
  client: OAuthClient;
  now: () => Date;
  redirectUri: () => string;
  /** The product's Client ID Metadata Document URL: its client id where CIMD is supported. */
  metadataDocumentUrl: () => string;
}

export function contextOf(deps: OAuthServiceDeps): OAuthContext {
  const base = () => deps.publicUrl().replace(/\/$/, "");
  return {
    deps,
    repo: deps.repo,
    client: deps.client,
    now: deps.now ?? (() => new Date()),
    redirectUri: () => `${base()}/api/oauth/callback`,
    metadataDocumentUrl: () => `${base()}/client-metadata.json`,
  };
}
