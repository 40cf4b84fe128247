// Redocly plugin for the house rules that configurable rules cannot express.
// Configurable rules nested under `where: Response` only see the first level of properties,
// so a secret inside a nested object or a list item would slip through; this walks the whole tree.

// Keep in step with rule/secret-properties-write-only in redocly.yaml.
const SECRET_NAME = /^(?!(has|is)[A-Z])(apiKey|secret|token|[a-z][A-Za-z0-9]*(Secret|Token))$/;

const SUBSCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"];
const SUBSCHEMA_ONE = ["items", "additionalProperties", "not", "if", "then", "else"];

function NoSecretsInResponses() {
  const reported = new Set();
  return {
    Response(response, ctx) {
      const seen = new Set();
      const visit = (schema, location) => {
        if (schema && typeof schema === "object" && "$ref" in schema) {
          const resolved = ctx.resolve(schema);
          if (!resolved.location) return;
          ({ node: schema, location } = resolved);
        }
        if (!schema || typeof schema !== "object" || seen.has(schema)) return;
        seen.add(schema);
        for (const [name, sub] of Object.entries(schema.properties ?? {})) {
          const at = location.child(["properties", name]);
          if (SECRET_NAME.test(name) && !reported.has(at.absolutePointer)) {
            reported.add(at.absolutePointer);
            ctx.report({
              message: `Remove the secret property \`${name}\` from the response schema; say only whether one is stored (e.g. \`hasApiKey\`).`,
              location: at.key(),
            });
          }
          visit(sub, at);
        }
        for (const [name, sub] of Object.entries(schema.patternProperties ?? {}))
          visit(sub, location.child(["patternProperties", name]));
        for (const key of SUBSCHEMA_ONE) visit(schema[key], location.child([key]));
        for (const key of SUBSCHEMA_LISTS)
          (Array.isArray(schema[key]) ? schema[key] : []).forEach((sub, i) => visit(sub, location.child([key, i])));
      };
      for (const [mediaType, media] of Object.entries(response.content ?? {}))
        visit(media?.schema, ctx.location.child(["content", mediaType, "schema"]));
    },
  };
}

export default function houseRules() {
  return {
    id: "house",
    rules: { oas3: { "no-secrets-in-responses": NoSecretsInResponses } },
  };
}
