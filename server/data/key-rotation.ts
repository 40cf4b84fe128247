// Re-encrypts stored secrets under the current key while servers keep serving: the records'
// and each person's own connection secrets (issue 20). Every secret is rewritten by its own
// conditional statement, so an interruption at any point leaves each one sealed with either
// the old or the new key, both of which the ring opens.
import type { Knex } from "knex";
import { credentialDestination, SECRET_COLUMNS, SECRET_FIELDS, type SecretField } from "./mcp-server-repo.js";
import { LEGACY_ORIGIN, LEGACY_PREFIX, originOf, type SecretBox } from "./secrets.js";
import { USER_SECRET_COLUMNS, USER_SECRET_FIELDS, type UserSecretField } from "./user-connection-repo.js";

type SecretColumn = (typeof SECRET_COLUMNS)[SecretField];

/** The part of an `mcp_servers` row that rotation reads. */
export type SecretRow = { id: string; workspace_id: string; url: string; oauth_token_endpoint: string | null } & Record<SecretColumn, string | null>;

export interface RotationFailure {
  /** The record's id, or `<server id>/<user id>` for a person's connection. */
  id: string;
  field: SecretField | UserSecretField;
  reason: string;
}

/** The part of a `user_connections` row that rotation reads. */
export type UserSecretRow = { server_id: string; user_id: string; workspace_id: string; origin: string } & Record<string, string | null>;

export interface RowOutcome {
  rotated: number;
  /** Rewritten by someone else since it was read (or the record is gone): theirs stands. */
  skipped: number;
  failed: RotationFailure[];
}

export interface RotationOptions {
  /** Records read per page. */
  batchSize?: number;
  /** Stop after this many re-encryptions (to rotate in steps, or to test an interruption). */
  limit?: number;
}

export interface RotationResult extends RowOutcome {
  /** Secrets still sealed with a key other than the current one once the run ends (failures included). */
  remaining: number;
}

const DEFAULT_BATCH_SIZE = 200;

/**
 * Pages through every record by id (keyset: rows inserted or deleted meanwhile shift nothing);
 * with `legacyOnly`, only those holding a v1 value, picked in SQL (the start-up re-seal runs at
 * every start: paging all of a 100,000-record store through Knex was 310 ms of it).
 */
async function* secretRows(knex: Knex, batchSize: number, legacyOnly = false): AsyncGenerator<SecretRow[]> {
  let after: string | null = null;
  for (;;) {
    const q = knex("mcp_servers")
      .select("id", "workspace_id", "url", "oauth_token_endpoint", ...Object.values(SECRET_COLUMNS))
      .orderBy("id")
      .limit(batchSize);
    if (legacyOnly) {
      q.where((w) => {
        for (const column of Object.values(SECRET_COLUMNS)) w.orWhereRaw("substr(??, 1, 3) = ?", [column, LEGACY_PREFIX]);
      });
    }
    if (after !== null) q.where("id", ">", after);
    const page = (await q) as SecretRow[];
    if (page.length > 0) yield page;
    if (page.length < batchSize) return;
    after = page[page.length - 1].id;
  }
}

