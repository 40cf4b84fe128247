// What a pin covers of a tool, as pure functions: the definition (name, title, description,
// input and output schema, annotations, each only when the server gave it), its canonical
// JSON (keys sorted at every level, no whitespace) and SHA-256, and which parts two differ in.
import { createHash } from "node:crypto";
import type { components } from "../../../../generated/api.js";

export type ToolDefinition = components["schemas"]["ToolDefinition"];
export type ToolPart = components["schemas"]["ToolDefinitionPart"];

export const TOOL_PARTS: readonly ToolPart[] = ["title", "description", "inputSchema", "outputSchema", "annotations"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON with every object's keys in code-unit order; `undefined` members are left out as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** The pinned parts of a tool as a server lists it, or null when it has no name. */
export function definitionOf(tool: unknown): ToolDefinition | null {
  if (!isObject(tool) || typeof tool.name !== "string" || tool.name === "") return null;
  const definition: Record<string, unknown> = { name: tool.name };
  for (const part of TOOL_PARTS) if (tool[part] !== undefined) definition[part] = tool[part];
  return definition as ToolDefinition;
}

export const hashOf = (canonical: string): string => createHash("sha256").update(canonical).digest("hex");

/** Each part's canonical JSON ("" when absent), to compare definitions part by part. */
export function partsOf(definition: ToolDefinition): Record<ToolPart, string> {
  const d = definition as Record<string, unknown>;
  return Object.fromEntries(TOOL_PARTS.map((p) => [p, d[p] === undefined ? "" : canonicalJson(d[p])])) as Record<ToolPart, string>;
}

export function changedParts(pinned: Record<ToolPart, string>, seen: Record<ToolPart, string>): ToolPart[] {
  return TOOL_PARTS.filter((p) => pinned[p] !== seen[p]);
}

/** What the agent is told about a held tool. */
export function heldText(tool: string, parts: readonly ToolPart[], serverId: string): string {
  const what = parts.length ? parts.join(", ") : "definition";
  return `Tool '${tool}' is held: its definition changed since it was pinned (${what}) and must be approved before it can be used (POST /api/mcp-servers/${serverId}/tool-pins/${tool}/approve).`;
}
