// Intentional breaking changes (breaking-changes.yaml) and what a release that ships one must do.
import { parse } from "yaml";
import type { Change } from "./compare.js";

export interface Declaration {
  rule: string;
  path: string;
  why: string;
  since: string;
}

/** Reads breaking-changes.yaml: a list of { rule, path, why, since }. Throws on a malformed entry. */
export function parseDeclarations(text: string): Declaration[] {
  const doc: unknown = parse(text) ?? [];
  if (!Array.isArray(doc)) throw new Error("breaking-changes.yaml must be a list of { rule, path, why, since }");
  return doc.map((entry: unknown, i) => {
    const fields = (entry ?? {}) as Record<string, unknown>;
    const missing = ["rule", "path", "why", "since"].filter((k) => typeof fields[k] !== "string" || fields[k] === "");
    if (missing.length) throw new Error(`breaking-changes.yaml entry ${i + 1}: ${missing.join(", ")} must be non-empty strings`);
    return { rule: String(fields.rule), path: String(fields.path), why: String(fields.why), since: String(fields.since) };
  });
}

/**
 * Splits changes into those a declaration for the new version covers and the rest.
 * Declarations for an earlier version never cover anything: each release declares its own breaks.
 */
export function applyDeclarations(changes: Change[], declarations: Declaration[], newVersion: string) {
  const current = declarations.filter((d) => d.since === newVersion);
  const declared: Array<{ change: Change; declaration: Declaration }> = [];
  const undeclared: Change[] = [];
  for (const change of changes) {
    const declaration = current.find((d) => d.rule === change.rule && d.path === change.path);
    if (declaration) declared.push({ change, declaration });
    else undeclared.push(change);
  }
  return { declared, undeclared };
}

/** What a version that ships declared breaking changes still lacks: a major bump and a changelog section. */
export function releaseProblems(oldVersion: string, newVersion: string, changelog: string): string[] {
  const problems: string[] = [];
  const oldMajor = majorOf(oldVersion);
  const newMajor = majorOf(newVersion);
  if (oldMajor === undefined || newMajor === undefined)
    problems.push(`info.version must be semver to ship a breaking change (was ${oldVersion}, now ${newVersion})`);
  else if (newMajor <= oldMajor)
    problems.push(`a breaking change needs a new major version: info.version ${newVersion} must be at least ${oldMajor + 1}.0.0 (was ${oldVersion})`);
  const heading = new RegExp(`^##\\s+\\[?v?${escapeRegExp(newVersion)}\\]?(\\s|$)`, "m");
  if (!heading.test(changelog)) problems.push(`CHANGELOG.md needs a "## ${newVersion}" section describing the breaking changes`);
  return problems;
}

function majorOf(version: string): number | undefined {
  const match = /^v?(\d+)\.\d+\.\d+/.exec(version);
  return match ? Number(match[1]) : undefined;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
