// Breaking-change gate: compares openapi.yaml in the working tree with an earlier version.
// Usage: npm run check:breaking -- [<git-ref>]
// Without a ref it compares with the version before the latest change: HEAD when the working
// tree changed the spec, else the parent of the last commit that touched it.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import SwaggerParser from "@apidevtools/swagger-parser";
import { parse } from "yaml";
import { findBreakingChanges, type OpenApiDoc } from "./breaking/compare.js";
import { applyDeclarations, parseDeclarations, releaseProblems } from "./breaking/declarations.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const SPEC = "openapi.yaml";

class UsageError extends Error {}

function git(...args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

const short = (sha: string) => sha.slice(0, 7);
const specAt = (ref: string) => git("show", `${ref}:./${SPEC}`);

/** The ref holding the previous version of the spec, or a reason there is none. */
function defaultBase(current: string): { ref: string; label: string } | { none: string } {
  if (git("rev-parse", "--is-inside-work-tree") === undefined) throw new UsageError(`${root} is not a git work tree`);
  const head = git("rev-parse", "--verify", "-q", "HEAD")?.trim();
  if (!head) return { none: "the repository has no commits yet" };
  const committed = specAt(head);
  if (committed === undefined) return { none: `${SPEC} is not in HEAD yet` };
  if (committed !== current) return { ref: head, label: `${short(head)} (HEAD)` };
  const lastChange = git("log", "-n", "1", "--format=%H", "HEAD", "--", SPEC)?.trim();
  const parent = lastChange && git("rev-parse", "--verify", "-q", `${lastChange}^`)?.trim();
  if (!lastChange || !parent || specAt(parent) === undefined)
    return { none: `${SPEC} has no version before ${lastChange ? short(lastChange) : "HEAD"}` };
  return { ref: parent, label: `${short(parent)} (before ${short(lastChange)})` };
}

function explicitBase(ref: string): { ref: string; label: string } | { none: string } {
  const sha = git("rev-parse", "--verify", "-q", `${ref}^{commit}`)?.trim();
  if (!sha) throw new UsageError(`unknown git ref: ${ref}`);
  if (specAt(sha) === undefined) return { none: `${SPEC} does not exist at ${ref}` };
  return { ref: sha, label: sha.startsWith(ref) ? short(sha) : `${ref} (${short(sha)})` };
}

async function load(text: string, where: string): Promise<OpenApiDoc> {
  try {
    return (await SwaggerParser.dereference(parse(text) as never)) as OpenApiDoc;
  } catch (err) {
    throw new UsageError(`${SPEC} at ${where} cannot be read: ${(err as Error).message}`);
  }
}

const readIfExists = (file: string) => (existsSync(`${root}${file}`) ? readFileSync(`${root}${file}`, "utf8") : "");

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => a !== "--");
  if (args.length > 1) throw new UsageError("usage: npm run check:breaking -- [<git-ref>]");
  const currentText = readFileSync(`${root}${SPEC}`, "utf8");
  const base = args[0] ? explicitBase(args[0]) : defaultBase(currentText);
  if ("none" in base) {
    console.log(`no earlier version to compare with (${base.none}): nothing can break`);
    return 0;
  }

  const before = await load(specAt(base.ref)!, base.label);
  const after = await load(currentText, "the working tree");
  const newVersion = after.info?.version ?? "";
  const { declared, undeclared } = applyDeclarations(
    findBreakingChanges(before, after),
    parseDeclarations(readIfExists("breaking-changes.yaml")),
    newVersion,
  );

  for (const { change, declaration } of declared)
    console.log(`declared: ${change.rule}  ${change.path}: ${change.message} (${declaration.why})`);
  const problems = declared.length ? releaseProblems(before.info?.version ?? "", newVersion, readIfExists("CHANGELOG.md")) : [];

  if (undeclared.length || problems.length) {
    if (undeclared.length) console.log(`breaking changes against ${base.label}:`);
    for (const change of undeclared) console.log(`  ${change.rule}  ${change.path}: ${change.message}`);
    if (problems.length) console.log("the declared breaking changes need:");
    for (const problem of problems) console.log(`  release: ${problem}`);
    if (undeclared.length)
      console.log(
        "\nIf a break is intended: raise the major version of info.version, add { rule, path, why, since: <that version> }" +
          " to breaking-changes.yaml for each line above, and add a section for the version to CHANGELOG.md.",
      );
    return 1;
  }
  console.log(`no breaking changes against ${base.label}${declared.length ? ` (besides ${declared.length} declared)` : ""}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof UsageError ? `check:breaking: ${err.message}` : err);
    process.exit(2);
  },
);
