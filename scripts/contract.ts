// Runs the black-box contract checks against a running deployment:
//   npm run contract -- --base-url URL --token TOKEN --workspace WS [--name-prefix PREFIX]
// One PASS/FAIL line per check, then "N passed, M failed". Exit 0 all passed, 1 some failed, 2 usage.
import { parseArgs } from "node:util";
import { checks, cleanup, contractContext, defaultNamePrefix, failureReason } from "../test/contract/checks.js";

const USAGE = `usage: npm run contract -- --base-url URL --token TOKEN --workspace WS [--name-prefix PREFIX]

  --base-url     where the deployment serves the API, e.g. https://mcp-api.staging.example.com
  --token        an API token covering --workspace
  --workspace    the workspace the checks create their records in
  --name-prefix  prefix of every record created, and of those deleted afterwards
                 (default contract-check-<timestamp>-)`;

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        "base-url": { type: "string" },
        token: { type: "string" },
        workspace: { type: "string" },
        "name-prefix": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usageError((err as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const missing = (["base-url", "token", "workspace"] as const).filter((k) => !values[k]);
  if (missing.length > 0) usageError(`missing ${missing.map((k) => `--${k}`).join(", ")}`);
  try {
    new URL(values["base-url"]!);
  } catch {
    usageError(`--base-url is not a URL: ${values["base-url"]}`);
  }
  if (values["name-prefix"] !== undefined && values["name-prefix"].trim() === "") {
    usageError("--name-prefix must not be empty (cleanup deletes every record whose name starts with it)");
  }
  return { baseUrl: values["base-url"]!, token: values.token!, workspace: values.workspace!, namePrefix: values["name-prefix"] ?? defaultNamePrefix() };
}

async function main() {
  const ctx = contractContext(parse());
  let passed = 0;
  let failed = 0;
  // Ctrl-C stops after the running check, so cleanup still runs.
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
  });
  try {
    for (const check of checks) {
      if (interrupted) break;
      try {
        await check.run(ctx);
        console.log(`PASS ${check.name}`);
        passed++;
      } catch (err) {
        console.log(`FAIL ${check.name}: ${failureReason(err)}`);
        failed++;
      }
    }
  } finally {
    try {
      const deleted = await cleanup(ctx);
      console.log(`PASS cleanup deleted the ${deleted} records named ${ctx.namePrefix}*`);
      passed++;
    } catch (err) {
      console.log(`FAIL cleanup of records named ${ctx.namePrefix}*: ${failureReason(err)}`);
      failed++;
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || interrupted ? 1 : 0;
}

await main();
