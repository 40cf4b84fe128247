// Every example in openapi.yaml is proven: each validates against its schema, and each
// request-body example, sent to the real server, gets the operation's documented success.
// SPEC_FILE points the suite at another bundled spec (to see it fail on a broken example).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { collectExamples, allExampleLocations, requestExamples, type RequestExample } from "./contract/spec-examples.js";
import { DEFAULT_SPEC_FILE, loadSpec, specSchemas, type Json } from "./contract/spec.js";
import { responseValidator, type ContractResponse } from "./contract/validate-response.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const spec = loadSpec(process.env.SPEC_FILE ?? DEFAULT_SPEC_FILE);
const schemas = specSchemas(spec);
const examples = collectExamples(spec);

describe("examples in openapi.yaml", () => {
  test("every example in the document is one of the checks below, each under its own name", () => {
    const checked = new Set(examples.map((e) => e.at));
    expect(allExampleLocations(spec).filter((at) => !checked.has(at))).toEqual([]);
    const names = examples.map((e) => e.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  test.each(examples.map((e) => [e.name, e] as const))("%s matches its schema", (_name, example) => {
    expect(example.schemaAt, `${example.at} has no schema to check it against`).not.toBeNull();
    expect(schemas.errors(example.schemaAt!, example.value), example.at).toEqual([]);
  });
});

describe("request examples sent to the server", () => {
  let srv: TestServer;
  // The OAuth examples need an authorization server to talk to: a real one, on loopback.
  let oauthPeer: OAuthPeer;
  beforeAll(async () => {
    srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_OAUTH_RETURN_URLS: "https://app.example.com/" } });
    oauthPeer = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback` });
  });
  afterAll(async () => {
    await oauthPeer?.close();
    await srv?.stop();
  });
  const validate = responseValidator(spec);

  /** Fills `{id}` with a record created in the workspace; other path parameters have no filler yet. */
  async function concretePath(template: string, workspaceId: string, token: string): Promise<string> {
    let path = template;
    const oauth = template.includes("/oauth");
    // A person's own connection exists only on a user-scope record (api_key, as the example sets a key).
    const perPerson = template.includes("/connections");
    for (const [placeholder, name] of template.matchAll(/\{([^}]+)\}/g)) {
      if (name === "workspaceId") {
        path = path.replace(placeholder, workspaceId);
        continue;
      }
      if (name === "toolsetId") {
        const made = await srv.client(token).POST("/api/workspaces/{workspaceId}/toolsets", { params: { path: { workspaceId } }, body: { name: "example toolset", tools: [] } });
        expect(made.response.status).toBe(201);
        path = path.replace(placeholder, made.data!.id);
        continue;
      }
      if (name !== "id") throw new Error(`no way to fill the path parameter {${name}} of ${template}`);
      const { data, response } = await srv.client(token).POST("/api/mcp-servers", {
        body: oauth
          ? { workspaceId, name: "example target", url: oauthPeer.mcpUrl, authType: "oauth", oauthClientId: oauthPeer.clientId, oauthClientSecret: oauthPeer.clientSecret }
          : perPerson
            ? { workspaceId, name: "example target", url: "https://mcp.example.com/mcp", authType: "api_key", connectionScope: "user" }
            : { workspaceId, name: "example target", url: "https://mcp.example.com/mcp" },
      });
      expect(response.status).toBe(201);
      path = path.replace(placeholder, data!.id);
    }
    return path;
  }

  function successStatuses(example: RequestExample): number[] {
    const responses = (spec.paths as any)[example.path][example.method].responses as Record<string, unknown>;
    return Object.keys(responses).filter((s) => /^2\d\d$/.test(s)).map(Number);
  }

  test.each(requestExamples(spec).map((e) => [e.name, e] as const))("%s answers its documented success status", async (_name, example) => {
    const workspaceId = uniqueWorkspace("example");
    const token = await srv.token([workspaceId]);
    // The only rewrite: workspace ids (`workspaceId`, or a `workspaces` list) become a fresh
    // workspace the token covers, so the example's fixed name cannot collide (409) with an
    // earlier send, and a new token may name it.
    const value = example.value as Json;
    const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
    const body = !isObject ? value
      : { ...value, ...("workspaceId" in value ? { workspaceId } : {}), ...(Array.isArray(value.workspaces) ? { workspaces: [workspaceId] } : {}) };
    const path = await concretePath(example.path, workspaceId, token);

    const response = await fetch(srv.baseUrl + path, {
      method: example.method.toUpperCase(),
      headers: { authorization: `Bearer ${token}`, "content-type": example.mediaType },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    const res: ContractResponse = { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : undefined };

    const success = successStatuses(example);
    expect(success, `${example.operationId} documents one success status`).toHaveLength(1);
    validate(res, example.operationId, success[0]);
  });
});
