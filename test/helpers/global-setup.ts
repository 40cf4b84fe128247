// Says plainly when the PostgreSQL half of the suite is not running.
export default function setup() {
  if (!process.env.TEST_DATABASE_URL) {
    console.warn("\n[postgres] SKIPPED: set TEST_DATABASE_URL=postgres://user@127.0.0.1:5432/postgres to run the suite on PostgreSQL too\n");
  }
}
