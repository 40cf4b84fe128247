// The spec the server loads is valid OpenAPI: checked here (and by `npm run generate`) because
// the server skips express-openapi-validator's own spec validation at start-up (validateApiSpec: false).
import { readFileSync } from "node:fs";
import { OpenAPISchemaValidator } from "express-openapi-validator/dist/framework/openapi.schema.validator.js";
import { describe, expect, test } from "vitest";

const spec = JSON.parse(readFileSync(new URL("../generated/openapi.json", import.meta.url), "utf8"));

describe("generated/openapi.json", () => {
  test("when validated as express-openapi-validator would at start-up, then it has no errors", () => {
    const validator = new OpenAPISchemaValidator({ version: spec.openapi, validateApiSpec: true });
    expect(validator.validate(structuredClone(spec)).errors).toEqual([]);
  });

  test("when a spec is broken, then that validator says so (the check above can fail)", () => {
    const validator = new OpenAPISchemaValidator({ version: spec.openapi, validateApiSpec: true });
    const broken = structuredClone(spec);
    broken.paths["/healthz"].get.responses = "not an object";
    expect(validator.validate(broken).errors?.length).toBeGreaterThan(0);
  });
});
