// server.json, the MCP Registry's description of a server: the subset of its schema the catalog
// uses, written here from https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json
// (name, title, description, version, websiteUrl, remotes with their variables and headers; the
// limits are the schema's). Other fields (packages, repository, icons, _meta) are allowed and ignored.
import { z } from "zod";
import { placeholders, type ConnectorDef, type InputDef } from "./connectors.js";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,99}$/;
const NO_LINE_BREAKS = /^[^\r\n\u0000]*$/;

const Input = z.object({
  description: z.string().max(2000).optional(),
  isRequired: z.boolean().optional(),
  isSecret: z.boolean().optional(),
  format: z.enum(["string", "number", "boolean", "filepath"]).optional(),
  value: z.string().max(8192).regex(NO_LINE_BREAKS, "must not contain line breaks").optional(),
  default: z.string().max(8192).regex(NO_LINE_BREAKS, "must not contain line breaks").optional(),
  choices: z.array(z.string().max(1000)).max(100).optional(),
});
const Variables = z.record(z.string().regex(VARIABLE_NAME, "must be a variable name (letters, digits, _ . -)"), Input);
const KeyValueInput = Input.extend({
  name: z.string().min(1).max(100).regex(HEADER_NAME, "must be a valid HTTP header name"),
  variables: Variables.optional(),
});
const Remote = z.object({
  type: z.enum(["streamable-http", "sse"]),
  url: z.string().min(1).max(2048),
  headers: z.array(KeyValueInput).max(50).optional(),
  variables: Variables.optional(),
});
export const ServerJson = z.object({
  $schema: z.string().optional(),
  name: z
    .string()
    .min(3)
    .max(200)
    .regex(/^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/, "must be a reverse-DNS name with one slash, e.g. io.github.acme/weather"),
  title: z.string().min(1).max(100).optional(),
  description: z.string().min(1).max(100),
  version: z.string().min(1).max(255),
  websiteUrl: z.url({ protocol: /^https?$/ }).optional(),
  remotes: z.array(Remote).max(20).optional(),
});


const PLACEHOLDER = /\{([^{}]*)\}/g;

function inputDef(name: string, input: z.infer<typeof Input>): InputDef {
  return {
    name,
    description: input.description ?? null,
    isRequired: input.isRequired ?? false,
    isSecret: input.isSecret ?? false,
    default: input.default ?? null,
    choices: input.choices ?? null,
    value: input.value ?? null,
  };
}

export type ParsedServerJson = { ok: true; connector: ConnectorDef } | { ok: false; problems: string[] };

/**
 * Validates a server.json document and turns it into a catalog entry. Each problem names where
 * it is (`remotes.0.url: …`). A `{var}` in a URL or header template must be declared.
 */
export function parseServerJson(document: unknown, source: ConnectorDef["source"], updatedAt: string): ParsedServerJson {
  const parsed = ServerJson.safeParse(document);
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(document)"}: ${i.message}`) };
  }
  const doc = parsed.data;
  const problems: string[] = [];
  const remotes = (doc.remotes ?? []).map((remote, r) => {
    const variables = new Map<string, InputDef>();
    for (const [name, input] of Object.entries(remote.variables ?? {})) variables.set(name, inputDef(name, input));
    for (const header of remote.headers ?? []) {
      for (const [name, input] of Object.entries(header.variables ?? {})) if (!variables.has(name)) variables.set(name, inputDef(name, input));
    }
    for (const name of placeholders(remote.url)) {
      if (!variables.has(name)) problems.push(`remotes.${r}.url: uses {${name}}, which is not among its variables`);
    }
    const probe = remote.url.replace(PLACEHOLDER, "x");
    if (!/^https?:\/\/[^/?#]/i.test(probe)) problems.push(`remotes.${r}.url: must be an http(s) URL template`);
    remote.headers?.forEach((header, h) => {
      for (const name of placeholders(header.value ?? "")) {
        if (!variables.has(name)) problems.push(`remotes.${r}.headers.${h}.value: uses {${name}}, which is not among the variables`);
      }
      if (variables.has(header.name) && header.value === undefined) problems.push(`remotes.${r}.headers.${h}.name: ${header.name} is also a variable's name`);
    });
    return {
      type: remote.type,
      url: remote.url,
      variables: [...variables.values()],
      headers: (remote.headers ?? []).map((header) => inputDef(header.name, header)),
    };
  });
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    connector: {
      name: doc.name,
      title: doc.title ?? null,
      description: doc.description,
      version: doc.version,
      websiteUrl: doc.websiteUrl ?? null,
      remotes,
      source,
      updatedAt,
    },
  };
}
