// The workspace endpoint's use cases: one MCP server made of every enabled server of a
// workspace. Lists fan out to all of them at once, each bounded in time (one that fails or
// hangs is left out, and its record says why); calls go to the one server a name points to.
import type { McpServerRepo } from "../data/mcp-server-repo.js";
import type { ConnectionError } from "../wire.js";
import { Forbidden } from "./errors.js";
import type { GatewayContext, GatewayService } from "./gateway/service.js";
import { toolAllowed, type ToolOutcome } from "./gateway/policy.js";
import { namespaceOf, namespaced, splitNamespaced } from "./names.js";
import type { Actor } from "./tokens.js";

/** What the domain needs from an upstream session (outbound/mcp-upstream.ts gives it). */
export interface UpstreamCalls {
  listTools(cursor?: string): Promise<{ tools: Record<string, unknown>[]; nextCursor?: string }>;
  callTool(name: string, args: Record<string, unknown> | undefined): Promise<Record<string, unknown>>;
  listPrompts(cursor?: string): Promise<{ prompts: Record<string, unknown>[]; nextCursor?: string }>;
  getPrompt(name: string, args: Record<string, string> | undefined): Promise<Record<string, unknown>>;
}

export type UseUpstream = <T>(endpoint: { url: string; headers: Record<string, string> }, timeoutMs: number, use: (calls: UpstreamCalls) => Promise<T>) => Promise<T>;

/** A refusal or failure the agent gets as a JSON-RPC error. */
export class WorkspaceCallError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface WorkspaceGatewayDeps {
  repo: McpServerRepo;
  gateway: GatewayService;
  useUpstream: UseUpstream;
  /** Bound for each server's part of a list. */
  listTimeoutMs: number;
  /** Bound for one call. */
  toolTimeoutMs: number;
  /** How a failure shows on the record; null when the server answered with a JSON-RPC error (passed on as is). */
  describeFailure: (err: unknown, timeoutMs: number, secrets: string[]) => ConnectionError | null;
}

const MAX_PAGES = 20;

interface Member {
  namespace: string;
  ctx: GatewayContext;
}

