// The use cases of pinned tool definitions that people drive (GET, approve, forget), scoped by
// workspace through the record as every record operation is.
import type { McpServerRepo } from "../../../data/mcp-server-repo.js";
import type { StoredPin, ToolPinRepo } from "../../../data/tool-pin-repo.js";
import type { components } from "../../../../generated/api.js";
import type { CursorCodec } from "../../cursor.js";
import { Conflict, NotFound, PreconditionFailed, PreconditionRequired } from "../../errors.js";
import type { Actor } from "../../tokens.js";
import { changedParts, hashOf, partsOf, type ToolDefinition, type ToolPart } from "./definitions.js";
import type { PinGuards } from "./guard.js";

type ToolPin = components["schemas"]["ToolPin"];
type ToolPinDetail = components["schemas"]["ToolPinDetail"];
type ToolPinList = components["schemas"]["ToolPinList"];

/** A pin with the ETag naming both its definitions: an approval applies only to what was read. */
export interface VersionedPin {
  pin: ToolPinDetail;
  etag: string;
}

export const pinEtag = (pin: Pick<StoredPin, "pinnedHash" | "currentHash">): string => `"${hashOf(`${pin.pinnedHash}/${pin.currentHash ?? ""}`).slice(0, 24)}"`;

function statusOf(p: StoredPin): ToolPin["status"] {
  if (p.missing) return "missing";
  return p.currentHash !== null ? "changed" : "pinned";
}

function toPin(p: StoredPin): ToolPin {
  const status = statusOf(p);
  return {
    tool: p.tool,
    status,
    pinnedHash: p.pinnedHash,
    ...(status === "changed" && p.currentHash ? { currentHash: p.currentHash } : {}),
    changedParts: status === "changed" ? (p.changedParts as ToolPart[]) : [],
    pinnedAt: p.pinnedAt,
    changedAt: p.changedAt,
  };
}

function toDetail(p: StoredPin): VersionedPin {
  const pinned = JSON.parse(p.pinnedDefinition) as ToolDefinition;
  const status = statusOf(p);
  const current = status === "missing" ? null : p.currentDefinition !== null ? (JSON.parse(p.currentDefinition) as ToolDefinition) : pinned;
  return { pin: { ...toPin(p), pinned, current }, etag: pinEtag(p) };
}

/** If-Match → the tags it lists; `*` names nothing in particular, so it approves nothing. */
function tagsOf(header: string | string[] | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(",") : header;
  return value
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
}

export function createToolPinService(deps: { servers: McpServerRepo; pins: ToolPinRepo; guards: PinGuards; cursors: CursorCodec; now?: () => Date }) {
  const { servers, pins, guards, cursors, now = () => new Date() } = deps;

  async function serverOf(actor: Actor, id: string) {
    const stored = await servers.find(actor.workspaces, id);
    if (!stored) throw new NotFound(`MCP server ${id}`);
    return stored.server;
  }
  async function pinOf(actor: Actor, id: string, tool: string) {
    const server = await serverOf(actor, id);
    const pin = await pins.find(id, tool);
    if (!pin) throw new NotFound(`Pinned tool '${tool}' of MCP server ${id}`);
    return { server, pin };
  }
  const event = (actor: Actor, type: "tool_definition_approved" | "tool_pin_removed", tool: string, parts: ToolPart[]) => ({
    type,
    actor: actor.userId,
    tokenId: actor.tokenId,
    requestId: actor.requestId ?? null,
    fields: [],
    toolChange: { tool, parts },
  });

  return {
    async list(actor: Actor, id: string, query: { limit?: number; cursor?: string }): Promise<ToolPinList> {
      await serverOf(actor, id);
      const limit = query.limit ?? 20;
      const scope = `tool-pins:${id}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await pins.page(id, limit + 1, after);
      const page = rows.slice(0, limit);
      return { data: page.map(toPin), nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].tool) : null };
    },

    async get(actor: Actor, id: string, tool: string): Promise<VersionedPin> {
      return toDetail((await pinOf(actor, id, tool)).pin);
    },

    async approve(actor: Actor, id: string, tool: string, ifMatch: string | string[] | undefined): Promise<VersionedPin> {
      const { server, pin } = await pinOf(actor, id, tool);
      const tags = tagsOf(ifMatch);
      if (tags === undefined || tags.length === 0) {
        throw new PreconditionRequired(`Send the ETag of GET /api/mcp-servers/${id}/tool-pins/${tool} as If-Match, so that you approve only the definition you read.`);
      }
      const etag = pinEtag(pin);
      if (!tags.includes(etag)) throw new PreconditionFailed(`If-Match does not name the pin's current ETag ${etag}: its definitions changed since you read them (* is not accepted here). Read it again.`);
      if (pin.missing) throw new Conflict(`Tool '${tool}' is not offered by MCP server ${id} now: there is no definition to approve.`);
      if (pin.currentHash === null) return toDetail(pin); // already the definition the server offers
      const parts = changedParts(partsOf(JSON.parse(pin.pinnedDefinition) as ToolDefinition), partsOf(JSON.parse(pin.currentDefinition!) as ToolDefinition));
      const approved = await pins.approve(server, tool, { pinnedHash: pin.pinnedHash, currentHash: pin.currentHash }, now().toISOString(), event(actor, "tool_definition_approved", tool, parts));
      guards.drop(id);
      if (!approved) throw new PreconditionFailed(`Pinned tool '${tool}' changed while it was being approved. Read it again.`);
      return toDetail(approved);
    },

    async remove(actor: Actor, id: string, tool: string): Promise<void> {
      const { server } = await pinOf(actor, id, tool);
      const removed = await pins.remove(server, tool, now().toISOString(), event(actor, "tool_pin_removed", tool, []));
      guards.drop(id);
      if (!removed) throw new NotFound(`Pinned tool '${tool}' of MCP server ${id}`);
    },
  };
}

export type ToolPinService = ReturnType<typeof createToolPinService>;
