// A real OAuth authorization server (oidc-provider) and the MCP server it protects, on loopback.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { closer, listen } from "./mcp-peers.js";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import Provider, { type Adapter, type AdapterPayload, type Configuration, errors } from "oidc-provider";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

export interface OAuthPeerOptions {
  /** The product's callback; start the peer after the product server so it is known. */
  redirectUri: string;
  /** Lifetime of access tokens (both grants). Default 3600. */
  accessTokenTtlSeconds?: number;
  /** Whether each refresh issues a new refresh token (and consumes the old one). Default true. */
  rotateRefreshTokens?: boolean;
  /** The client's registered method; the only client_secret_* method the metadata advertises. */
  tokenEndpointAuthMethod?: "client_secret_basic" | "client_secret_post";
  /** Advertised as code_challenge_methods_supported. Default ["S256"]; the AS itself only accepts S256. */
  pkceMethods?: string[];
  /** Open RFC 7591 dynamic client registration at /reg. Default false. */
  dynamicRegistration?: boolean;
  /** Further resources (MCP server URLs elsewhere) it issues tokens for. Default none. */
  extraResources?: string[];
}

export interface TokenRequest {
  grant_type: string;
  authMethod: "basic" | "post" | "none";
  resource?: string;
  /** Whether a code_verifier was sent. */
  code_verifier?: boolean;
  scope?: string;
}

export interface OAuthPeer {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  revocationEndpoint: string;
  introspectionEndpoint: string;
  clientId: string;
  clientSecret: string;
  /** The protected MCP server (Streamable HTTP, stateless). */
  mcpUrl: string;
  /** Its RFC 9728 document, the one named in WWW-Authenticate. */
  resourceMetadataUrl: string;
  /** Headers of every request the MCP server received. */
  mcpRequests: { authorization?: string; sub?: string; who?: string }[];
  /** Bodies of every dynamic registration request. */
  registrations: Record<string, unknown>[];
  /** Every request that reached the token endpoint, whatever its outcome. */
  tokenRequests: TokenRequest[];
  /** token_type_hint (or "") of every request that reached the revocation endpoint. */
  revocations: string[];
  /**
   * Plays the user at the AS's login and consent pages without a browser and returns the
   * redirect to the product's callback (code & state, or error=access_denied & state) unrequested.
   */
  login(authorizationUrl: string | URL, opts?: { deny?: boolean; account?: string }): Promise<string>;
  /** Destroys every grant, code and refresh token: refreshes fail with invalid_grant and issued access tokens go inactive. */
  /** From now on, every token request is answered 503 (temporarily_unavailable) after `delayMs`; null ends the outage. */
  failTokenRequests(delayMs: number | null): void;
  revokeAllGrants(): Promise<void>;
  /** The AS's introspection of `token` (RFC 7662): active, and for which audiences; for MCP servers of the test's own. */
  introspect(token: string): Promise<{ active: boolean; aud: string[]; sub?: string }>;
  /** Forgets a dynamically registered client: its token requests then fail with invalid_client. */
  forgetClient(clientId: string): Promise<void>;
  close(): Promise<void>;
}

const SCOPE = "mcp:tools";

/** oidc-provider's adapter contract over one Map, so revokeAllGrants can see every model. */
class MemoryStore {
  private readonly entries = new Map<string, { model: string; payload: AdapterPayload; expiresAt?: number }>();

