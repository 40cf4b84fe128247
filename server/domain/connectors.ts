// The catalog of connectors (MCP Registry entries) and how a server is rendered from one:
// its URL from the remote's template, its headers from the inputs, secret inputs apart.
import type { Connector, ConnectorInput, ConnectorList, ProblemFieldError } from "../wire.js";
import type { CursorCodec } from "./cursor.js";
import { NotFound } from "./errors.js";
import { urlProblems } from "./rules.js";
import { originOf } from "../data/secrets.js";

// server.json's schema is zod's; loaded at the first import or sync, not at start-up (zod is ~80 ms of it).
const serverJson = () => import("./server-json.js");

const PLACEHOLDER = /\{([^{}]*)\}/g;
/** The `{name}` variables a URL or header template uses. */
export const placeholders = (template: string) => [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);

export interface InputDef {
  name: string;
  description: string | null;
  isRequired: boolean;
  isSecret: boolean;
  default: string | null;
  choices: string[] | null;
  /** Headers only: the fixed template the header is rendered from, or null when the header is an input. */
  value: string | null;
}

export interface RemoteDef {
  type: "streamable-http" | "sse";
  url: string;
  variables: InputDef[];
  headers: InputDef[];
}

/** A catalog entry as stored: secret defaults included, so it is never served as is (see toWireConnector). */
export interface ConnectorDef {
  name: string;
  title: string | null;
  description: string;
  version: string;
  websiteUrl: string | null;
  remotes: RemoteDef[];
  source: "registry" | "file";
  updatedAt: string;
}

export interface ConnectorRepo {
  list(search: string | null, limit: number, afterName: string | null): Promise<ConnectorDef[]>;
  find(name: string): Promise<ConnectorDef | null>;
  /** Adds or replaces entries, all in one transaction. */
  upsertAll(connectors: ConnectorDef[]): Promise<void>;
  syncState(registryUrl: string): Promise<{ updatedSince: string | null } | null>;
  /** Applies one sync in one transaction; returns how many entries it removed. */
  applySync(registryUrl: string, upserts: ConnectorDef[], removals: string[], updatedSince: string | null, at: string): Promise<number>;
}

/** One page of the registry's `GET /v0.1/servers`, already checked to be the API's shape. */
export interface RegistryPage {
  servers: { server: unknown; _meta?: Record<string, unknown> }[];
  nextCursor: string | null;
}
export type FetchRegistryPage = (registryUrl: string, query: { cursor: string | null; updatedSince: string | null }) => Promise<RegistryPage>;

function wireInput(input: InputDef, header: boolean): ConnectorInput {
  const out: ConnectorInput = {
    name: input.name,
    description: input.description,
    isRequired: input.isRequired,
    isSecret: input.isSecret,
    default: input.isSecret ? null : input.default,
    choices: input.choices,
  };
  if (header) out.value = input.isSecret ? null : input.value;
  return out;
}

export function toWireConnector(c: ConnectorDef): Connector {
  return {
    name: c.name,
    title: c.title,
    description: c.description,
    version: c.version,
    websiteUrl: c.websiteUrl,
    source: c.source,
    updatedAt: c.updatedAt,
    remotes: c.remotes.map((r) => ({
      type: r.type,
      url: r.url,
      variables: r.variables.map((v) => wireInput(v, false)),
      headers: r.headers.map((h) => wireInput(h, true)),
    })),
  };
}

/** The remote a server is created from: the first streamable-http one, else the first. */
export function chosenRemote(c: ConnectorDef): RemoteDef | null {
  return c.remotes.find((r) => r.type === "streamable-http") ?? c.remotes[0] ?? null;
}

/** The inputs `connectorConfig` holds: the variables, and the headers without a fixed template. */
export function inputsOf(remote: RemoteDef): InputDef[] {
  return [...remote.variables, ...remote.headers.filter((h) => h.value === null)];
}

export interface Rendered {
  url: string;
  headers: Record<string, string>;
  secretHeaders: Record<string, string>;
  /** The non-secret inputs given (what `connectorConfig` shows). */
  config: Record<string, string>;
  /** The secret inputs given (stored sealed, never shown). */
  secretInputs: Record<string, string>;
  /** Every header name the connector may set, rendered or not. */
  headerNames: string[];
}

/**
 * Renders a connector from the inputs given (secret ones included), or lists one problem per
 * input that is wrong: not an input, not a string, missing though required, not among its choices.
 */
