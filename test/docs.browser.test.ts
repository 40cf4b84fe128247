// Opens /docs in headless Chromium (Debian's `chromium` package, driven by playwright-core)
// and checks the reference really renders, offline, within its CSP.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startServer, type TestServer } from "./helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts");
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

const spec = JSON.parse(readFileSync(new URL("../generated/openapi.json", import.meta.url), "utf8"));
const summaries: string[] = Object.values<Record<string, { summary?: string }>>(spec.paths).flatMap((item) =>
  Object.values(item).flatMap((op) => (typeof op === "object" && op?.summary ? [op.summary] : [])),
);

function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "data:" || protocol === "blob:" || LOCAL_HOSTS.has(hostname);
}

// Fail, never skip: CI installs the browser, and a skipped check would pass unnoticed.
async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with \`sudo apt-get update && sudo apt-get install -y chromium\` (.ci/run does this)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });
}

let srv: TestServer;
let browser: Browser | undefined;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  await browser?.close();
  await srv.stop();
});

describe("GET /docs in a browser", () => {
  test("when the page has rendered, then every operation's summary is on it and no request left the machine", { timeout: 60_000 }, async () => {
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    const pageErrors: string[] = [];
    context.on("request", (r) => void requests.push(r.url()));
    const page = await context.newPage();
    page.on("pageerror", (err) => void pageErrors.push(err.message));
    await page.addInitScript(() => {
      const w = window as unknown as { cspViolations: string[] };
      w.cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) => void w.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));
    });

    const response = await page.goto(`${srv.baseUrl}/docs`, { waitUntil: "networkidle" });
    expect(response?.status()).toBe(200);
    expect(summaries.length).toBeGreaterThan(0);
    // Redoc renders after fetching the spec; wait until it has, then judge what is on the page.
    await page
      .waitForFunction((wanted) => wanted.every((s) => document.body.innerText.includes(s)), summaries, { timeout: 20_000 })
      .catch(() => undefined);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "docs.png") });

    const text = await page.innerText("body");
    expect(summaries.filter((s) => !text.includes(s))).toEqual([]);
    expect(requests.filter((url) => !isLocal(url))).toEqual([]);
    expect(requests).toContain(`${srv.baseUrl}/openapi.json`);
    expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