  adapter(model: string): Adapter {
    const key = (id: string) => `${model}:${id}`;
    const live = (k: string) => {
      const entry = this.entries.get(k);
      if (entry?.expiresAt && entry.expiresAt < Date.now()) {
        this.entries.delete(k);
        return undefined;
      }
      return entry?.payload;
    };
    return {
      upsert: async (id, payload, expiresIn) => {
        this.entries.set(key(id), { model, payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
      },
      find: async (id) => live(key(id)),
      findByUid: async (uid) => {
        for (const [k, entry] of this.entries) if (entry.model === model && entry.payload.uid === uid) return live(k);
        return undefined;
      },
      findByUserCode: async (userCode) => {
        for (const [k, entry] of this.entries) if (entry.model === model && entry.payload.userCode === userCode) return live(k);
        return undefined;
      },
      consume: async (id) => {
        const payload = live(key(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => {
        this.entries.delete(key(id));
      },
      revokeByGrantId: async (grantId) => this.deleteWhere((entry) => entry.payload.grantId === grantId),
    };
  }

  deleteWhere(test: (entry: { model: string; payload: AdapterPayload }) => boolean) {
    for (const [k, entry] of this.entries) if (test(entry)) this.entries.delete(k);
  }
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req);
  return text ? JSON.parse(text) : undefined;
}

function toolServer() {
  const server = new McpServer({ name: "oauth-peer", version: "1.0.0" });
  server.registerTool("whoami", { description: "Says hi.", annotations: { readOnlyHint: true } }, async () => ({
    content: [{ type: "text", text: "hi" }],
  }));
  return server.server;
}

export async function startOAuthPeer(options: OAuthPeerOptions): Promise<OAuthPeer> {
  const authMethod = options.tokenEndpointAuthMethod ?? "client_secret_basic";
  const pkceMethods = options.pkceMethods ?? ["S256"];
  const ttl = options.accessTokenTtlSeconds ?? 3600;
  const clientId = "mcp-product";
  const clientSecret = randomBytes(24).toString("base64url");

  // Both ports first: the issuer and the resource are baked into the provider's configuration.
  const asHttp = createServer();
  const mcpHttp = createServer();
  const issuer = `http://127.0.0.1:${await listen(asHttp)}`;
  const mcpOrigin = `http://127.0.0.1:${await listen(mcpHttp)}`;
  const mcpUrl = `${mcpOrigin}/mcp`;
  const resourceMetadataUrl = `${mcpOrigin}/.well-known/oauth-protected-resource/mcp`;

  const store = new MemoryStore();
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });

  const configuration: Configuration = {
    adapter: (name: string) => store.adapter(name),
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ["authorization_code", "refresh_token", "client_credentials"],
        response_types: ["code"],
        token_endpoint_auth_method: authMethod,
        scope: `openid offline_access ${SCOPE}`,
      },
    ],
    scopes: ["openid", "offline_access", SCOPE],
    jwks: { keys: [{ ...signingKey, kid: "peer", use: "sig", alg: "RS256" }] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    pkce: { required: () => true },
    // Refresh tokens without offline_access (which oidc-provider drops unless prompt=consent).
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed("refresh_token") && code.kind === "AuthorizationCode",
    rotateRefreshToken: () => options.rotateRefreshTokens ?? true,
    ttl: { AccessToken: ttl, ClientCredentials: ttl, RefreshToken: 24 * 3600, Grant: 24 * 3600 },
    features: {
      registration: { enabled: options.dynamicRegistration ?? false },
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        // A request without `resource` still gets a token for the MCP server.
        defaultResource: async () => mcpUrl,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== mcpUrl && !options.extraResources?.includes(resource)) throw new errors.InvalidTarget(`unknown resource ${resource}`);
          // Opaque, so the MCP server introspects and sees revocation at once.
          return { scope: SCOPE, audience: resource, accessTokenFormat: "opaque", accessTokenTTL: ttl };
        },
      },
    },
  };

  const provider = new Provider(issuer, configuration);
  const tokenPath = "/token";
  const clientAuthPaths = new Set([tokenPath, "/token/revocation", "/token/introspection"]);
  const recordToken = (basic: boolean, params: URLSearchParams): TokenRequest => ({
    grant_type: params.get("grant_type") ?? "",
    authMethod: basic ? "basic" : params.has("client_secret") ? "post" : "none",
    resource: params.get("resource") ?? undefined,
    code_verifier: params.has("code_verifier"),
    scope: params.get("scope") ?? undefined,
  });
  const tokenRequests: TokenRequest[] = [];
  const revocations: string[] = [];
  const registrations: Record<string, unknown>[] = [];

  // While set (failTokenRequests), every token request is recorded and answered 503 after this delay.
  let tokenOutage: number | null = null;

  provider.use(async (ctx, next) => {
    if (tokenOutage !== null && ctx.method === "POST" && ctx.path === tokenPath) {
      tokenRequests.push(recordToken(ctx.get("authorization").toLowerCase().startsWith("basic "), new URLSearchParams(await readText(ctx.req))));
      await new Promise((r) => setTimeout(r, tokenOutage!));
      ctx.status = 503;
      ctx.body = { error: "temporarily_unavailable" };
      return;
    }
    // RFC 8414 metadata under its own name, served from oidc-provider's discovery document.
    const rfc8414 = ctx.path === "/.well-known/oauth-authorization-server";
    if (rfc8414) ctx.path = "/.well-known/openid-configuration";
    // oidc-provider lets a client_secret_* client use either method; hold it to the registered one.
    if (ctx.method === "POST" && clientAuthPaths.has(ctx.path)) {
      const basic = ctx.get("authorization").toLowerCase().startsWith("basic ");
      if (basic !== (authMethod === "client_secret_basic")) {
        const params = new URLSearchParams(await readText(ctx.req));
        if (ctx.path === tokenPath) tokenRequests.push(recordToken(basic, params));
        ctx.status = 401;
        ctx.body = { error: "invalid_client", error_description: `client authentication must use ${authMethod}` };
        return;
      }
    }
    await next();
    const route = ctx.oidc?.route;
    if (route === "discovery" && ctx.body && typeof ctx.body === "object") {
      const body = ctx.body as Record<string, unknown>;
      const methods = (body.token_endpoint_auth_methods_supported as string[] | undefined) ?? [];
      body.token_endpoint_auth_methods_supported = [authMethod, ...methods.filter((m) => !m.startsWith("client_secret_"))];
      body.code_challenge_methods_supported = pkceMethods;
    }
    if (route === "token") {
      const body = (ctx.oidc?.body ?? {}) as Record<string, string>;
      tokenRequests.push(recordToken(ctx.get("authorization").toLowerCase().startsWith("basic "), new URLSearchParams(body)));
    }
    if (route === "registration") registrations.push((ctx.oidc?.body ?? {}) as Record<string, unknown>);
    if (route === "revocation") revocations.push(String((ctx.oidc?.body as Record<string, unknown> | undefined)?.token_type_hint ?? ""));
  });
  asHttp.on("request", provider.callback());

  const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const introspectionEndpoint = metadata.introspection_endpoint as string;

  async function introspect(token: string): Promise<{ active: boolean; aud: string[]; sub?: string }> {
    const res = await fetch(introspectionEndpoint, {
      method: "POST",
      // The client must authenticate with its registered method, and with one method only.
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(authMethod === "client_secret_basic" ? { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}` } : {}),
      },
      body: new URLSearchParams(authMethod === "client_secret_post" ? { token, client_id: clientId, client_secret: clientSecret } : { token }),
    }).catch(() => undefined);
    if (!res?.ok) return { active: false, aud: [] };
    const info = (await res.json()) as { active?: boolean; aud?: string | string[]; sub?: string };
    const aud = (Array.isArray(info.aud) ? info.aud : [info.aud]).filter((a): a is string => typeof a === "string");
    return { active: info.active === true, aud, sub: info.sub };
  }

  /** The token's subject when it is active for the MCP server, else null. */
  async function activeSubject(authorization: string | undefined): Promise<string | null> {
    const token = /^Bearer (.+)$/i.exec(authorization ?? "")?.[1];
    if (!token) return null;
    const info = await introspect(token);
    return info.active && info.aud.includes(mcpUrl) ? (info.sub ?? "") : null;
  }

  const mcpRequests: OAuthPeer["mcpRequests"] = [];
  mcpHttp.on("request", async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", mcpOrigin).pathname;
    if (path === "/.well-known/oauth-protected-resource/mcp" || path === "/.well-known/oauth-protected-resource") {
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ resource: mcpUrl, authorization_servers: [issuer], scopes_supported: [SCOPE], bearer_methods_supported: ["header"] }));
      return;
    }
    if (path !== "/mcp") {
      res.writeHead(404).end();
      return;
    }
    const body = req.method === "POST" ? await readBody(req) : undefined;
    const sub = await activeSubject(req.headers.authorization);
    // Who the agent said it was (a tools/call's `who` argument) beside whose token it carried.
    const who = (body as { params?: { arguments?: { who?: string } } } | undefined)?.params?.arguments?.who;
    mcpRequests.push({ authorization: req.headers.authorization, sub: sub ?? undefined, who });
    if (sub === null) {
      const error = req.headers.authorization ? ', error="invalid_token"' : "";
      res
        .writeHead(401, { "content-type": "text/plain", "www-authenticate": `Bearer resource_metadata="${resourceMetadataUrl}"${error}` })
        .end("unauthorized");
      return;
    }
    const server = toolServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });

  async function login(authorizationUrl: string | URL, opts: { deny?: boolean; account?: string } = {}): Promise<string> {
    const jar = new Map<string, string>();
    const send = async (url: string, init: RequestInit = {}) => {
      const res = await fetch(url, {
        ...init,
        redirect: "manual",
        headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
      });
      // Path scoping is ignored: one flow at a time, and later cookies overwrite earlier ones.
      for (const cookie of res.headers.getSetCookie()) {
        const [pair, ...attrs] = cookie.split(";");
        const eq = pair.indexOf("=");
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split("=")[1]) < Date.now());
        if (!value || expired) jar.delete(name);
        else jar.set(name, value);
      }
      return res;
    };

    let url = new URL(authorizationUrl).href;
    let init: RequestInit = {};
    for (let hop = 0; hop < 20; hop++) {
      const res = await send(url, init);
      init = {};
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get("location") ?? "", url);
        if (next.origin !== issuer) return next.href;
        url = next.href;
        continue;
      }
      const html = await res.text();
      if (res.status !== 200) throw new Error(`authorization server answered ${res.status} at ${url}: ${html.slice(0, 500)}`);
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
      if (!prompt) throw new Error(`no interaction form at ${url}: ${html.slice(0, 500)}`);
      if (opts.deny) {
        url = `${url.replace(/\/$/, "")}/abort`;
        continue;
      }
      const form: Record<string, string> =
        prompt === "login" ? { prompt, login: opts.account ?? "alice", password: "any" } : { prompt };
      init = { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) };
    }
    throw new Error("too many redirects at the authorization server");
  }

  return {
    issuer,
    authorizationEndpoint: metadata.authorization_endpoint,
    tokenEndpoint: metadata.token_endpoint,
    revocationEndpoint: metadata.revocation_endpoint,
    introspectionEndpoint,
    introspect,
    clientId,
    clientSecret,
    mcpUrl,
    resourceMetadataUrl,
    mcpRequests,
    tokenRequests,
    revocations,
    registrations,
    login,
    failTokenRequests: (delayMs) => {
      tokenOutage = delayMs;
    },
    revokeAllGrants: async () => store.deleteWhere((e) => ["Grant", "RefreshToken", "AuthorizationCode"].includes(e.model)),
    forgetClient: async (id) => store.deleteWhere((e) => e.model === "Client" && e.payload.client_id === id),
    close: async () => {
      await Promise.all([closer(asHttp)(), closer(mcpHttp)()]);
    },
  };
}