/** Re-encrypts the secrets of one record as read in `row`, at most `max` of them. */
export async function reencryptRow(knex: Knex, box: SecretBox, row: SecretRow, max = Infinity, legacyOnly = false): Promise<RowOutcome> {
  const outcome: RowOutcome = { rotated: 0, skipped: 0, failed: [] };
  for (const field of SECRET_FIELDS) {
    if (outcome.rotated >= max) break;
    const column = SECRET_COLUMNS[field];
    const sealed = row[column];
    if (sealed === null) continue;
    const legacy = box.isLegacy(sealed);
    if (!legacy && (legacyOnly || box.keyIdOf(sealed) === box.currentKeyId)) continue;
    const origin = originOf(credentialDestination(field, { url: row.url, oauthTokenEndpoint: row.oauth_token_endpoint }));
    const binding = { recordId: row.id, workspaceId: row.workspace_id, field, origin };
    let resealed: string;
    try {
      // A credential sealed before origin binding is bound to where the record points now.
      resealed = box.seal(box.open(sealed, legacy ? { ...binding, origin: LEGACY_ORIGIN } : binding), binding);
    } catch (err) {
      outcome.failed.push({ id: row.id, field, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    // Only over the value just opened: a serving process that rewrote it meanwhile (already
    // with the current key) wins. Neither version nor updated_at moves: the record is unchanged.
    const n = await knex("mcp_servers")
      .where({ id: row.id, [column]: sealed })
      .update({ [column]: resealed });
    if (n > 0) outcome.rotated++;
    else outcome.skipped++;
  }
  return outcome;
}

/** Pages through every person's connection by (server, user), keyset like secretRows. */
async function* userSecretRows(knex: Knex, batchSize: number): AsyncGenerator<UserSecretRow[]> {
  let after: { server: string; user: string } | null = null;
  for (;;) {
    const q = knex("user_connections")
      .select("server_id", "user_id", "workspace_id", "origin", ...Object.values(USER_SECRET_COLUMNS))
      .orderBy([{ column: "server_id" }, { column: "user_id" }])
      .limit(batchSize);
    if (after !== null) {
      const { server, user } = after;
      q.where((w) => w.where("server_id", ">", server).orWhere((same) => same.where("server_id", server).andWhere("user_id", ">", user)));
    }
    const page = (await q) as UserSecretRow[];
    if (page.length > 0) yield page;
    if (page.length < batchSize) return;
    after = { server: page[page.length - 1].server_id, user: page[page.length - 1].user_id };
  }
}

/** Re-encrypts one person's connection secrets as read in `row`, at most `max` of them; bound as the repository binds them. */
export async function reencryptUserRow(knex: Knex, box: SecretBox, row: UserSecretRow, max = Infinity): Promise<RowOutcome> {
  const outcome: RowOutcome = { rotated: 0, skipped: 0, failed: [] };
  const recordId = `${row.server_id}/${row.user_id}`;
  for (const field of USER_SECRET_FIELDS) {
    if (outcome.rotated >= max) break;
    const column = USER_SECRET_COLUMNS[field];
    const sealed = row[column];
    if (sealed === null || sealed === undefined || box.keyIdOf(sealed) === box.currentKeyId) continue;
    const binding = { recordId, workspaceId: row.workspace_id, field, origin: row.origin };
    let resealed: string;
    try {
      resealed = box.seal(box.open(sealed, binding), binding);
    } catch (err) {
      outcome.failed.push({ id: recordId, field, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    // Only over the value just opened, for the origin it was sealed to: a refresh that rewrote it meanwhile wins.
    const n = await knex("user_connections")
      .where({ server_id: row.server_id, user_id: row.user_id, origin: row.origin, [column]: sealed })
      .update({ [column]: resealed });
    if (n > 0) outcome.rotated++;
    else outcome.skipped++;
  }
  return outcome;
}

export async function rotateSecrets(knex: Knex, box: SecretBox, options: RotationOptions = {}): Promise<RotationResult> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const limit = options.limit ?? Infinity;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`batchSize must be a positive whole number; got ${batchSize}`);
  const total: RowOutcome = { rotated: 0, skipped: 0, failed: [] };
  walk: for await (const page of secretRows(knex, batchSize)) {
    for (const row of page) {
      if (total.rotated >= limit) break walk;
      const one = await reencryptRow(knex, box, row, limit - total.rotated);
      total.rotated += one.rotated;
      total.skipped += one.skipped;
      total.failed.push(...one.failed);
    }
  }
  people: for await (const page of userSecretRows(knex, batchSize)) {
    for (const row of page) {
      if (total.rotated >= limit) break people;
      const one = await reencryptUserRow(knex, box, row, limit - total.rotated);
      total.rotated += one.rotated;
      total.skipped += one.skipped;
      total.failed.push(...one.failed);
    }
  }
  // Counted afresh rather than derived: processes still sealing with an old key show up here.
  const counts = await secretKeyCounts(knex, box);
  const remaining = Object.entries(counts).reduce((sum, [keyId, n]) => (keyId === box.currentKeyId ? sum : sum + n), 0);
  return { ...total, remaining };
}

/**
 * Binds credentials sealed before origin binding (format v1) to the origin their record
 * points them at now. Runs at start-up; a no-op once every row is re-sealed.
 */
export async function sealLegacyToOrigins(knex: Knex, box: SecretBox): Promise<RowOutcome> {
  const total: RowOutcome = { rotated: 0, skipped: 0, failed: [] };
  for await (const page of secretRows(knex, DEFAULT_BATCH_SIZE, true)) {
    for (const row of page) {
      if (!SECRET_FIELDS.some((f) => row[SECRET_COLUMNS[f]] !== null && box.isLegacy(row[SECRET_COLUMNS[f]]!))) continue;
      const one = await reencryptRow(knex, box, row, Infinity, true);
      total.rotated += one.rotated;
      total.skipped += one.skipped;
      total.failed.push(...one.failed);
    }
  }
  return total;
}

/** How many stored secrets each key id sealed. */
export async function secretKeyCounts(knex: Knex, box: SecretBox, options: Pick<RotationOptions, "batchSize"> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for await (const page of secretRows(knex, options.batchSize ?? DEFAULT_BATCH_SIZE)) {
    for (const row of page) {
      for (const field of SECRET_FIELDS) {
        const sealed = row[SECRET_COLUMNS[field]];
        if (sealed === null) continue;
        const keyId = box.keyIdOf(sealed);
        counts[keyId] = (counts[keyId] ?? 0) + 1;
      }
    }
  }
  for await (const page of userSecretRows(knex, options.batchSize ?? DEFAULT_BATCH_SIZE)) {
    for (const row of page) {
      for (const field of USER_SECRET_FIELDS) {
        const sealed = row[USER_SECRET_COLUMNS[field]];
        if (sealed === null || sealed === undefined) continue;
        const keyId = box.keyIdOf(sealed);
        counts[keyId] = (counts[keyId] ?? 0) + 1;
      }
    }
  }
  return counts;
}