export function createWorkspaceGateway({ repo, gateway, useUpstream, listTimeoutMs, toolTimeoutMs, describeFailure }: WorkspaceGatewayDeps) {
  async function members(actor: Actor, workspaceId: string): Promise<Member[]> {
    if (!actor.workspaces.includes(workspaceId)) throw new Forbidden(`The token does not cover workspace ${workspaceId}.`);
    const stored = (await repo.list(workspaceId, 10_000, null)).filter((s) => s.server.enabled).reverse(); // oldest first
    const taken = new Set<string>();
    const out: Member[] = [];
    for (const s of stored) {
      // Records that share a namespace predate the 409 rule: the older keeps it, the newer gets its id's tail.
      let namespace = namespaceOf(s.server.name);
      if (taken.has(namespace)) namespace = `${namespace}_${s.server.id.slice(-6).toLowerCase()}`;
      taken.add(namespace);
      const ctx = await gateway.open(actor, s.server.id, undefined);
      if (ctx.target) out.push({ namespace, ctx }); // disabled since it was listed: the kill switch holds here too
    }
    return out;
  }

  /** Runs `use` against one member's server, recording a failure on its record. */
  async function onMember<T>(m: Member, timeoutMs: number, use: (calls: UpstreamCalls) => Promise<T>): Promise<T> {
    if (m.ctx.unavailable) throw m.ctx.unavailable;
    const target = m.ctx.requireEnabled();
    try {
      const result = await useUpstream({ url: target.url, headers: target.headers }, timeoutMs, use);
      await m.ctx.recordSuccess().catch(() => {});
      return result;
    } catch (err) {
      const error = describeFailure(err, timeoutMs, target.secrets);
      if (!error) throw err;
      await m.ctx.recordFailure(error).catch(() => {});
      throw error;
    }
  }

  async function listAll<T>(actor: Actor, workspaceId: string, page: (calls: UpstreamCalls, cursor?: string) => Promise<{ items: T[]; nextCursor?: string }>) {
    const all = await members(actor, workspaceId);
    const parts = await Promise.allSettled(
      all.map((m) =>
        onMember(m, listTimeoutMs, async (calls) => {
          const items: T[] = [];
          let cursor: string | undefined;
          for (let i = 0; i < MAX_PAGES; i++) {
            const result = await page(calls, cursor);
            items.push(...result.items);
            cursor = result.nextCursor;
            if (!cursor) break;
          }
          return items;
        }),
      ),
    );
    return all.flatMap((m, i) => {
      const part = parts[i];
      return part.status === "fulfilled" ? part.value.map((item) => ({ member: m, item })) : [];
    });
  }

  async function target(actor: Actor, workspaceId: string, fullName: string, what: string) {
    const split = splitNamespaced(fullName);
    const member = split && (await members(actor, workspaceId)).find((m) => m.namespace === split.namespace);
    if (!split || !member) throw new WorkspaceCallError(-32602, `Unknown ${what} '${fullName.slice(0, 128)}': names here are <server namespace>__<${what} name>; list them first.`);
    return { member, name: split.name };
  }

  return {
    async listTools(actor: Actor, workspaceId: string) {
      const found = await listAll<Record<string, unknown>>(actor, workspaceId, async (calls, cursor) => {
        const r = await calls.listTools(cursor);
        return { items: r.tools, nextCursor: r.nextCursor };
      });
      return found.flatMap(({ member, item }) => {
        const name = typeof item.name === "string" && toolAllowed(member.ctx.server, item.name) ? namespaced(member.namespace, item.name) : null;
        return name ? [{ ...item, name }] : [];
      });
    },

    async callTool(actor: Actor, workspaceId: string, fullName: string, args: Record<string, unknown> | undefined) {
      const { member, name } = await target(actor, workspaceId, fullName, "tool");
      const started = performance.now();
      const audit = (outcome: ToolOutcome) => member.ctx.recordToolCall(name, outcome, started);
      if (!toolAllowed(member.ctx.server, name)) {
        await audit("denied");
        throw new WorkspaceCallError(-32003, `Tool '${name.slice(0, 128)}' is not allowed on MCP server '${member.ctx.server.name}'.`);
      }
      try {
        const result = await onMember(member, toolTimeoutMs, (calls) => calls.callTool(name, args));
        await audit(result.isError === true ? "tool_error" : "ok");
        return result;
      } catch (err) {
        const error = err as ConnectionError;
        if (typeof error?.class !== "string") {
          await audit("error");
          throw err;
        }
        await audit(error.class === "timeout" ? "timeout" : "upstream_error");
        throw new WorkspaceCallError(error.class === "timeout" ? -32005 : -32004, `MCP server '${member.ctx.server.name}' could not be used: ${error.message}.`);
      }
    },

    async listPrompts(actor: Actor, workspaceId: string) {
      const found = await listAll<Record<string, unknown>>(actor, workspaceId, async (calls, cursor) => {
        const r = await calls.listPrompts(cursor);
        return { items: r.prompts, nextCursor: r.nextCursor };
      });
      return found.flatMap(({ member, item }) => {
        const name = typeof item.name === "string" ? namespaced(member.namespace, item.name) : null;
        return name ? [{ ...item, name }] : [];
      });
    },

    async getPrompt(actor: Actor, workspaceId: string, fullName: string, args: Record<string, string> | undefined) {
      const { member, name } = await target(actor, workspaceId, fullName, "prompt");
      try {
        return await onMember(member, toolTimeoutMs, (calls) => calls.getPrompt(name, args));
      } catch (err) {
        const error = err as ConnectionError;
        if (typeof error?.class !== "string") throw err;
        throw new WorkspaceCallError(-32004, `MCP server '${member.ctx.server.name}' could not be used: ${error.message}.`);
      }
    },
  };
}

export type WorkspaceGateway = ReturnType<typeof createWorkspaceGateway>;
