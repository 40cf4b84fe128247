// Upstream health: a workspace's servers at a glance, and the background checks that keep it
// current (MCP_API_HEALTH_INTERVAL_MS), run by one process at a time under a lease.
import type { HealthRepo } from "../data/health-repo.js";
import type { ServerHealthList } from "../wire.js";
import { Forbidden } from "./errors.js";
import type { Actor } from "./tokens.js";

export const HEALTH_WINDOW_MS = 15 * 60 * 1000;
export const HEALTH_LEASE = "health-checks";

export interface HealthServiceDeps {
  repo: HealthRepo;
  /** Writes the tool_called events this process still buffers, so the counts include them. */
  flushEvents: () => Promise<void>;
  now?: () => Date;
}

export function createHealthService({ repo, flushEvents, now = () => new Date() }: HealthServiceDeps) {
  return {
    async workspace(actor: Actor, workspaceId: string): Promise<ServerHealthList> {
      if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
      await flushEvents();
      return { data: await repo.workspace(workspaceId, new Date(now().getTime() - HEALTH_WINDOW_MS).toISOString()) };
    },
  };
}

export type HealthService = ReturnType<typeof createHealthService>;

export interface HealthCheckDeps {
  repo: HealthRepo;
  /** Checks one server as POST /test does, recording the outcome on the record. */
  check: (actor: Actor, serverId: string) => Promise<unknown>;
  intervalMs: number;
  /** This process, as the lease names it. */
  holder: string;
  onError: (err: unknown, serverId: string | null) => void;
  now?: () => number;
}

/** What the background checks act as: the product itself, in the server's own workspace. */
const checker = (workspaceId: string): Actor => ({ tokenId: "", userId: "system", workspaces: [workspaceId], scope: "admin", requestId: null });

/**
 * Every `intervalMs`, the lease holder checks each enabled server once, spread evenly over the
 * interval. Rounds start on a fixed grid and a check that would fall into the next round is
 * skipped, so no server is checked twice in one interval, even when checks run late.
 */
export function startHealthChecks({ repo, check, intervalMs, holder, onError, now = Date.now }: HealthCheckDeps) {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let wake: (() => void) | null = null;
  let holding = false;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, Math.max(0, ms));
      timer.unref();
    });

  async function round(start: number) {
    // The lease outlives a round by two more, so a holder that is merely slow keeps it.
    holding = await repo.acquire(HEALTH_LEASE, holder, new Date(now()).toISOString(), new Date(start + 3 * intervalMs).toISOString());
    if (!holding) return;
    const servers = await repo.enabledServers();
    const end = start + intervalMs;
    for (let i = 0; i < servers.length && !stopped; i++) {
      const at = start + Math.floor((i * intervalMs) / servers.length);
      if (at > now()) await sleep(at - now());
      if (stopped || now() >= end) return; // late: the rest wait for their turn in the next round
      await check(checker(servers[i].workspaceId), servers[i].id).catch((err) => onError(err, servers[i].id));
    }
  }

  const loop = (async () => {
    let start = now();
    while (!stopped) {
      await round(start).catch((err) => onError(err, null));
      // The next grid point still ahead: a round that overran skips the points it missed.
      const elapsed = now() - start;
      start += Math.max(1, Math.ceil(elapsed / intervalMs)) * intervalMs;
      if (!stopped) await sleep(start - now());
    }
  })();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      await loop.catch(() => {});
      if (holding) await repo.release(HEALTH_LEASE, holder).catch(() => {});
    },
  };
}
