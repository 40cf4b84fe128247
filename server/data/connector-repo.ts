// The connector catalog: one row per registry name, latest version only.
import type { Knex } from "knex";
import type { ConnectorDef, ConnectorRepo } from "../domain/connectors.js";

interface ConnectorRow {
  name: string;
  version: string;
  title: string | null;
  description: string;
  website_url: string | null;
  remotes: string;
  source: string;
  updated_at: string;
  search_text: string;
}

function toRow(c: ConnectorDef): ConnectorRow {
  return {
    name: c.name,
    version: c.version,
    title: c.title,
    description: c.description,
    website_url: c.websiteUrl,
    remotes: JSON.stringify(c.remotes),
    source: c.source,
    updated_at: c.updatedAt,
    search_text: [c.name, c.title ?? "", c.description].join("\n").toLowerCase(),
  };
}

function toDef(row: ConnectorRow): ConnectorDef {
  return {
    name: row.name,
    version: row.version,
    title: row.title,
    description: row.description,
    websiteUrl: row.website_url,
    remotes: JSON.parse(row.remotes) as ConnectorDef["remotes"],
    source: row.source as ConnectorDef["source"],
    updatedAt: row.updated_at,
  };
}

/** `%`, `_` and `\` stand for themselves in a search. */
const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export function createConnectorRepo(knex: Knex): ConnectorRepo {
  const table = (db: Knex | Knex.Transaction = knex) => db<ConnectorRow>("connectors");
  async function upsertIn(db: Knex | Knex.Transaction, c: ConnectorDef) {
    await table(db).insert(toRow(c)).onConflict("name").merge();
  }
  return {
    async list(search, limit, afterName) {
      // No stored text holds NUL (PostgreSQL cannot store it, and would refuse the query).
      if (search?.includes("\u0000") || afterName?.includes("\u0000")) return [];
      const q = table();
      if (search) q.whereRaw("search_text like ? escape '\\'", [likePattern(search)]);
      if (afterName) q.andWhere("name", ">", afterName);
      return (await q.orderBy("name", "asc").limit(limit)).map(toDef);
    },
    async find(name) {
      if (name.includes("\u0000")) return null;
      const row = await table().where({ name }).first();
      return row ? toDef(row) : null;
    },
    async upsertAll(connectors) {
      await knex.transaction(async (trx) => {
        for (const c of connectors) await upsertIn(trx, c);
      });
    },
    async syncState(registryUrl) {
      const row = await knex("connector_syncs").where({ registry_url: registryUrl }).first();
      return row ? { updatedSince: row.updated_since as string | null } : null;
    },
    async applySync(registryUrl, upserts, removals, updatedSince, at) {
      return knex.transaction(async (trx) => {
        let removed = 0;
        for (const name of removals) removed += await table(trx).where({ name, source: "registry" }).delete();
        for (const c of upserts) await upsertIn(trx, c);
        await trx("connector_syncs")
          .insert({ registry_url: registryUrl, updated_since: updatedSince, synced_at: at })
          .onConflict("registry_url")
          .merge();
        return removed;
      });
    },
  };
}
