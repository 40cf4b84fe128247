#!/usr/bin/env node
// The conformance suite's "client" for the auth scenarios, played by the product: it drives
// the product only through its public HTTP API, as a user and a browser would.
//   conformance client --command "node test/conformance/oauth-client-adapter.mjs" --scenario auth/…
// The suite appends the scenario's MCP server URL and passes MCP_CONFORMANCE_SCENARIO and
// MCP_CONFORMANCE_CONTEXT; PRODUCT_URL, PRODUCT_TOKEN and PRODUCT_WORKSPACE name the product.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

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

// The product's public origin stands for where it listens (PRODUCT_PUBLIC_URL → PRODUCT_URL), as a hosts-file entry would.
const local = (url) => {
  const publicUrl = process.env.PRODUCT_PUBLIC_URL;
  return publicUrl && url.startsWith(publicUrl) ? base + url.slice(publicUrl.length) : url;
};

/** The browser at the authorization server (which redirects at once), then back at the product's callback. */
async function throughAuthorizationServer(authorizationUrl, cookie) {
  const atAs = await fetch(authorizationUrl, { redirect: "manual" });
  const callback = atAs.headers.get("location");
  console.log(`authorization server → ${atAs.status} ${callback ?? ""}`);
  if (!callback) return false;
  const landed = await fetch(local(callback), { redirect: "manual", headers: cookie ? { cookie } : {} });
  const page = await landed.text();
  console.log(`callback → ${landed.status} ${page.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 200)}`);
  return landed.status === 200;
}

/** What a user does with a browser: start the authorization, let the AS redirect back, land on the callback. */
async function authorize() {
  const started = await api("POST", `/api/mcp-servers/${id}/oauth/authorize`);
  if (started.status !== 200) return false;
  return throughAuthorizationServer(started.json.authorizationUrl, null);
}

/** What a user does with the link an agent shows them (-32042): sign in to the product in the browser, open it. */
async function openConnectLink(url) {
  const session = await fetch(`${base}/api/session`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  const cookie = (session.headers.get("set-cookie") ?? "").split(";")[0];
  console.log(`POST /api/session → ${session.status}`);
  if (session.status !== 204 || !cookie) return false;
  const page = await fetch(local(url), { redirect: "manual", headers: { cookie } });
  const location = page.headers.get("location");
  console.log(`GET ${url} → ${page.status} ${location ?? (await page.text()).replace(/<[^>]+>/g, " ").slice(0, 200)}`);
  if (page.status !== 302 || !location) return false;
  return throughAuthorizationServer(location, cookie);
}

/** What the agent does: call the server's first tool through the product's MCP gateway. */
async function callTool(name) {
  // SDK v2, negotiating the revision the scenario's server speaks (2026-07-28, else the 2025 handshake).
  const client = new Client({ name: "conformance-agent", version: "1.0.0" }, { capabilities: {}, versionNegotiation: { mode: "auto" } });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/api/mcp-servers/${id}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  try {
    await client.connect(transport);
    const result = await client.callTool({ name, arguments: {} });
    console.log(`gateway tools/call ${name} → ${JSON.stringify(result).slice(0, 200)}`);
    return { ok: result.isError !== true };
  } catch (err) {
    console.log(`gateway tools/call ${name} → error ${err.code ?? ""} ${String(err.message).slice(0, 300)}`);
    const elicitation = err.code === -32042 ? err.data?.elicitations?.[0] : undefined;
    return { ok: false, elicitation };
  } finally {
    await client.close().catch(() => {});
  }
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
if (!used.ok) process.exit(1);
// The agent uses a tool. Told to send its person to a link (-32042, e.g. a step-up to more
// scopes), the person opens it and the agent tries again; a person gives up after three links.
const tool = used.tools.json?.data?.[0]?.name ?? used.tools.json?.[0]?.name;
if (!tool) process.exit(0);
let called = await callTool(tool);
for (let links = 0; !called.ok && called.elicitation && links < 3; links++) {
  if (!(await openConnectLink(called.elicitation.url))) process.exit(1);
  called = await callTool(tool);
}
process.exit(called.ok ? 0 : 1);
