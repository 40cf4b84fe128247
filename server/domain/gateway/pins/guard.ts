// The gateway's side of pinned tool definitions: each process keeps every pin of a server in
// memory, read at most once per PIN_CACHE_MS, so checking a call or a list costs no database
// query. What this process learns (a first sight, a change, a pin seen again) updates its copy
// at once, synchronously, and is written through conditional writes (tool-pin-repo.ts) so that
// several processes seeing one change record it once. A change made elsewhere (another
// process's sight or an approval) reaches this process when its copy is next read: within
// PIN_CACHE_MS, the same bound as the record cache. An approval or removal through this
// process drops its copy at once.
import type { ToolPinRepo, StoredPin } from "../../../data/tool-pin-repo.js";
import type { McpServer } from "../../../wire.js";
import { validToolName } from "../policy.js";
import { canonicalJson, changedParts, definitionOf, hashOf, partsOf, type ToolDefinition, type ToolPart } from "./definitions.js";

export const PIN_CACHE_MS = 1000;
const MAX_SERVERS = 10_000;

interface PinState {
  pinnedHash: string;
  pinnedParts: Record<ToolPart, string>;
  /** The definition last seen, while it differs from the pin: the tool is held. */
  currentHash: string | null;
  changedParts: ToolPart[];
  missing: boolean;
}

interface Entry {
  states: Promise<Map<string, PinState>>;
  expires: number;
  /** Writes of this process still under way: the copy is not re-read over them. */
  writing: number;
}

/** One relay's view of a server's pins; every method is synchronous. */
export interface PinGuard {
  /** The parts that changed when `tool` is held, else null. */
  held(tool: string): ToolPart[] | null;
  /**
   * Tools a server listed: first sights are pinned, changes recorded; answers the tools the agent
   * may see (held ones left out). `complete`: the server's whole list, so a pin not in it is missing.
   */
  observe(tools: readonly unknown[], complete?: boolean): unknown[];
  /** Resolves when the writes this view started are done. */
  settled(): Promise<void>;
}

/** Who saw a change: the event records their request, with the product as actor. */
export interface Witness {
  requestId?: string | null;
}

function stateOf(pin: StoredPin): PinState {
  return {
    pinnedHash: pin.pinnedHash,
    pinnedParts: partsOf(JSON.parse(pin.pinnedDefinition) as ToolDefinition),
    currentHash: pin.currentHash,
    changedParts: pin.changedParts as ToolPart[],
    missing: pin.missing,
  };
}

export function createPinGuards(deps: { repo: ToolPinRepo; now?: () => Date; ttlMs?: number; onError?: (err: unknown) => void }) {
  const { repo, now = () => new Date(), ttlMs = PIN_CACHE_MS, onError = () => {} } = deps;
  const clock = () => now().getTime();
  const cache = new Map<string, Entry>();

  function entryFor(serverId: string): Entry {
    const t = clock();
    const hit = cache.get(serverId);
    if (hit && (hit.expires > t || hit.writing > 0)) return hit;
    if (cache.size >= MAX_SERVERS) {
      for (const [key, e] of cache) if (e.expires <= t && e.writing === 0) cache.delete(key);
      if (cache.size >= MAX_SERVERS) cache.delete(cache.keys().next().value!);
    }
    const entry: Entry = {
      states: repo.all(serverId).then((pins) => new Map(pins.map((p) => [p.tool, stateOf(p)]))),
      expires: t + ttlMs,
      writing: 0,
    };
    cache.set(serverId, entry);
    entry.states.catch(() => cache.get(serverId) === entry && cache.delete(serverId));
    return entry;
  }

  return {
    /** The guard for one relay to `server`, or null when the record does not pin (toolPinning false). */
    async guard(server: Pick<McpServer, "id" | "workspaceId" | "toolPinning">, witness: Witness = {}): Promise<PinGuard | null> {
      if (!server.toolPinning) return null;
      const entry = entryFor(server.id);
      const states = await entry.states;
      const ref = { id: server.id, workspaceId: server.workspaceId };
      const writes: Promise<void>[] = [];

      const write = (work: () => Promise<unknown>) => {
        entry.writing++;
        const done = work()
          .then(
            () => undefined,
            (err) => {
              // What this process believes may now differ from the store: read it again.
              entry.expires = 0;
              onError(err);
            },
          )
          .finally(() => {
            entry.writing--;
          });
        writes.push(done);
      };

      return {
        held(tool) {
          const s = states.get(tool);
          return s && s.currentHash !== null ? s.changedParts : null;
        },

        observe(tools, complete = false) {
          const at = now().toISOString();
          const visible: unknown[] = [];
          const present: string[] = [];
          const seen = new Set<string>();
          for (const tool of tools) {
            const definition = definitionOf(tool);
            // Not a tool the relay serves anyway (no name): left to the other policies.
            if (!definition) {
              visible.push(tool);
              continue;
            }
            const name = definition.name;
            // Not an MCP tool name: never called through the gateway, and its pin could be neither
            // stored (128 characters on PostgreSQL) nor approved (the path's pattern), so it would be
            // served unpinned, its text changing at will. Left out instead.
            if (!validToolName(name)) continue;
            // A second tool of one name in one list: left out, so that a server listing two
            // definitions under one name cannot flip its pin (and write an event) at every list.
            if (seen.has(name)) continue;
            seen.add(name);
            present.push(name);
            const canonical = canonicalJson(definition);
            const hash = hashOf(canonical);
            const s = states.get(name);
            if (!s) {
              states.set(name, { pinnedHash: hash, pinnedParts: partsOf(definition), currentHash: null, changedParts: [], missing: false });
              write(async () => {
                // Another process pinned it first, perhaps as another definition: take the store's word.
                if (!(await repo.pin(ref, name, canonical, hash, at))) entry.expires = 0;
              });
              visible.push(tool);
              continue;
            }
            if (hash === s.pinnedHash) {
              if (s.currentHash !== null || s.missing) {
                Object.assign(s, { currentHash: null, changedParts: [], missing: false });
                write(() => repo.recordRestored(server.id, name, hash));
              }
              visible.push(tool);
              continue;
            }
            if (s.currentHash !== hash || s.missing) {
              const parts = changedParts(s.pinnedParts, partsOf(definition));
              Object.assign(s, { currentHash: hash, changedParts: parts, missing: false });
              write(() =>
                repo.recordChange(ref, name, { definition: canonical, hash, parts }, at, {
                  type: "tool_definition_changed",
                  actor: "system",
                  tokenId: null,
                  requestId: witness.requestId ?? null,
                  fields: [],
                  toolChange: { tool: name, parts },
                }),
              );
            }
            // Held: the agent never reads the new text.
          }
          if (complete) {
            let gone = false;
            for (const [tool, s] of states) {
              if (!seen.has(tool) && !s.missing) {
                s.missing = true;
                gone = true;
              }
            }
            if (gone) write(() => repo.recordMissing(server.id, present, at));
          }
          return visible;
        },

        settled: async () => {
          await Promise.all(writes);
        },
      };
    },

    /** Forgets this process's copy of a server's pins (after an approval or removal here). */
    drop(serverId: string) {
      cache.delete(serverId);
    },
  };
}

export type PinGuards = ReturnType<typeof createPinGuards>;
