// Store maintenance on the database named by DATABASE_URL.
//   db unlock   clears the migration lock a killed process left behind
import { readConfig } from "../server/config.js";
import { MigrationInProgress, openDatabase, unlockMigrations } from "../server/data/db.js";

const USAGE = `usage:
  npm run -s db -- unlock   clear the migration lock left by a process killed while migrating
                            (refused while another process is applying migrations)`;

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (command !== "unlock" || rest.length > 0) {
    console.error(`${command ? `unknown command '${[command, ...rest].join(" ")}'` : "a command is required"}\n${USAGE}`);
    return 2;
  }
  const config = readConfig();
  const db = openDatabase(config.databaseUrl, config.database);
  try {
    const cleared = await unlockMigrations(db);
    console.log(cleared ? "cleared the migration lock" : "the migration lock was not held; nothing to do");
    return 0;
  } catch (err) {
    if (err instanceof MigrationInProgress) {
      console.error(`refused: ${err.message}; the lock is in use, not left behind (nothing changed)`);
      return 1;
    }
    throw err;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`db: ${err instanceof Error ? err.message : err}`);
    process.exit(2);
  },
);
