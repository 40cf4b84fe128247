// The gateway's record and opened credentials without two queries per relayed message: a
// record read is trusted for RECORD_CACHE_MS (the same bound as tokens), so a change made by
// another process (a new credential, disabled, deleted) reaches this one within that delay.
// A change made through this process drops the entry at once. Keyed by record id; an entry
// is only ever of one version of the record (a write of any kind drops it).
import type { McpServerRepo, Secrets, StoredServer } from "../../data/mcp-server-repo.js";

export const RECORD_CACHE_MS = 1000;
const MAX_ENTRIES = 10_000;

interface Entry {
  /** The record as read (null: not there), and when that read stops being trusted. */
  stored: Promise<StoredServer | null>;
  expires: number;
  /** Its opened credentials, for that same version, once asked for. */
  secrets?: Promise<Secrets>;
  secretsVersion?: number;
}

export interface RecordCache {
  /** The repository every use case writes through: each write drops the record's entry. */
  repo: McpServerRepo;
  /** The same repository with find, findByNamespace and openSecrets answered from the cache (the gateway's). */
  cached: McpServerRepo;
}

export function cacheRecordReads(repo: McpServerRepo, ttlMs = RECORD_CACHE_MS, now: () => number = Date.now): RecordCache {
  const cache = new Map<string, Entry>();
  const drop = (id: string) => void cache.delete(id);
  // The workspace endpoint's name lookup: which record holds a namespace (null: none), per workspace, for the same bound.
  // A create, edit or removal through this process drops its workspace's lookups (a name may have come or gone).
  const namespaces = new Map<string, Map<string, { id: Promise<string | null>; expires: number }>>();
  const dropNamespaces = (workspaceId: string) => void namespaces.delete(workspaceId);

  function entryFor(id: string): Entry {
    const t = now();
    const hit = cache.get(id);
    if (hit && hit.expires > t) return hit;
    if (cache.size >= MAX_ENTRIES) {
      for (const [key, e] of cache) if (e.expires <= t) cache.delete(key);
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    }
    // Read across every workspace once; find() below scopes it to the caller's. The lookup is
    // shared, so concurrent messages to one record cost one query.
    const entry: Entry = { stored: repo.findAnyWorkspace(id), expires: t + ttlMs };
    cache.set(id, entry);
    entry.stored.catch(() => cache.get(id) === entry && cache.delete(id));
    return entry;
  }

  // Every write of the record, whoever makes it in this process, drops its entry when done.
  const invalidating = <A extends unknown[], R>(write: (...args: A) => Promise<R>, idOf: (...args: A) => string, workspaceOf?: (...args: A) => string) =>
    async (...args: A): Promise<R> => {
      try {
        return await write(...args);
      } finally {
        drop(idOf(...args));
        if (workspaceOf) dropNamespaces(workspaceOf(...args));
      }
    };
  const writes: McpServerRepo = {
    ...repo,
    insert: invalidating(repo.insert, (input) => input.id, (input) => input.workspaceId),
    update: invalidating(repo.update, (current) => current.server.id, (current) => current.server.workspaceId),
    recordCheck: invalidating(repo.recordCheck, (current) => current.server.id),
    remove: invalidating(repo.remove, (current) => current.server.id, (current) => current.server.workspaceId),
    writeOAuth: invalidating(repo.writeOAuth, (current) => current.server.id),
  };

  async function find(workspaces: readonly string[], id: string): Promise<StoredServer | null> {
    const stored = await entryFor(id).stored;
    return stored && workspaces.includes(stored.server.workspaceId) ? stored : null;
  }

  const cached: McpServerRepo = {
    ...writes,
    find,
    async findByNamespace(workspaceId: string, namespace: string): Promise<StoredServer | null> {
      const t = now();
      let held = namespaces.get(workspaceId);
      let hit = held?.get(namespace);
      if (!hit || hit.expires <= t) {
        if (!held) {
          if (namespaces.size >= MAX_ENTRIES) namespaces.delete(namespaces.keys().next().value!);
          namespaces.set(workspaceId, (held = new Map()));
        }
        if (held.size >= MAX_ENTRIES) held.clear();
        const lookup = { id: repo.findByNamespace(workspaceId, namespace).then((s) => s?.server.id ?? null), expires: t + ttlMs };
        const mine = held;
        lookup.id.catch(() => mine.get(namespace) === lookup && mine.delete(namespace));
        held.set(namespace, (hit = lookup));
      }
      const id = await hit.id;
      // The record itself from its own entry, so an edit through this process shows at once.
      return id === null ? null : find([workspaceId], id);
    },
    async openSecrets(workspaceId: string, id: string): Promise<Secrets> {
      const entry = entryFor(id);
      const stored = await entry.stored;
      // Only for the version this entry holds; anything else asks the store.
      if (!stored || stored.server.workspaceId !== workspaceId) return repo.openSecrets(workspaceId, id);
      if (entry.secrets === undefined || entry.secretsVersion !== stored.version) {
        entry.secrets = repo.openSecrets(workspaceId, id);
        entry.secretsVersion = stored.version;
        const secrets = entry.secrets;
        secrets.catch(() => entry.secrets === secrets && (entry.secrets = undefined));
      }
      return entry.secrets;
    },
  };
  return { repo: writes, cached };
}
