// Validates openapi.yaml, then writes what is derived from it into generated/, and the packages'
// versions (root, lock, client) from info.version.
// `--check` writes nothing and exits 1 when generated/ is stale.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import SwaggerParser from "@apidevtools/swagger-parser";
import openapiTS, { astToString } from "openapi-typescript";
import { parse } from "yaml";

const root = fileURLToPath(new URL("..", import.meta.url));
const specPath = `${root}openapi.yaml`;
const check = process.argv.includes("--check");

async function loadValidated(): Promise<Record<string, unknown>> {
  const text = await readFile(specPath, "utf8");
  let doc: Record<string, unknown>;
  try {
    doc = parse(text, { prettyErrors: true });
  } catch (err) {
    throw new Error(`openapi.yaml is not valid YAML: ${(err as Error).message}`);
  }
  try {
    // validate() dereferences in place, so it gets its own copy.
    await SwaggerParser.validate(structuredClone(doc) as never);
  } catch (err) {
    throw new Error(`openapi.yaml is not a valid OpenAPI document:\n${(err as Error).message}`);
  }
  return doc;
}

async function render(doc: Record<string, unknown>): Promise<Map<string, string>> {
  const bundled = await SwaggerParser.bundle(structuredClone(doc) as never);
  const ast = await openapiTS(structuredClone(doc) as never, { alphabetize: false, defaultNonNullable: false });
  const banner = "// Generated from openapi.yaml by `npm run generate`. Do not edit.\n\n";
  return new Map([
    ["generated/openapi.json", JSON.stringify(bundled, null, 2) + "\n"],
    ["generated/api.ts", banner + astToString(ast)],
  ]);
}

// The packages' versions follow info.version: the root package (and its lock) and the client.
// Replaced as text, so the files keep their formatting; the first `count` "version" keys are the package's own.
async function versioned(doc: Record<string, unknown>): Promise<Map<string, string>> {
  const version = String((doc.info as { version?: unknown } | undefined)?.version ?? "");
  const out = new Map<string, string>();
  for (const [rel, count] of [["package.json", 1], ["package-lock.json", 2], ["client/package.json", 1]] as const) {
    const text = await readFile(`${root}${rel}`, "utf8").catch(() => null);
    if (text === null) continue;
    let left: number = count;
    out.set(rel, text.replace(/"version": "[^"]*"/g, (m) => (left-- > 0 ? `"version": "${version}"` : m)));
  }
  return out;
}

async function main() {
  const doc = await loadValidated();
  const files = new Map([...(await render(doc)), ...(await versioned(doc))]);
  const stale: string[] = [];
  for (const [rel, content] of files) {
    const path = `${root}${rel}`;
    const current = await readFile(path, "utf8").catch(() => null);
    if (current === content) continue;
    if (check) stale.push(rel);
    else {
      if (rel.startsWith("generated/")) await mkdir(`${root}generated`, { recursive: true });
      await writeFile(path, content);
      console.log(`wrote ${rel}`);
    }
  }
  if (stale.length > 0) {
    console.error(`generated/ (or a package version) is stale against openapi.yaml: ${stale.join(", ")}\nRun \`npm run generate\` and commit the result.`);
    process.exit(1);
  }
  if (check) console.log("generated/ is up to date with openapi.yaml");
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
