// Background health checks (MCP_API_HEALTH_INTERVAL_MS) with two real server processes on one
// store: the lease lets one of them check at a time, so each enabled server is checked once
// per interval, not twice; when that process stops, the other takes over.
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startV2Peer, type GatewayPeer } from "../helpers/gateway-peers.js";
import { dropStore, provisionStore, raw } from "../helpers/server.js";
import { spawnServerProcess } from "../helpers/server-process.js";

const root = join(import.meta.dirname, "../..");
const INTERVAL_MS = 1000;
let dataDir: string;
let env: NodeJS.ProcessEnv;
const processes: ChildProcess[] = [];
const peers: GatewayPeer[] = [];

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { cwd: root, env, encoding: "utf8" });
  return stdout.trim();
}

/** When each check of a peer was seen (one tools/list ends every check), polled every 20 ms. */
function watch(peer: GatewayPeer) {
  const seen: number[] = [];
  let counted = 0;
  const timer = setInterval(() => {
    const checks = peer.requests.filter((h) => h["mcp-method"] === "tools/list").length;
    for (; counted < checks; counted++) seen.push(Date.now());
  }, 20);
  return { seen, stop: () => clearInterval(timer) };
}

async function until(done: () => boolean, what: string) {
  for (let i = 0; i < 1500 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(done(), what).toBe(true);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mcp-api-health-"));
  env = { ...process.env, DATABASE_URL: await provisionStore(dataDir), MCP_API_ENCRYPTION_KEY: randomBytes(32).toString("base64"), LOG_LEVEL: "warn" };
  for (let i = 0; i < 4; i++) peers.push(await startV2Peer());
}, 60_000);

afterAll(async () => {
  for (const p of processes) p.kill("SIGTERM");
  await Promise.all(processes.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.on("exit", r)))));
  for (const p of peers) await p.close();
  await dropStore(env.DATABASE_URL!);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("MCP_API_HEALTH_INTERVAL_MS", () => {
  test("when two processes run the background checks, then each enabled server is checked once per interval, not twice, recorded as /test records it, and the other process takes over when one stops", async () => {
    const extra = { MCP_API_ALLOW_PRIVATE_NETWORK: "true", MCP_API_HEALTH_INTERVAL_MS: String(INTERVAL_MS) };
    const first = await spawnServerProcess(root, { ...env, ...extra }, processes);
    await spawnServerProcess(root, { ...env, ...extra }, processes);
    const ws = `ws_health_${randomBytes(3).toString("hex")}`;
    const admin = await cli("create", "--user", "usr_health_admin", "--workspace", ws);
    const ids: string[] = [];
    for (const [i, peer] of peers.entries()) {
      const body = { workspaceId: ws, name: `peer-${i}`, url: peer.url, ...(i === 3 ? { enabled: false } : {}) };
      const created = await raw(first, "POST", "/api/mcp-servers", { token: admin, body: JSON.stringify(body) });
      expect(created.status, created.text).toBe(201);
      ids.push(created.json.id);
    }
    const watched = peers.map(watch);
    const enabled = watched.slice(0, 3);
    await until(() => enabled.every((w) => w.seen.length >= 6), "six checks of every enabled server");
    for (const w of enabled) {
      const span = w.seen.at(-1)! - w.seen[0];
      // One check per interval: n checks, each in an interval of its own, span at least n − 2 intervals.
      expect(w.seen.length, `checks over ${span} ms`).toBeLessThanOrEqual(Math.floor((span + 60) / INTERVAL_MS) + 2);
    }
    expect(watched[3].seen).toHaveLength(0); // disabled: never checked

    const health = await raw(first, "GET", `/api/workspaces/${ws}/health`, { token: admin });
    expect(health.status, health.text).toBe(200);
    expect(health.json.data.map((h: { serverId: string; status: string; lastCheckedAt: string | null }) => [h.serverId, h.status, h.lastCheckedAt !== null])).toEqual([
      [ids[0], "connected", true],
      [ids[1], "connected", true],
      [ids[2], "connected", true],
      [ids[3], "", false],
    ]);

    // One process stops; the checks go on (from the other, taking the released lease over).
    processes[0].kill("SIGTERM");
    await new Promise((r) => processes[0].on("exit", r));
    const counts = enabled.map((w) => w.seen.length);
    await until(() => enabled.every((w, i) => w.seen.length >= counts[i] + 2), "checks after one process stopped");
    for (const w of watched) w.stop();
  }, 120_000);
});