export function renderConnector(
  c: ConnectorDef,
  given: Record<string, unknown>,
  /** Inputs not to insist on even when required (secret inputs just cleared by an origin move). */
  excused: ReadonlySet<string> = new Set(),
): { problems: ProblemFieldError[]; rendered: Rendered | null } {
  const remote = chosenRemote(c);
  if (!remote) return { problems: [{ path: "/connectorId", message: `connector ${c.name} has no remote to connect to` }], rendered: null };
  const inputs = inputsOf(remote);
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const problems: ProblemFieldError[] = [];
  const at = (name: string) => `/connectorConfig/${name}`;
  for (const name of Object.keys(given)) {
    if (!byName.has(name)) {
      const known = inputs.map((i) => i.name).join(", ") || "none";
      problems.push({ path: at(name), message: `is not an input of connector ${c.name} (its inputs: ${known})` });
    }
  }
  const values = new Map<string, string>();
  const config: Record<string, string> = {};
  const secretInputs: Record<string, string> = {};
  for (const input of inputs) {
    const raw = given[input.name];
    if (raw !== undefined && raw !== null && typeof raw !== "string") {
      problems.push({ path: at(input.name), message: "must be a string" });
      continue;
    }
    const value = typeof raw === "string" ? raw : input.default;
    if (value === null || value === "") {
      if (input.isRequired && !excused.has(input.name)) problems.push({ path: at(input.name), message: `is required by connector ${c.name}` });
      continue;
    }
    if (/[\r\n\u0000]/.test(value)) {
      problems.push({ path: at(input.name), message: "must not contain line breaks" });
      continue;
    }
    if (input.choices && !input.choices.includes(value)) {
      problems.push({ path: at(input.name), message: `must be one of: ${input.choices.join(", ")}` });
      continue;
    }
    values.set(input.name, value);
    if (typeof raw === "string") (input.isSecret ? secretInputs : config)[input.name] = raw;
  }
  const isSecret = (name: string) => byName.get(name)?.isSecret ?? false;
  const reported = new Set(problems.map((p) => p.path));
  const fill = (template: string) => template.replace(/\{([^{}]*)\}/g, (_, name: string) => values.get(name) ?? "");

  for (const name of placeholders(remote.url)) {
    if (isSecret(name)) problems.push({ path: at(name), message: `is secret and cannot be part of the URL of connector ${c.name}` });
    else if (!values.has(name) && !reported.has(at(name))) problems.push({ path: at(name), message: `is needed to render the URL of connector ${c.name}` });
  }
  const url = fill(remote.url);
  if (problems.length === 0) problems.push(...urlProblems(url, "/url"));

  const headers: Record<string, string> = {};
  const secretHeaders: Record<string, string> = {};
  for (const header of remote.headers) {
    let value: string | undefined;
    let secret = header.isSecret;
    if (header.value !== null) {
      const names = placeholders(header.value);
      if (names.some((n) => !values.has(n))) {
        if (header.isRequired) {
          for (const n of names.filter((n) => !values.has(n) && !reported.has(at(n)) && !excused.has(n))) {
            problems.push({ path: at(n), message: `is needed to render the ${header.name} header of connector ${c.name}` });
          }
        }
        continue;
      }
      value = fill(header.value);
      secret ||= names.some(isSecret);
    } else value = values.get(header.name);
    if (value === undefined) continue;
    (secret ? secretHeaders : headers)[header.name] = value;
  }
  if (problems.length > 0) return { problems, rendered: null };
  return { problems, rendered: { url, headers, secretHeaders, config, secretInputs, headerNames: remote.headers.map((h) => h.name) } };
}

/** The headers of `map` whose names (case-insensitive) are not in `names`. */
export function withoutNames(map: Record<string, string>, names: readonly string[]): Record<string, string> {
  const drop = new Set(names.map((n) => n.toLowerCase()));
  return Object.fromEntries(Object.entries(map).filter(([n]) => !drop.has(n.toLowerCase())));
}

export interface ConnectorPlan extends Rendered {
  /** Stored secret inputs left behind because the URL moved to another origin without them. */
  droppedSecrets: boolean;
}

/**
 * Works out a server's connector-derived fields. `stored`: the secret inputs stored for this
 * connector; `config`: the inputs given now (a null value clears a secret input); a secret input
 * left out is kept, unless the URL moves to another origin (`currentOrigin`): then, like the
 * API key, it is cleared unless given again.
 */
export function planConnector(
  c: ConnectorDef,
  options: { stored: Record<string, string>; config: Record<string, unknown>; explicitUrl?: string | null; currentOrigin: string | null },
): { problems: ProblemFieldError[]; plan: ConnectorPlan | null } {
  const given: Record<string, unknown> = { ...options.stored };
  for (const [name, value] of Object.entries(options.config)) {
    if (value === null) delete given[name];
    else given[name] = value;
  }
  let result = renderConnector(c, given);
  let droppedSecrets = false;
  if (result.rendered && options.currentOrigin !== null) {
    const url = options.explicitUrl ?? result.rendered.url;
    const dropped = Object.keys(options.stored).filter((name) => !(name in options.config));
    if (dropped.length > 0 && originOf(url) !== options.currentOrigin) {
      for (const name of dropped) delete given[name];
      result = renderConnector(c, given, new Set(dropped));
      droppedSecrets = true;
    }
  }
  return { problems: result.problems, plan: result.rendered ? { ...result.rendered, droppedSecrets } : null };
}

export interface ConnectorServiceDeps {
  repo: ConnectorRepo;
  cursors: CursorCodec;
  now?: () => Date;
}

const OFFICIAL = "io.modelcontextprotocol.registry/official";
const MAX_PAGES = 10_000;

