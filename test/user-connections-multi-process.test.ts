// Issue 20's proof across processes: two server processes behind a plain round-robin balancer,
// a real authorization server (oidc-provider) whose MCP server introspects every token, two
// people who each connected their own account, and 1,000 interleaved calls at bounded
// concurrency while short-lived tokens are refreshed: every call carries its caller's own token.
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closer, listen } from "./helpers/mcp-peers.js";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { dropStore, provisionStore, raw } from "./helpers/server.js";
import { spawnServerProcess } from "./helpers/server-process.js";

const root = join(import.meta.dirname, "..");
let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
let peer: OAuthPeer;
let balancer: Awaited<ReturnType<typeof startBalancer>>;

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

/** A plain round-robin balancer whose backends are added once they listen. */
async function startBalancer() {
  const backends: string[] = [];
  let next = 0;
  const served: number[] = [];
  const server: Server = createServer((req, res) => {
    const index = next++ % backends.length;
    served.push(index);
    const upstream = httpRequest(new URL(req.url ?? "/", backends[index]), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, backends, served, close: closer(server) };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-users-mp-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  balancer = await startBalancer();
  peer = await startOAuthPeer({ redirectUri: `${balancer.url}/api/oauth/callback`, accessTokenTtlSeconds: 4 });
  // Both processes name the balancer as their public URL: connect links and the callback go through it.
  const processEnv = { ...env, MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_PUBLIC_URL: balancer.url };
  balancer.backends.push(...(await Promise.all([spawnServerProcess(root, processEnv, processes), spawnServerProcess(root, processEnv, processes)])));
}, 120_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  await balancer?.close();
  await peer?.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

const ACCEPT = { accept: "application/json, text/event-stream" };
const cookieOf = (setCookie: string | null) => /^(mcp_session=[^;]*)/.exec(setCookie ?? "")?.[1] ?? "";
const page = (url: string, cookie?: string) => fetch(url, { headers: cookie ? { cookie } : {}, redirect: "manual" });

describe("per-user connections in two processes behind a round-robin balancer", () => {
  test("when two people connect their own accounts and 1,000 calls interleave across both processes and token refreshes, then zero crossings; a third person gets -32042 with a link another person's browser cannot finish", async () => {
    const ws = `ws_usermp_${randomBytes(3).toString("hex")}`;
    const B = balancer.url;
    const people = await Promise.all(
      ["alice", "bob", "carol"].map(async (name) => {
        const userId = `usr_${name}`;
        const token = await cli("create", "--user", userId, "--workspace", ws);
        const cookie = cookieOf((await raw(B, "POST", "/api/session", { token })).headers.get("set-cookie"));
        expect(cookie).toMatch(/^mcp_session=/);
        return { userId, token, cookie };
      }),
    );
    const [alice, bob, carol] = people;
    const created = await raw(B, "POST", "/api/mcp-servers", {
      token: alice.token,
      body: JSON.stringify({
        workspaceId: ws,
        name: "Linear",
        url: peer.mcpUrl,
        authType: "oauth",
        connectionScope: "user",
        oauthClientId: peer.clientId,
        oauthClientSecret: peer.clientSecret,
        oauthAuthorizationEndpoint: peer.authorizationEndpoint,
        oauthTokenEndpoint: peer.tokenEndpoint,
      }),
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.id as string;

    // Each person connects in their own browser; the connect page and the callback may land on either process.
    for (const p of [alice, bob]) {
      const start = await page(`${B}/connect/${id}`, p.cookie);
      expect(start.status).toBe(302);
      const back = await peer.login(start.headers.get("location")!, { account: p.userId });
      expect(back.startsWith(`${B}/api/oauth/callback`)).toBe(true);
      expect((await page(back, p.cookie)).status).toBe(200);
    }

    const before = peer.mcpRequests.length;
    const refreshesBefore = peer.tokenRequests.filter((r) => r.grant_type === "refresh_token").length;
    const order = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? alice : bob));
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < order.length) {
          const i = next++;
          const who = order[i];
          const body = JSON.stringify({ jsonrpc: "2.0", id: i + 1, method: "tools/call", params: { name: "whoami", arguments: { who: who.userId } } });
          const res = await raw(B, "POST", `/api/mcp-servers/${id}/mcp`, { token: who.token, headers: ACCEPT, body });
          if (!res.json?.result) failures.push(`${i}: ${res.status} ${res.text.slice(0, 200)}`);
        }
      }),
    );
    expect(failures).toEqual([]);
    const seen = peer.mcpRequests.slice(before).filter((r) => r.who !== undefined);
    expect(seen).toHaveLength(1000);
    expect(seen.filter((r) => r.sub !== r.who)).toEqual([]);
    expect(new Set(balancer.served)).toEqual(new Set([0, 1]));
    expect(peer.tokenRequests.filter((r) => r.grant_type === "refresh_token").length).toBeGreaterThan(refreshesBefore);

    // Carol has no connection: -32042 naming the server, with the connect link; nothing reached the MCP server.
    const upstreamBefore = peer.mcpRequests.length;
    const denied = await raw(B, "POST", `/api/mcp-servers/${id}/mcp`, {
      token: carol.token,
      headers: ACCEPT,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "agent", version: "1" } } }),
    });
    expect(denied.json.error.code).toBe(-32042);
    const e = denied.json.error.data.elicitations[0];
    expect(e).toMatchObject({ mode: "url", url: `${B}/connect/${id}` });
    expect(e.message).toContain("Linear");
    expect(peer.mcpRequests.length).toBe(upstreamBefore);
    // The link works in Carol's signed-in browser, and the flow it starts is refused in Bob's.
    const start = await page(e.url, carol.cookie);
    expect(start.status).toBe(302);
    const back = await peer.login(start.headers.get("location")!, { account: carol.userId });
    const refused = await page(back, bob.cookie);
    expect(refused.status).toBe(403);
    const connections = await raw(B, "GET", `/api/mcp-servers/${id}/connections`, { token: carol.token });
    expect(connections.json.data.map((c: { userId: string }) => c.userId).sort()).toEqual([alice.userId, bob.userId]);
  }, 300_000);
});
