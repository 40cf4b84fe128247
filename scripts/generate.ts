// Validates openapi.yaml, then writes what is derived from it into generated/.
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

async function main() {
  const files = await render(await loadValidated());
  const stale: string[] = [];
  for (const [rel, content] of files) {
    const path = `${root}${rel}`;
    const current = await readFile(path, "utf8").catch(() => null);
    if (current === content) continue;
    if (check) stale.push(rel);
    else {
      await mkdir(`${root}generated`, { recursive: true });
      await writeFile(path, content);
      console.log(`wrote ${rel}`);
    }
  }
  if (stale.length > 0) {
    console.error(`generated/ is stale against openapi.yaml: ${stale.join(", ")}\nRun \`npm run generate\` and commit the result.`);
    process.exit(1);
  }
  if (check) console.log("generated/ is up to date with openapi.yaml");
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
