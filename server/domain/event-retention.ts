// Retention of the audit trail (issue 18): events older than MCP_API_EVENT_RETENTION_DAYS go,
// deleted servers' included, in small batches on a background timer, so that no request waits
// for more than one batch's statement. The same sweep removes what outlived its use elsewhere
// (`also`: the workspace endpoint's expired agent sessions' rows, issue 21).

export interface RetentionRepo {
  /** Deletes up to `batch` events recorded before `cutoff`; returns how many. */
  deleteOlderThan(cutoff: string, batch: number): Promise<number>;
}

/** Other rows the same sweep removes once they are older than `keepMs` (the workspace endpoint's expired agent sessions). */
export interface RetentionAlso {
  repo: RetentionRepo;
  keepMs: number;
  onSwept?: (removed: number) => void;
}

export interface EventRetentionOptions {
  days: number;
  also?: RetentionAlso[];
  /** Rows per delete statement. */
  batch?: number;
  /** Time between two sweeps. */
  intervalMs?: number;
  /** Time from start to the first sweep (a process restarted often still sweeps). */
  firstAfterMs?: number;
  now?: () => Date;
  onError?: (err: unknown) => void;
  onSwept?: (removed: number) => void;
}

// On SQLite a batch runs synchronously on the event loop: 500 rows held it for about 7 ms of
// CPU, 100 rows for about 2.3 ms (1.1 ms of that per statement, so the sweep costs more in all).
export const RETENTION_BATCH = 100;
export const RETENTION_INTERVAL_MS = 10 * 60_000;
export const RETENTION_FIRST_AFTER_MS = 60_000;

/** Yields to the event loop, so that requests queued behind a batch run before the next one. */
const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createEventRetention(repo: RetentionRepo, options: EventRetentionOptions) {
  const { days, batch = RETENTION_BATCH, intervalMs = RETENTION_INTERVAL_MS, firstAfterMs = RETENTION_FIRST_AFTER_MS, now = () => new Date() } = options;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;
  let closed = false;

  /** Batches until one comes back short; returns how many rows went. */
  async function sweepOne(from: RetentionRepo, keepMs: number): Promise<number> {
    const cutoff = new Date(now().getTime() - keepMs).toISOString();
    let removed = 0;
    for (;;) {
      const n = await from.deleteOlderThan(cutoff, batch);
      removed += n;
      if (n < batch || closed) return removed;
      await yieldToRequests();
    }
  }

  /** One sweep: the events, then the other rows; returns how many events it removed. */
  async function sweep(): Promise<number> {
    const removed = await sweepOne(repo, days * 86_400_000);
    for (const other of options.also ?? []) {
      if (closed) break;
      const n = await sweepOne(other.repo, other.keepMs);
      other.onSwept?.(n);
    }
    return removed;
  }

  const runOnce = (): Promise<number> => (running ??= sweep().finally(() => (running = null)));

  return {
    days,
    batch,
    runOnce,
    /** Starts the background timer (unref'd: it never keeps the process alive). */
    start() {
      if (timer || closed) return;
      const tick = () => {
        timer = setTimeout(tick, intervalMs).unref();
        runOnce().then(
          (removed) => options.onSwept?.(removed),
          (err) => options.onError?.(err),
        );
      };
      timer = setTimeout(tick, firstAfterMs).unref();
    },
    /** Stops the timer and waits for a sweep under way (it stops after its current batch). */
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running?.catch(() => {});
    },
  };
}

export type EventRetention = ReturnType<typeof createEventRetention>;
