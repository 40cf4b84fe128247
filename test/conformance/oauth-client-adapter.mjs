#!/usr/bin/env node
// The conformance suite's "client" for the auth scenarios, played by the product: it drives
// the product only through its public HTTP API, as a user and a browser would.
//   conformance client --command "node test/conformance/oauth-client-adapter.mjs" --scenario auth/…
// The suite appends the scenario's MCP server URL and passes MCP_CONFORMANCE_SCENARIO and
// MCP_CONFORMANCE_CONTEXT; PRODUCT_URL, PRODUCT_TOKEN and PRODUCT_WORKSPACE name the product.
const serverUrl = process.argv[process.argv.length - 1];
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? "";
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}");
const { PRODUCT_URL: base, PRODUCT_TOKEN: token, PRODUCT_WORKSPACE: workspaceId } = process.env;
if (!base || !token || !workspaceId) {
  console.error("PRODUCT_URL, PRODUCT_TOKEN and PRODUCT_WORKSPACE must be set");
  process.exit(2);
}

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  console.log(`${method} ${path} → ${res.status} ${text.slice(0, 400)}`);
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const record = { workspaceId, name: `conformance ${scenario} ${Date.now()}`, url: serverUrl, authType: "oauth" };
if (context.client_id) record.oauthClientId = context.client_id;
if (context.client_secret) record.oauthClientSecret = context.client_secret;
if (context.private_key_pem) Object.assign(record, { oauthClientAuthMethod: "private_key_jwt", oauthClientPrivateKey: context.private_key_pem });
if (scenario.startsWith("auth/client-credentials")) record.oauthGrantType = "client_credentials";

const created = await api("POST", "/api/mcp-servers", record);
if (created.status !== 201) process.exit(1);
const id = created.json.id;

/** What a user does with a browser: start the authorization, let the AS redirect back, land on the callback. */
async function authorize() {
  const started = await api("POST", `/api/mcp-servers/${id}/oauth/authorize`);
  if (started.status !== 200) return false;
  // The browser: the scenario's authorization server redirects at once, to the product's callback.
  const atAs = await fetch(started.json.authorizationUrl, { redirect: "manual" });
  const callback = atAs.headers.get("location");
  console.log(`authorization server → ${atAs.status} ${callback ?? ""}`);
  if (!callback) return false;
  // The product's public origin stands for where it listens (PRODUCT_PUBLIC_URL → PRODUCT_URL).
  const publicUrl = process.env.PRODUCT_PUBLIC_URL;
  const target = publicUrl && callback.startsWith(publicUrl) ? base + callback.slice(publicUrl.length) : callback;
  const landed = await fetch(target, { redirect: "manual" });
  const page = await landed.text();
  console.log(`callback → ${landed.status} ${page.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 200)}`);
  return landed.status === 200;
}

async function use() {
  const check = await api("POST", `/api/mcp-servers/${id}/test`);
  const tools = await api("GET", `/api/mcp-servers/${id}/tools`);
  return { ok: check.json?.connectorStatus === "connected" && tools.status === 200, check, tools };
}

const browser = record.oauthGrantType !== "client_credentials";
if (browser && !(await authorize())) process.exit(1);
let used = await use();
// A user told that the server refuses the connection (class auth) connects once more, as the
// product's error says; the product then discovers again (e.g. a new authorization server).
const refused = (r) => r.check.json?.error?.class === "auth" || r.tools.json?.detail?.startsWith("auth:");
if (!used.ok && browser && refused(used)) {
  if (!(await authorize())) process.exit(1);
  used = await use();
}
process.exit(used.ok ? 0 : 1);