export interface SyncOutcome {
  pages: number;
  upserted: number;
  removed: number;
  /** Entries the registry served that are not valid server.json, with why. */
  skipped: { name: string; problems: string[] }[];
}

export function createConnectorService({ repo, cursors, now = () => new Date() }: ConnectorServiceDeps) {
  return {
    async list(query: { search?: string; limit?: number; cursor?: string }): Promise<ConnectorList> {
      const limit = query.limit ?? 20;
      const search = query.search?.toLowerCase() ?? null;
      const scope = `connectors:${search ?? ""}`;
      const after = query.cursor ? cursors.decode(scope, query.cursor) : null;
      const rows = await repo.list(search, limit + 1, after);
      const page = rows.slice(0, limit);
      return { data: page.map(toWireConnector), nextCursor: rows.length > limit ? cursors.encode(scope, page[page.length - 1].name) : null };
    },

    async get(name: string): Promise<Connector> {
      const found = await repo.find(name);
      if (!found) throw new NotFound(`Connector ${name}`);
      return toWireConnector(found);
    },

    /** The stored entry, secret defaults included: for rendering a server, never for a response. */
    find: (name: string) => repo.find(name),

    /**
     * Adds or replaces entries from server.json documents. All are validated first: one that
     * is not valid imports nothing. Each problem is prefixed with the document's label.
     */
    async importDocuments(documents: { label: string; document: unknown }[]): Promise<{ ok: true; names: string[] } | { ok: false; problems: string[] }> {
      const at = now().toISOString();
      const { parseServerJson } = await serverJson();
      const parsed = documents.map(({ label, document }) => ({ label, result: parseServerJson(document, "file", at) }));
      const problems = parsed.flatMap(({ label, result }) => {
        if (!result.ok) return result.problems.map((p) => `${label}: ${p}`);
        return result.connector.remotes.length === 0 ? [`${label}: remotes: a connector needs at least one remote (packages-only servers run locally)`] : [];
      });
      if (problems.length > 0) return { ok: false, problems };
      const connectors = parsed.map(({ result }) => (result as { ok: true; connector: ConnectorDef }).connector);
      await repo.upsertAll(connectors);
      return { ok: true, names: connectors.map((c) => c.name) };
    },

    /**
     * Reads every page the registry has changed since the last sync, then applies them in one
     * transaction: active latest versions are added or replaced, deleted and deprecated ones
     * leave. Anything failing before that leaves the catalog as it was.
     */
    async sync(registryUrl: string, fetchPage: FetchRegistryPage): Promise<SyncOutcome> {
      const state = await repo.syncState(registryUrl);
      const updatedSince = state?.updatedSince ?? null;
      let newest = updatedSince;
      const upserts = new Map<string, ConnectorDef>();
      const removals = new Set<string>();
      const skipped: SyncOutcome["skipped"] = [];
      const seenCursors = new Set<string>();
      let cursor: string | null = null;
      let pages = 0;
      const { parseServerJson } = await serverJson();
      do {
        const page = await fetchPage(registryUrl, { cursor, updatedSince });
        pages++;
        for (const entry of page.servers) {
          const meta = (entry._meta?.[OFFICIAL] ?? {}) as { status?: unknown; isLatest?: unknown; updatedAt?: unknown; publishedAt?: unknown };
          const name = (entry.server as { name?: unknown } | null)?.name;
          const changedAt = typeof meta.updatedAt === "string" ? meta.updatedAt : typeof meta.publishedAt === "string" ? meta.publishedAt : null;
          if (changedAt && (newest === null || changedAt > newest)) newest = changedAt;
          if (typeof name !== "string") {
            skipped.push({ name: "(unnamed)", problems: ["server.name: is missing"] });
            continue;
          }
          if (meta.isLatest === false) continue;
          if (meta.status === "deleted" || meta.status === "deprecated") {
            upserts.delete(name);
            removals.add(name);
            continue;
          }
          if (meta.status !== undefined && meta.status !== "active") continue;
          const parsed = parseServerJson(entry.server, "registry", changedAt ?? now().toISOString());
          if (!parsed.ok) {
            skipped.push({ name, problems: parsed.problems });
            continue;
          }
          if (parsed.connector.remotes.length === 0) {
            // Runs only as a local package: nothing a server record can point at.
            upserts.delete(name);
            removals.add(name);
            continue;
          }
          removals.delete(name);
          upserts.set(name, parsed.connector);
        }
        cursor = page.nextCursor;
        if (cursor !== null) {
          if (seenCursors.has(cursor) || pages >= MAX_PAGES) throw new Error(`the registry at ${registryUrl} keeps answering with cursor ${cursor}; stopped`);
          seenCursors.add(cursor);
        }
      } while (cursor !== null);
      const removed = await repo.applySync(registryUrl, [...upserts.values()], [...removals], newest, now().toISOString());
      return { pages, upserted: upserts.size, removed, skipped };
    },
  };
}

export type ConnectorService = ReturnType<typeof createConnectorService>;
