// Issue 20 item 4 in a real browser (Debian's Chromium, driven by playwright-core): a person signs
// in (the session exchange a sign-in page makes), opens the connect page, consents at the
// authorization server (oidc-provider's own pages), and lands back at the product, connected.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startOAuthPeer, type OAuthPeer } from "./helpers/oauth-peer.js";
import { raw, startServer, uniqueWorkspace, type TestServer } from "./helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";

let srv: TestServer;
let peer: OAuthPeer;
let browser: Browser | undefined;
beforeAll(async () => {
  srv = await startServer({ env: { MCP_API_ALLOW_PRIVATE_NETWORK: "true" } });
  peer = await startOAuthPeer({ redirectUri: `${srv.baseUrl}/api/oauth/callback` });
  // Fail, never skip: CI installs the browser.
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install it with \`sudo apt-get install -y chromium\``);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync", "--disable-quic"] });
});
afterAll(async () => {
  await browser?.close();
  await peer?.close();
  await srv?.stop();
});

describe("the connect flow in Chromium", () => {
  test("when a person signs in, opens the connect link and consents, then they are back at the product, connected, and another person's browser is refused the same link", async () => {
    const ws = uniqueWorkspace();
    const alice = { userId: "usr_browser_alice", token: await srv.token([ws], "usr_browser_alice") };
    const bob = { userId: "usr_browser_bob", token: await srv.token([ws], "usr_browser_bob") };
    const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", {
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
    const id = created.json.id as string;
    // The agent learns the link from the gateway's -32042 answer.
    const denied = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: alice.token, headers: { accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) });
    const link = denied.json.error.data.elicitations[0].url as string;

    const context = await browser!.newContext();
    const page = await context.newPage();
    // Not signed in: the page says how, and links to the console.
    await page.goto(link);
    expect(await page.locator("h1").textContent()).toBe("Sign in to connect");
    expect(await page.getByRole("link", { name: /console/ }).getAttribute("href")).toBe("/console");
    // Signing in is the session exchange (the console's sign-in form sends the same request); the cookie lands in this browser.
    expect((await context.request.post(`${srv.baseUrl}/api/session`, { headers: { authorization: `Bearer ${alice.token}` } })).status()).toBe(204);
    const cookie = (await context.cookies(srv.baseUrl)).find((c) => c.name === "mcp_session")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });

    // Signed in: on to the authorization server's own login and consent pages.
    await page.goto(link);
    expect(page.url().startsWith(new URL(peer.authorizationEndpoint).origin)).toBe(true);
    await page.locator('input[name="login"]').fill(alice.userId);
    await page.locator('input[name="password"]').fill("any");
    await page.locator('button[type="submit"]').click();
    await page.waitForLoadState();
    if (page.url().startsWith(new URL(peer.authorizationEndpoint).origin)) await page.locator('button[type="submit"]').click(); // consent
    await page.waitForURL((url) => url.origin === srv.baseUrl);
    expect(await page.locator("h1").textContent()).toBe("Connected");

    const mine = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}`, { token: alice.token });
    expect(mine.json.connectorStatus).toBe("connected");
    const tools = await raw(srv.baseUrl, "POST", `/api/mcp-servers/${id}/mcp`, { token: alice.token, headers: { accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) });
    expect(tools.json.result.tools.map((t: { name: string }) => t.name)).toEqual(["whoami"]);
    expect(peer.mcpRequests.at(-1)!.sub).toBe(alice.userId);

    // Bob's browser with a link Alice started: refused, and nothing lands on Alice's or Bob's account.
    const start = await fetch(link, { headers: { cookie: `mcp_session=${cookie.value}` }, redirect: "manual" });
    const back = await peer.login(start.headers.get("location")!, { account: alice.userId });
    const bobContext = await browser!.newContext();
    await bobContext.request.post(`${srv.baseUrl}/api/session`, { headers: { authorization: `Bearer ${bob.token}` } });
    const bobPage = await bobContext.newPage();
    const answer = await bobPage.goto(back);
    expect(answer!.status()).toBe(403);
    expect(await bobPage.locator("p").first().textContent()).toContain("another person");
    const connections = await raw(srv.baseUrl, "GET", `/api/mcp-servers/${id}/connections`, { token: bob.token });
    expect(connections.json.data.map((c: { userId: string }) => c.userId)).toEqual([alice.userId]);
    await bobContext.close();
    await context.close();
  }, 120_000);
});
