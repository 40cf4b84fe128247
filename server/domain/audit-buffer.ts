// Tool-call events written off the response path: appended to a buffer that is written to
// the store in one transaction every AUDIT_FLUSH_MS (or as soon as AUDIT_FLUSH_EVENTS are
// waiting), and in full at graceful shutdown. A crash loses at most the events of the last
// flush interval. Reads of the audit trail in this process write the buffer first, so they
// see every event this process has taken.
import type { AppendedEvent, AuditEventInput, AuditRepo } from "../data/audit-repo.js";

export const AUDIT_FLUSH_MS = 100;
const AUDIT_FLUSH_EVENTS = 500;
// Kept while the store cannot be written; past this the oldest are dropped (and said so).
const MAX_WAITING = 100_000;

export interface BufferedAudit extends AuditRepo {
  /** Writes what is waiting; resolves when it is in the store. */
  flush(): Promise<void>;
  /** Flushes and stops the timer (graceful shutdown). */
  close(): Promise<void>;
  waiting(): number;
}

export function bufferAppends(audit: AuditRepo, options: { flushMs?: number; onError?: (err: unknown, dropped: number) => void } = {}): BufferedAudit {
  const flushMs = options.flushMs ?? AUDIT_FLUSH_MS;
  let waiting: AppendedEvent[] = [];
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();
  let closed = false;

  function schedule() {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = null;
      void flush().catch(() => {});
    }, flushMs);
  }

  /** One write at a time, in order; a failed batch goes back to the front and is tried again. */
  function flush(): Promise<void> {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    writing = writing.then(async () => {
      if (waiting.length === 0) return;
      const batch = waiting;
      waiting = [];
      try {
        await audit.appendMany(batch);
      } catch (err) {
        waiting = [...batch, ...waiting];
        const dropped = Math.max(0, waiting.length - MAX_WAITING);
        if (dropped > 0) waiting = waiting.slice(dropped);
        options.onError?.(err, dropped);
        if (!closed) schedule();
        throw err;
      }
    });
    return writing;
  }

  const flushed = async () => {
    await flush().catch(() => {}); // a read still answers from the store when the buffer cannot be written
  };

  return {
    ...audit,
    async append(server: { id: string; workspaceId: string }, event: AuditEventInput, at: string): Promise<void> {
      waiting.push({ id: audit.newEventId(), server: { id: server.id, workspaceId: server.workspaceId }, event, at });
      if (waiting.length >= AUDIT_FLUSH_EVENTS) void flush().catch(() => {});
      else schedule();
    },
    async list(...args: Parameters<AuditRepo["list"]>) {
      await flushed();
      return audit.list(...args);
    },
    async listWorkspace(...args: Parameters<AuditRepo["listWorkspace"]>) {
      await flushed();
      return audit.listWorkspace(...args);
    },
    async toolStats(...args: Parameters<AuditRepo["toolStats"]>) {
      await flushed();
      return audit.toolStats(...args);
    },
    async toolCallHours(...args: Parameters<AuditRepo["toolCallHours"]>) {
      await flushed();
      return audit.toolCallHours(...args);
    },
    flush,
    async close() {
      closed = true;
      await flush();
    },
    waiting: () => waiting.length,
  };
}
