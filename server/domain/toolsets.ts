// Toolsets (issue 22): named MCP endpoints made of chosen tools of one workspace's servers.
// The records' rules live here; serving one is the workspace gateway's work, through a view.
import type { McpServerRepo, StoredServer } from "../data/mcp-server-repo.js";
import type { StoredToolset, StoredToolsetTool, ToolsetEventInput, ToolsetRepo } from "../data/toolset-repo.js";
import type { FieldChange, ProblemFieldError, Toolset, ToolsetCreate, ToolsetEventList, ToolsetList, ToolsetPatch } from "../wire.js";
import type { CursorCodec } from "./cursor.js";
import { Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed } from "./errors.js";
import type { ExpectedVersion } from "./mcp-servers.js";
import { namespaceOf, namespaced } from "./names.js";
import type { Actor } from "./tokens.js";
import type { LeftOut, Member, ToolView } from "./workspace-gateway.js";

/** What toolsets need of the workspace gateway: its members' namespaces, and their live tool lists. */
export interface ToolsetGateway {
  members(actor: Actor, workspaceId: string): Promise<Member[]>;
  offeredTools(actor: Actor, workspaceId: string, serverIds: ReadonlySet<string>): Promise<{ offered: Map<string, Set<string>>; leftOut: LeftOut[] }>;
}

export interface ToolsetServiceDeps {
  repo: ToolsetRepo;
  servers: Pick<McpServerRepo, "list">;
  workspace: ToolsetGateway;
  cursors: CursorCodec;
  now?: () => Date;
}

export interface VersionedToolset {
  toolset: Toolset;
  version: number;
}

const MAX_WRITE_ATTEMPTS = 5;

function requireWorkspace(actor: Actor, workspaceId: string) {
  if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
}

function event(actor: Actor, type: ToolsetEventInput["type"], fields: FieldChange[] = [], removedTools?: ToolsetEventInput["removedTools"]): ToolsetEventInput {
  return { type, actor: actor.userId, requestId: actor.requestId ?? null, fields, ...(removedTools ? { removedTools } : {}) };
}

const entryOf = (t: { serverId: string; tool: string; name?: string | null; description?: string | null }): StoredToolsetTool => ({
  serverId: t.serverId,
  tool: t.tool,
  name: t.name ?? null,
  description: t.description ?? null,
});

/** PostgreSQL cannot store NUL in text (it refuses the whole statement); refused on both stores alike. */
function checkText(input: { name?: string; description?: string | null }) {
  const errors: ProblemFieldError[] = [];
  if (input.name?.includes("\u0000")) errors.push({ path: "/name", message: "must not contain NUL characters" });
  if (input.description?.includes("\u0000")) errors.push({ path: "/description", message: "must not contain NUL characters" });
  if (errors.length) throw new ValidationFailed(errors);
}

const sameTool = (a: { serverId: string; tool: string }, b: { serverId: string; tool: string }) => a.serverId === b.serverId && a.tool === b.tool;

/** The toolset's view for the workspace gateway. */
export function viewOf(toolset: StoredToolset): ToolView {
  const tools = new Map<string, Map<string, { name: string | null; description: string | null }>>();
  for (const t of toolset.tools) {
    let perServer = tools.get(t.serverId);
    if (!perServer) tools.set(t.serverId, (perServer = new Map()));
    perServer.set(t.tool, { name: t.name, description: t.description });
  }
  return { tools };
}

