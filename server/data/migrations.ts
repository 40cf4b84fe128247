// Schema history. Portable between SQLite and PostgreSQL: text timestamps (ISO-8601 UTC),
// JSON kept as text, constraints for every rule the database can enforce.
import { createHash } from "node:crypto";
import type { Knex } from "knex";

interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

// Ids are compared with `<` for keyset pagination: byte order on both stores.
function idColumn(knex: Knex, t: Knex.CreateTableBuilder, name: string) {
  return knex.client.config.client === "pg" ? t.specificType(name, 'varchar(40) collate "C"') : t.string(name, 40);
}

const migrations: Migration[] = [
  {
    name: "001_initial",
    async up(knex) {
      await knex.schema.createTable("api_tokens", (t) => {
        idColumn(knex, t, "id").primary();
        t.string("token_hash", 64).notNullable().unique();
        t.string("user_id", 100).notNullable();
        t.text("workspaces").notNullable(); // JSON array of workspace ids
        t.string("name", 200).nullable();
        t.string("created_at", 30).notNullable();
        t.string("revoked_at", 30).nullable();
      });
      await knex.schema.createTable("mcp_servers", (t) => {
        idColumn(knex, t, "id").primary();
        t.string("workspace_id", 100).notNullable();
        t.string("name", 100).notNullable();
        t.string("name_key", 100).notNullable();
        t.string("url", 2048).notNullable();
        t.string("auth_type", 16).notNullable();
        t.text("api_key_enc").nullable();
        t.string("oauth_client_id", 512).nullable();
        t.text("oauth_client_secret_enc").nullable();
        t.string("oauth_token_endpoint", 2048).nullable();
        t.string("oauth_authorization_endpoint", 2048).nullable();
        t.string("oauth_scopes", 1000).nullable();
        t.text("oauth_access_token_enc").nullable();
        t.text("oauth_refresh_token_enc").nullable();
        t.string("oauth_expires_at", 30).nullable();
        t.text("headers").notNullable(); // JSON object
        t.string("connector_id", 200).nullable();
        t.text("connector_config").nullable(); // JSON object
        t.string("connector_status", 16).notNullable().defaultTo("");
        t.string("last_checked_at", 30).nullable();
        t.text("last_error").nullable(); // JSON object
        t.string("created_by", 100).notNullable();
        t.string("created_at", 30).notNullable();
        t.string("updated_at", 30).notNullable();
        t.integer("version").notNullable().defaultTo(1);
        t.unique(["workspace_id", "name_key"], { indexName: "mcp_servers_workspace_name_unique" });
        t.index(["workspace_id", "id"], "mcp_servers_workspace_id_idx");
      });
    },
    async down(knex) {
      await knex.schema.dropTable("mcp_servers");
      await knex.schema.dropTable("api_tokens");
    },
  },
  {
    name: "002_hardening",
    async up(knex) {
      await knex.schema.createTable("idempotency_keys", (t) => {
        t.string("token_id", 40).notNullable();
        t.string("idem_key", 255).notNullable();
        t.string("request_hash", 64).notNullable();
        t.string("state", 16).notNullable(); // pending | done
        t.integer("status").nullable();
        t.text("body").nullable();
        t.string("location", 2048).nullable();
        t.string("etag", 100).nullable();
        t.string("created_at", 30).notNullable();
        t.primary(["token_id", "idem_key"]);
      });
      await knex.schema.createTable("audit_events", (t) => {
        idColumn(knex, t, "id").primary();
        idColumn(knex, t, "server_id").notNullable();
        t.string("workspace_id", 100).notNullable();
        t.string("type", 32).notNullable();
        t.string("actor", 100).notNullable();
        t.string("token_id", 40).nullable();
        t.string("request_id", 128).nullable();
        t.string("at", 30).notNullable();
        t.text("fields").notNullable(); // JSON array of { name, change }
        t.index(["server_id", "id"], "audit_events_server_idx");
      });
      await knex.schema.createTable("rate_limits", (t) => {
        t.string("bucket", 100).notNullable();
        t.bigInteger("window_start").notNullable(); // epoch seconds of the window's start
        t.integer("hits").notNullable();
        t.primary(["bucket", "window_start"]);
      });
    },
    async down(knex) {
      await knex.schema.dropTable("rate_limits");
      await knex.schema.dropTable("audit_events");
      await knex.schema.dropTable("idempotency_keys");
    },
  },
  {
    name: "003_oauth",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("oauth_revocation_endpoint", 2048).nullable();
        t.string("oauth_token_auth_method", 32).nullable();
        t.string("oauth_issuer", 2048).nullable();
        t.string("oauth_resource", 2048).nullable();
        t.string("oauth_refresh_lock_until", 30).nullable();
      });
      await knex.schema.createTable("oauth_states", (t) => {
        t.string("state_hash", 64).primary();
        idColumn(knex, t, "server_id").notNullable();
        t.string("workspace_id", 100).notNullable();
        t.string("user_id", 100).notNullable();
        t.string("token_id", 40).notNullable();
        t.text("code_verifier_enc").notNullable();
        t.string("redirect_uri", 2048).notNullable();
        t.string("return_url", 2048).nullable();
        t.string("created_at", 30).notNullable();
        t.string("expires_at", 30).notNullable();
        t.string("used_at", 30).nullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTable("oauth_states");
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.dropColumns("oauth_revocation_endpoint", "oauth_token_auth_method", "oauth_issuer", "oauth_resource", "oauth_refresh_lock_until");
      });
    },
  },
  {
    // Lower-casing can lengthen a name ("İ" becomes two code points), so the key needs room.
    name: "004_wider_name_key",
    async up(knex) {
      if (knex.client.config.client === "pg") await knex.raw("alter table mcp_servers alter column name_key type varchar(400)");
    },
    async down(knex) {
      if (knex.client.config.client === "pg") await knex.raw("alter table mcp_servers alter column name_key type varchar(100)");
    },
  },
  {
    // The gateway (issue 10): per-record policy, tool calls in the audit trail, token scopes.
    name: "005_gateway_issue10",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.boolean("enabled").notNullable().defaultTo(true);
        t.text("allowed_tools").nullable(); // JSON array of tool names; null: all
      });
      await knex.schema.alterTable("audit_events", (t) => {
        t.text("tool_call").nullable(); // JSON { tool, outcome, durationMs, tokenId } on tool_called events
      });
      await knex.schema.alterTable("api_tokens", (t) => {
        t.string("scope", 20).notNullable().defaultTo("admin");
      });
    },
    async down(knex) {
      await knex.schema.alterTable("api_tokens", (t) => t.dropColumn("scope"));
      await knex.schema.alterTable("audit_events", (t) => t.dropColumn("tool_call"));
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumns("enabled", "allowed_tools"));
    },
  },
  {
    // Connectors (issue 14): the catalog, and write-only secret headers and connector inputs.
    name: "006_connectors_issue14",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.text("secret_headers_enc").nullable(); // sealed JSON object of header name → value
        t.text("secret_header_names").notNullable().defaultTo("[]"); // JSON array, the names only
        t.text("connector_secrets_enc").nullable(); // sealed JSON object of secret input → value
        t.text("connector_secret_names").notNullable().defaultTo("[]");
      });
      await knex.schema.createTable("connectors", (t) => {
        if (knex.client.config.client === "pg") t.specificType("name", 'varchar(200) collate "C"').primary();
        else t.string("name", 200).primary();
        t.string("version", 255).notNullable();
        t.string("title", 100).nullable();
        t.text("description").notNullable();
        t.string("website_url", 2048).nullable();
        t.text("remotes").notNullable(); // JSON array, secret defaults included (never served)
        t.string("source", 16).notNullable(); // registry | file
        t.string("updated_at", 40).notNullable();
        t.text("search_text").notNullable(); // lower-cased name, title and description
      });
      await knex.schema.createTable("connector_syncs", (t) => {
        t.string("registry_url", 2048).primary();
        t.string("updated_since", 40).nullable(); // the newest updatedAt the registry reported
        t.string("synced_at", 30).notNullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTable("connector_syncs");
      await knex.schema.dropTable("connectors");
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.dropColumns("secret_headers_enc", "secret_header_names", "connector_secrets_enc", "connector_secret_names");
      });
    },
  },
  {
    // Issue 11: how the client was identified, an explicit grant, what discovery learned, and
    // dynamically registered clients (one per authorization server issuer, reused).
    name: "007_oauth_clients_issue11",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("oauth_grant_type", 30).nullable();
        t.string("oauth_client_registration", 30).nullable();
        t.text("oauth_discovery").nullable(); // JSON: registration endpoint, CIMD and iss support, scopes
      });
      await knex.schema.createTable("oauth_client_registrations", (t) => {
        t.string("issuer", 2048).notNullable();
        t.string("redirect_uri", 2048).notNullable();
        t.string("client_id", 2048).notNullable();
        t.text("client_secret_enc").nullable();
        t.string("token_endpoint_auth_method", 40).notNullable();
        t.string("created_at", 30).notNullable();
        t.primary(["issuer", "redirect_uri"]);
      });
    },
    async down(knex) {
      await knex.schema.dropTable("oauth_client_registrations");
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.dropColumns("oauth_grant_type", "oauth_client_registration", "oauth_discovery");
      });
    },
  },
  {
    // Issue 19: a connectorId outside the catalog is stored as given; the record says which case it is.
    name: "008_connector_source_issue19",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("connector_source", 16).nullable(); // catalog | null (stored as given)
      });
      // Until now a connectorId had to name a catalog entry (issue 14); older rows that name none were stored as given.
      await knex("mcp_servers").whereIn("connector_id", knex("connectors").select("name")).update({ connector_source: "catalog" });
    },
    async down(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumn("connector_source"));
    },
  },
  {
    // Issue 23: a workspace's events newest first, and tool-call statistics over a time window.
    name: "009_workspace_activity_issue23",
    async up(knex) {
      await knex.schema.alterTable("audit_events", (t) => {
        t.index(["workspace_id", "id"], "audit_events_workspace_idx");
        t.index(["workspace_id", "type", "at"], "audit_events_workspace_type_at_idx");
      });
    },
    async down(knex) {
      await knex.schema.alterTable("audit_events", (t) => {
        t.dropIndex(["workspace_id", "type", "at"], "audit_events_workspace_type_at_idx");
        t.dropIndex(["workspace_id", "id"], "audit_events_workspace_idx");
      });
    },
  },
  {
    // Issue 18 item 8: namespaces unique in the database, as names are (name_key).
    name: "010_namespace_unique_issue18",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("namespace", 40).nullable(); // the gateway namespace of `name`; null only for a pre-existing duplicate
      });
      // Oldest first: of records that already share a namespace the oldest keeps it, as the workspace endpoint did.
      const rows = await knex("mcp_servers").select("id", "workspace_id", "name").orderBy("id", "asc");
      const taken = new Set<string>();
      for (const row of rows as { id: string; workspace_id: string; name: string }[]) {
        const namespace = namespaceAt010(row.name);
        const key = `${row.workspace_id}\u0000${namespace}`;
        if (taken.has(key)) continue;
        taken.add(key);
        await knex("mcp_servers").where({ id: row.id }).update({ namespace });
      }
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.unique(["workspace_id", "namespace"], { indexName: "mcp_servers_workspace_namespace_unique" });
      });
    },
    async down(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.dropUnique(["workspace_id", "namespace"], "mcp_servers_workspace_namespace_unique");
        t.dropColumn("namespace");
      });
    },
  },
  {
    // Issue 20: tokens people mint themselves may expire; browser sessions kept server-side.
    name: "011_tokens_sessions_issue20",
    async up(knex) {
      await knex.schema.alterTable("api_tokens", (t) => {
        t.string("expires_at", 30).nullable();
        t.index(["user_id", "id"], "api_tokens_user_idx");
      });
      await knex.schema.createTable("browser_sessions", (t) => {
        t.string("session_hash", 64).primary(); // SHA-256 of the cookie's value
        t.string("user_id", 100).notNullable();
        idColumn(knex, t, "token_id").notNullable(); // the token signed in with; its revocation ends the session
        t.string("created_at", 30).notNullable();
        t.string("expires_at", 30).notNullable();
        t.index(["expires_at"], "browser_sessions_expiry_idx");
      });
    },
    async down(knex) {
      await knex.schema.dropTable("browser_sessions");
      await knex.schema.alterTable("api_tokens", (t) => {
        t.dropIndex(["user_id", "id"], "api_tokens_user_idx");
        t.dropColumn("expires_at");
      });
    },
  },
  {
    // Issue 18: dynamic registrations kept per workspace with the endpoints the authorization
    // server's metadata named when they were made; the old shared rows cannot be attributed to
    // one workspace, so they are dropped (records that used them re-authorize). And when a token
    // was obtained, for the refresh margin of short-lived tokens.
    name: "012_oauth_registrations_issue18",
    async up(knex) {
      await knex.schema.dropTable("oauth_client_registrations");
      await knex.schema.createTable("oauth_dynamic_clients", (t) => {
        t.string("key", 64).primary(); // sha256 of (workspace, issuer, registration endpoint, redirect URI)
        t.string("workspace_id", 255).notNullable();
        t.string("issuer", 2048).notNullable();
        t.string("registration_endpoint", 2048).notNullable();
        t.string("redirect_uri", 2048).notNullable();
        t.string("client_id", 2048).notNullable();
        t.text("client_secret_enc").nullable();
        t.string("token_endpoint_auth_method", 40).notNullable();
        t.string("token_endpoint", 2048).notNullable();
        t.string("authorization_endpoint", 2048).nullable();
        t.string("revocation_endpoint", 2048).nullable();
        t.string("created_at", 30).notNullable();
        t.index(["workspace_id"]);
      });
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("oauth_obtained_at", 30).nullable();
      });
    },
    async down(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumn("oauth_obtained_at"));
      await knex.schema.dropTable("oauth_dynamic_clients");
      await knex.schema.createTable("oauth_client_registrations", (t) => {
        t.string("issuer", 2048).notNullable();
        t.string("redirect_uri", 2048).notNullable();
        t.string("client_id", 2048).notNullable();
        t.text("client_secret_enc").nullable();
        t.string("token_endpoint_auth_method", 40).notNullable();
        t.string("created_at", 30).notNullable();
        t.primary(["issuer", "redirect_uri"]);
      });
    },
  },
  {
    // Issue 18 item 3: retention deletes events by age in small batches; this keeps each one an index range.
    name: "013_event_retention_issue18",
    async up(knex) {
      await knex.schema.alterTable("audit_events", (t) => t.index(["at"], "audit_events_at_idx"));
    },
    async down(knex) {
      await knex.schema.alterTable("audit_events", (t) => t.dropIndex(["at"], "audit_events_at_idx"));
    },
  },
  {
    // Issue 24: one process at a time runs the background health checks, by a lease.
    name: "014_leases_issue24",
    async up(knex) {
      await knex.schema.createTable("leases", (t) => {
        t.string("name", 100).primary();
        t.string("holder", 100).notNullable();
        t.string("expires_at", 30).notNullable(); // ISO-8601 UTC: text order is time order
      });
    },
    async down(knex) {
      await knex.schema.dropTable("leases");
    },
  },
  {
    // Issue 20: whose credential a record uses, and each person's own connection to a user-scope record.
    name: "015_user_connections_issue20",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("connection_scope", 16).notNullable().defaultTo("workspace"); // workspace | user
      });
      await knex.schema.alterTable("audit_events", (t) => {
        t.string("subject_user_id", 100).nullable(); // whose connection a connection_* event is about
      });
      await knex.schema.alterTable("oauth_states", (t) => {
        t.string("connection_user_id", 100).nullable(); // a user-scope flow: only this person's browser may finish it
      });
      await knex.schema.createTable("user_connections", (t) => {
        idColumn(knex, t, "server_id").notNullable();
        t.string("workspace_id", 100).notNullable();
        t.string("user_id", 100).notNullable();
        t.string("origin", 2100).notNullable(); // the server origin its secrets are sealed to
        t.text("api_key_enc").nullable();
        t.text("secret_headers_enc").nullable();
        t.text("secret_header_names").notNullable().defaultTo("[]");
        t.text("oauth_access_token_enc").nullable();
        t.text("oauth_refresh_token_enc").nullable();
        t.string("oauth_expires_at", 30).nullable();
        t.string("oauth_scopes", 1000).nullable();
        t.string("status", 16).notNullable(); // connected | disconnected | error
        t.text("last_error").nullable();
        t.string("refresh_lock_until", 30).nullable();
        t.string("created_at", 30).notNullable();
        t.string("updated_at", 30).notNullable();
        t.string("last_used_at", 30).nullable();
        t.primary(["server_id", "user_id"]);
      });
    },
    async down(knex) {
      await knex.schema.dropTable("user_connections");
      await knex.schema.alterTable("oauth_states", (t) => t.dropColumn("connection_user_id"));
      await knex.schema.alterTable("audit_events", (t) => t.dropColumn("subject_user_id"));
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumn("connection_scope"));
    },
  },
  {
    // Issue 20: private_key_jwt client authentication (RFC 7523): the method, and the sealed key.
    name: "016_oauth_private_key_jwt_issue20",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("oauth_client_auth_method", 32).nullable();
        t.text("oauth_client_private_key_enc").nullable();
      });
    },
    async down(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumns("oauth_client_auth_method", "oauth_client_private_key_enc"));
    },
  },
  {
    // Issue 18 item 7: the OAuth connection's generation, so a session sealed before a disconnect dies with it.
    name: "017_oauth_generation_issue18",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.string("oauth_generation", 36).nullable();
      });
    },
    async down(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumn("oauth_generation"));
    },
  },
  {
    // Issue 22: pinned tool definitions. Records that exist now keep today's behaviour (false);
    // the domain writes true on new ones. One row per (server, tool): the pinned definition and,
    // while it differs, the one last seen; events carry which parts changed.
    name: "018_tool_pins_issue22",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.boolean("tool_pinning").notNullable().defaultTo(false);
      });
      await knex.schema.alterTable("audit_events", (t) => {
        t.text("tool_change").nullable(); // JSON { tool, parts } on tool_definition_* events
      });
      await knex.schema.createTable("tool_pins", (t) => {
        idColumn(knex, t, "server_id").notNullable();
        t.string("workspace_id", 100).notNullable();
        // Pages are ordered by tool name: byte order on both stores.
        if (knex.client.config.client === "pg") t.specificType("tool", 'varchar(128) collate "C"').notNullable();
        else t.string("tool", 128).notNullable();
        t.text("pinned_definition").notNullable(); // canonical JSON
        t.string("pinned_hash", 64).notNullable();
        t.string("pinned_at", 30).notNullable();
        t.text("current_definition").nullable(); // canonical JSON, while it differs from the pin
        t.string("current_hash", 64).nullable();
        t.string("changed_parts", 200).notNullable().defaultTo("[]"); // JSON array
        t.boolean("missing").notNullable().defaultTo(false);
        t.string("changed_at", 30).nullable();
        t.primary(["server_id", "tool"]);
      });
    },
    async down(knex) {
      await knex.schema.dropTable("tool_pins");
      await knex.schema.alterTable("audit_events", (t) => t.dropColumn("tool_change"));
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumn("tool_pinning"));
    },
  },
  {
    // Issue 22: toolsets (named MCP endpoints of chosen tools), their own trail, and tokens limited to them.
    name: "019_toolsets_issue22",
    async up(knex) {
      await knex.schema.createTable("toolsets", (t) => {
        idColumn(knex, t, "id").primary();
        t.string("workspace_id", 100).notNullable();
        t.string("name", 200).notNullable();
        t.text("description").nullable();
        t.text("tools").notNullable(); // JSON array of { serverId, tool, name, description }
        t.integer("version").notNullable();
        t.string("created_by", 100).notNullable();
        t.string("created_at", 30).notNullable();
        t.string("updated_at", 30).notNullable();
        t.index(["workspace_id", "id"]);
      });
      await knex.schema.createTable("toolset_events", (t) => {
        idColumn(knex, t, "id").primary();
        t.string("toolset_id", 40).notNullable();
        t.string("workspace_id", 100).notNullable();
        t.string("type", 32).notNullable();
        t.string("actor", 100).notNullable();
        t.string("request_id", 128).nullable();
        t.string("at", 30).notNullable();
        t.text("fields").notNullable(); // JSON array of FieldChange
        t.text("removed_tools").nullable(); // JSON array of { serverId, tool }
        t.index(["toolset_id", "id"]);
      });
      await knex.schema.alterTable("api_tokens", (t) => {
        t.text("toolsets").nullable(); // JSON array of toolset ids; null for no limit
      });
    },
    async down(knex) {
      await knex.schema.alterTable("api_tokens", (t) => t.dropColumn("toolsets"));
      await knex.schema.dropTable("toolset_events");
      await knex.schema.dropTable("toolsets");
    },
  },
  {
    // Issue 20 item 6: scope step-up. The scopes an upstream demanded (403 insufficient_scope) and
    // the re-authorizations that asked for them in vain, on the record and on each person's connection.
    name: "020_scope_step_up_issue20",
    async up(knex) {
      await knex.schema.alterTable("mcp_servers", (t) => {
        t.text("oauth_step_up").nullable(); // JSON { required: string[], attempts: number }
      });
      await knex.schema.alterTable("user_connections", (t) => {
        t.text("step_up").nullable();
      });
    },
    async down(knex) {
      await knex.schema.alterTable("user_connections", (t) => t.dropColumn("step_up"));
      await knex.schema.alterTable("mcp_servers", (t) => t.dropColumn("oauth_step_up"));
    },
  },
  {
    // Issue 20: each person's OAuth connection has a generation like the record's (017): drawn on
    // each new grant, kept on refresh; sealed gateway sessions of a user-scope record are bound to it.
    name: "021_user_connection_generation_issue20",
    async up(knex) {
      await knex.schema.alterTable("user_connections", (t) => {
        t.string("generation", 36).nullable();
      });
    },
    async down(knex) {
      await knex.schema.alterTable("user_connections", (t) => t.dropColumn("generation"));
    },
  },
  {
    // Issue 21: agent sessions of the workspace endpoint are sealed, not stored; the ended ones
    // (DELETE) are, so that every process refuses them.
    name: "022_workspace_sessions_ended_issue21",
    async up(knex) {
      await knex.schema.createTable("workspace_sessions_ended", (t) => {
        t.string("session_id", 64).primary();
        t.string("ended_at", 40).notNullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTable("workspace_sessions_ended");
    },
  },
  {
    // Issue 21: resource subscriptions of workspace-endpoint agent sessions, in the store, so that
    // the process holding a session's GET stream keeps them whichever process took them.
    name: "023_workspace_session_subscriptions_issue21",
    async up(knex) {
      await knex.schema.createTable("workspace_session_subscriptions", (t) => {
        t.string("session_id", 64).notNullable();
        t.string("uri", 2048).notNullable(); // the agent's (namespaced) URI
        t.string("subscribed_at", 40).notNullable();
        t.primary(["session_id", "uri"]);
        t.index(["subscribed_at"]);
      });
    },
    async down(knex) {
      await knex.schema.dropTable("workspace_session_subscriptions");
    },
  },
  {
    // Issue 21: agent sessions of the workspace endpoint now last MCP_API_WORKSPACE_SESSION_MAX_MS
    // from their initialize, so the retention job deletes ended ones past it, by time.
    name: "024_workspace_sessions_ended_at_issue21",
    async up(knex) {
      await knex.schema.alterTable("workspace_sessions_ended", (t) => {
        t.index(["ended_at"]);
      });
    },
    async down(knex) {
      await knex.schema.alterTable("workspace_sessions_ended", (t) => t.dropIndex(["ended_at"]));
    },
  },
  {
    // Issue 21: the log level a workspace-endpoint agent session set (logging/setLevel), so that
    // every process applies it.
    name: "025_workspace_session_log_levels_issue21",
    async up(knex) {
      await knex.schema.createTable("workspace_session_log_levels", (t) => {
        t.string("session_id", 64).primary();
        t.string("level", 16).notNullable();
        t.string("set_at", 40).notNullable().index();
      });
    },
    async down(knex) {
      await knex.schema.dropTable("workspace_session_log_levels");
    },
  },
];

/** domain/names.ts's namespaceOf as of migration 010, frozen: a migration must not change when the domain does. */
export function namespaceAt010(serverName: string): string {
  const slug = serverName
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  if (slug.length <= 40) return slug || "server";
  const digest = createHash("sha256").update(slug).digest("hex").slice(0, 8);
  return `${slug.slice(0, 31).replace(/_+$/, "")}_${digest}`;
}

export const migrationSource: Knex.MigrationSource<Migration> = {
  async getMigrations() {
    return migrations;
  },
  getMigrationName(m) {
    return m.name;
  },
  async getMigration(m) {
    return m;
  },
};
