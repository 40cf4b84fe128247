// Mints and manages API tokens on the store named by DATABASE_URL (migrating it first).
//   token create --user usr_alice --workspace ws_acme [--workspace ws_two] [--name label] [--scope admin|gateway] [--toolset tls_…]… [--expires-in-days N]
//   token list
//   token revoke <id>
import { parseArgs } from "node:util";
import { openServices } from "../server/compose.js";
import { readConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";

const USAGE = `usage:
  npm run -s token -- create --user <userId> --workspace <workspaceId> [--workspace …] [--name <label>] [--scope admin|gateway]
                             [--toolset <toolsetId>]… [--expires-in-days N]
  npm run -s token -- list
  npm run -s token -- revoke <tokenId>
  npm run -s token -- --help

--toolset (repeatable) limits the token to those toolsets' MCP endpoints; such a token has scope
gateway (the default with --toolset), and each toolset must belong to one of its workspaces.
\`list\` prints one line per token: id, user, workspaces, scope, name, created, state, toolsets
(- for no limit).

Works on the store named by DATABASE_URL (migrating it first). The token is printed alone on stdout, once.`;

const OPTIONS = {
  user: { type: "string" },
  workspace: { type: "string", multiple: true },
  name: { type: "string" },
  scope: { type: "string" },
  toolset: { type: "string", multiple: true },
  "expires-in-days": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

// The server's JSON log lines are for log collectors; a person at this CLI reads the message alone.
const plainLines = {
  write(line: string) {
    try {
      const entry = JSON.parse(line) as { msg?: string; err?: { message?: string } };
      process.stderr.write(`${entry.msg ?? ""}${entry.err?.message ? `: ${entry.err.message}` : ""}\n`);
    } catch {
      process.stderr.write(line);
    }
  },
};

async function main(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS, strict: true });
  } catch (err) {
    // One line naming the flag (Node's own message suggests quoting it, unbalanced).
    const flag = /'(-[^']*)'/.exec((err as Error).message)?.[1];
    throw new UsageError((err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag ? `unknown option '${flag}'` : (err as Error).message.split("\n")[0]);
  }
  const { values, positionals: all } = parsed;
  if (values.help || all[0] === "help") {
    console.log(USAGE);
    return;
  }
  const [command, ...positionals] = all;
  if (!command || !["create", "list", "revoke"].includes(command)) throw new UsageError(`unknown command '${command ?? ""}'`);

  // Logs go to stderr, as plain lines, so that stdout carries only the token.
  const logger = createLogger(process.env.LOG_LEVEL || "warn", plainLines as never);
  const services = await openServices(readConfig(), logger);
  try {
    if (command === "create") {
      if (!values.user) throw new UsageError("--user is required");
      if (!values.workspace?.length) throw new UsageError("at least one --workspace is required");
      const days = values["expires-in-days"];
      if (days !== undefined && !/^\d{1,3}$/.test(days)) throw new UsageError(`--expires-in-days must be a whole number of days from 1 to 365, not '${days}'`);
      const expiresInDays = days === undefined ? undefined : Number(days);
      if (expiresInDays !== undefined && (expiresInDays < 1 || expiresInDays > 365)) throw new UsageError(`--expires-in-days must be a whole number of days from 1 to 365, not '${days}'`);
      const { token, record } = await services.tokens.mint({ userId: values.user, workspaces: values.workspace, name: values.name, scope: values.scope, expiresInDays, toolsets: values.toolset });
      const expiry = record.expiresAt ? `, expires ${record.expiresAt}` : "";
      const limit = record.toolsets ? `, limited to toolsets ${record.toolsets.join(", ")}` : "";
      console.error(`created ${record.id} (scope ${record.scope}${expiry}${limit}) for ${record.userId} in ${record.workspaces.join(", ")} (shown once; store it now)`);
      console.log(token);
    } else if (command === "list") {
      for (const t of await services.tokens.list()) {
        console.log([t.id, t.userId, t.workspaces.join(","), t.scope, t.name ?? "-", t.createdAt, t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt && t.expiresAt <= new Date().toISOString() ? `expired ${t.expiresAt}` : t.expiresAt ? `active until ${t.expiresAt}` : "active", t.toolsets ? t.toolsets.join(",") : "-"].join("\t"));
      }
    } else {
      const id = positionals[0];
      if (!id) throw new UsageError("revoke needs a token id (see `token list`)");
      if (!(await services.tokens.revoke(id))) {
        console.error(`no active token ${id}`);
        process.exitCode = 1;
      } else console.error(`revoked ${id}`);
    }
  } finally {
    await services.db.close();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof UsageError ? `${err.message}\n${USAGE}` : `token: ${err instanceof Error ? err.message : err}`);
  process.exit(2);
});