export function createToolsetService({ repo, servers, workspace, cursors, now = () => new Date() }: ToolsetServiceDeps) {
  /** Every record of the workspace (disabled ones too) and the namespace each is served under. */
  async function namespacesOf(actor: Actor, workspaceId: string) {
    const all = await servers.list(workspaceId, 10_000, null);
    const byId = new Map<string, StoredServer>(all.map((s) => [s.server.id, s]));
    // The gateway's own namespaces for enabled members (it settles the rare shared one); a disabled record's from its name.
    const namespaces = new Map<string, string>(all.map((s) => [s.server.id, namespaceOf(s.server.name)]));
    for (const m of await workspace.members(actor, workspaceId)) namespaces.set(m.stored.server.id, m.namespace);
    return { byId, namespaces };
  }

  const exposedName = (t: StoredToolsetTool, namespaces: Map<string, string>) => t.name ?? namespaced(namespaces.get(t.serverId) ?? "server", t.tool);

  function toWire(t: StoredToolset, namespaces: Map<string, string>): Toolset {
    return {
      id: t.id,
      workspaceId: t.workspaceId,
      name: t.name,
      description: t.description,
      tools: t.tools.map((x) => ({ ...x, exposedName: exposedName(x, namespaces) ?? `${namespaces.get(x.serverId) ?? "server"}__${x.tool}` })),
      mcpPath: `/api/toolsets/${t.id}/mcp`,
      createdBy: t.createdBy,
      createdAt: t.createdAt,
      updatedAt: t.updatedAt,
    };
  }

  const versioned = async (actor: Actor, t: StoredToolset): Promise<VersionedToolset> => ({
    toolset: toWire(t, (await namespacesOf(actor, t.workspaceId)).namespaces),
    version: t.version,
  });

  /**
   * The write-time checks, each refusing with nothing changed: entries naming no server of the
   * workspace or an invalid served name (400), two entries served under one name (409), and
   * tools their server does not offer (400, from the live list). Entries already in `current`
   * are not listed again, so that a rename works while a server is down.
   */
  async function check(actor: Actor, workspaceId: string, tools: StoredToolsetTool[], current: StoredToolsetTool[] = []) {
    const { byId, namespaces } = await namespacesOf(actor, workspaceId);
    const errors: ProblemFieldError[] = [];
    tools.forEach((t, i) => {
      if (!byId.has(t.serverId)) {
        errors.push({ path: `/tools/${i}/serverId`, message: `is not an MCP server of workspace ${workspaceId}: ${t.serverId}` });
        return;
      }
      const first = tools.findIndex((o) => sameTool(o, t));
      if (first !== i) errors.push({ path: `/tools/${i}`, message: `names the same tool as /tools/${first} (${t.tool} of ${t.serverId}); list a tool once` });
      else if (t.name === null && exposedName(t, namespaces) === null) {
        errors.push({ path: `/tools/${i}/tool`, message: `would be served as ${namespaces.get(t.serverId)}__${t.tool}, which is not a valid MCP tool name; give it a name` });
      }
    });
    if (errors.length) throw new ValidationFailed(errors);

    const taken = new Map<string, number>();
    for (const [i, t] of tools.entries()) {
      const name = exposedName(t, namespaces)!;
      const other = taken.get(name);
      if (other !== undefined) {
        const o = tools[other];
        throw new Conflict(
          `Two tools would both be served as '${name}': /tools/${other} (${o.tool} of ${o.serverId}) and /tools/${i} (${t.tool} of ${t.serverId}); give one of them another name.`,
        );
      }
      taken.set(name, i);
    }

    const fresh = tools.map((t, i) => ({ t, i })).filter(({ t }) => !current.some((c) => sameTool(c, t)));
    if (fresh.length === 0) return;
    const wanted = new Set(fresh.map(({ t }) => t.serverId));
    const disabled = [...wanted].filter((id) => !byId.get(id)!.server.enabled);
    const { offered, leftOut } = await workspace.offeredTools(actor, workspaceId, wanted);
    for (const { t, i } of fresh) {
      const server = byId.get(t.serverId)!.server;
      if (disabled.includes(t.serverId)) {
        errors.push({ path: `/tools/${i}/serverId`, message: `is MCP server '${server.name}', which is disabled, so its tools cannot be checked; enable it first` });
        continue;
      }
      const list = offered.get(t.serverId);
      if (!list) {
        const why = leftOut.find((l) => l.serverId === t.serverId);
        errors.push({ path: `/tools/${i}/serverId`, message: `is MCP server '${server.name}', whose tools could not be listed${why ? ` (${why.reason}: ${why.message})` : ""}` });
      } else if (!list.has(t.tool)) {
        errors.push({ path: `/tools/${i}/tool`, message: `is not a tool MCP server '${server.name}' offers: ${t.tool}` });
      }
    }
    if (errors.length) throw new ValidationFailed(errors);
  }

  async function findOrThrow(actor: Actor, id: string): Promise<StoredToolset> {
    const found = await repo.find(actor.workspaces, id);
    if (!found) throw new NotFound(`Toolset ${id}`);
    return found;
  }

  function checkVersion(current: StoredToolset, expected: ExpectedVersion) {
    if (expected === undefined || expected === current.version) return;
    throw new PreconditionFailed(`If-Match does not match the current version "v${current.version}".`);
  }

  return {
    async create(actor: Actor, workspaceId: string, input: ToolsetCreate): Promise<VersionedToolset> {
      requireWorkspace(actor, workspaceId);
      checkText(input);
      const tools = input.tools.map(entryOf);
      await check(actor, workspaceId, tools);
      const stored = await repo.insert(
        { workspaceId, name: input.name, description: input.description ?? null, tools, createdBy: actor.userId },
        now().toISOString(),
        event(actor, "created"),
      );
      return versioned(actor, stored);
    },

    async list(actor: Actor, workspaceId: string, query: { limit?: number; cursor?: string }): Promise<ToolsetList> {
      requireWorkspace(actor, workspaceId);
      const limit = query.limit ?? 20;
      const scope = `toolsets:${workspaceId}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await repo.list(workspaceId, limit + 1, after);
      const page = rows.slice(0, limit);
      const { namespaces } = await namespacesOf(actor, workspaceId);
      return { data: page.map((t) => toWire(t, namespaces)), nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].id) : null };
    },

    async get(actor: Actor, id: string): Promise<VersionedToolset> {
      return versioned(actor, await findOrThrow(actor, id));
    },

    async update(actor: Actor, id: string, patch: ToolsetPatch, expected?: ExpectedVersion): Promise<VersionedToolset> {
      checkText(patch);
      for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
        const current = await findOrThrow(actor, id);
        checkVersion(current, expected);
        const next = {
          name: patch.name ?? current.name,
          description: patch.description === undefined ? current.description : patch.description,
          tools: patch.tools === undefined ? current.tools : patch.tools.map(entryOf),
        };
        const fields: FieldChange[] = [];
        if (next.name !== current.name) fields.push({ name: "name", change: "changed" });
        if (next.description !== current.description) fields.push({ name: "description", change: next.description === null ? "cleared" : current.description === null ? "set" : "changed" });
        if (JSON.stringify(next.tools) !== JSON.stringify(current.tools)) fields.push({ name: "tools", change: "changed" });
        if (fields.length === 0) return versioned(actor, current);
        if (patch.tools !== undefined) await check(actor, current.workspaceId, next.tools, current.tools);
        const written = await repo.update(current, next, now().toISOString(), event(actor, "updated", fields));
        if (written) return versioned(actor, written);
        if (expected !== undefined) throw new PreconditionFailed(`Toolset ${id} changed while it was being updated.`);
      }
      throw new Conflict(`Toolset ${id} is being changed by others; try again.`);
    },

    async remove(actor: Actor, id: string, expected?: ExpectedVersion): Promise<void> {
      const current = await findOrThrow(actor, id);
      checkVersion(current, expected);
      if (await repo.remove(current, expected === undefined ? null : current.version, now().toISOString(), event(actor, "deleted"))) return;
      if (expected !== undefined && (await repo.find(actor.workspaces, id))) throw new PreconditionFailed(`Toolset ${id} changed while it was being deleted.`);
      throw new NotFound(`Toolset ${id}`);
    },

    async listEvents(actor: Actor, id: string, query: { limit?: number; cursor?: string }): Promise<ToolsetEventList> {
      const limit = query.limit ?? 20;
      const scope = `toolset-events:${id}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await repo.listEvents(actor.workspaces, id, limit + 1, after);
      if (rows.length === 0 && !after) throw new NotFound(`Toolset ${id}`);
      const page = rows.slice(0, limit);
      return { data: page, nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].id) : null };
    },

    /** The workspace and view a toolset's MCP endpoint serves, for a token that may use it. */
    async serving(actor: Actor, id: string): Promise<{ workspaceId: string; view: ToolView }> {
      if (actor.toolsets && !actor.toolsets.includes(id)) {
        throw new Forbidden(`This token is limited to toolsets ${actor.toolsets.join(", ")}: it may not use toolset ${id}.`);
      }
      // Another workspace's toolset is not found, as on every other toolset operation and the
      // per-server endpoint: a 403 would confirm that it exists, and its detail name that workspace.
      const toolset = await repo.find(actor.workspaces, id);
      if (!toolset) throw new NotFound(`Toolset ${id}`);
      return { workspaceId: toolset.workspaceId, view: viewOf(toolset) };
    },

    /** A deleted server's tools leave every toolset of its workspace, each recorded in the toolset's own trail. */
    async serverDeleted(actor: Actor, server: { id: string; workspaceId: string }): Promise<void> {
      for (const held of await repo.withServer(server.workspaceId, server.id)) {
        for (let attempt = 1, current: StoredToolset | null = held; current && attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
          const removed = current.tools.filter((t) => t.serverId === server.id);
          if (removed.length === 0) break;
          const next = { name: current.name, description: current.description, tools: current.tools.filter((t) => t.serverId !== server.id) };
          const written = await repo.update(current, next, now().toISOString(), event(actor, "tools_removed", [{ name: "tools", change: "changed" }], removed.map(({ serverId, tool }) => ({ serverId, tool }))));
          if (written) break;
          current = await repo.find([server.workspaceId], held.id);
        }
      }
    },

    /** The workspace of a toolset, or null (the token service's check of a toolset limit). */
    workspaceOf: (id: string) => repo.workspaceOf(id),
  };
}

export type ToolsetService = ReturnType<typeof createToolsetService>;
