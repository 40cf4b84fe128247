// Checks a response against what openapi.yaml documents for (operationId, status):
// the status is documented (or covered by `default`), the media type is one the spec
// lists, and a JSON body matches that media type's schema.
import { loadSpec, pointer, specSchemas, type JsonObject } from "./spec.js";

export interface ContractResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: unknown;
}

export type ValidateResponse = (response: ContractResponse, operationId: string, expectedStatus: number) => void;

const JSON_MEDIA = ["application/json", "application/problem+json"];
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

export function responseValidator(spec: JsonObject = loadSpec()): ValidateResponse {
  const schemas = specSchemas(spec);
  const operations = new Map<string, string>(); // operationId → pointer of the operation
  for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, { operationId?: string }>>)) {
    for (const method of METHODS) {
      const id = item[method]?.operationId;
      if (id) operations.set(id, pointer(["paths", path, method]));
    }
  }
  // Follows $refs (only internal ones exist in the bundled spec) to the pointer of the object itself.
  const resolved = (ptr: string): string => {
    for (let node = at(ptr); node && typeof node.$ref === "string"; node = at(ptr)) ptr = node.$ref.slice(1);
    return ptr;
  };
  const at = (ptr: string): any => ptr.split("/").slice(1).reduce<any>((n, s) => n?.[s.replaceAll("~1", "/").replaceAll("~0", "~")], spec);

  return (response, operationId, expectedStatus) => {
    const excerpt = response.text.length > 300 ? response.text.slice(0, 300) + "…" : response.text;
    if (response.status !== expectedStatus) {
      throw new Error(`${operationId}: expected status ${expectedStatus}, got ${response.status}${excerpt ? `: ${excerpt}` : ""}`);
    }
    const opPointer = operations.get(operationId);
    if (!opPointer) throw new Error(`operation ${operationId} is not in the spec`);
    const responses = at(opPointer).responses ?? {};
    const key = String(response.status) in responses ? String(response.status) : "default" in responses ? "default" : null;
    if (!key) throw new Error(`status ${response.status} is not documented for ${operationId}`);
    const responsePointer = resolved(`${opPointer}/responses/${key}`);
    const content: Record<string, unknown> | undefined = at(responsePointer).content;
    const mediaType = response.headers.get("content-type")?.split(";")[0].trim().toLowerCase() ?? null;

    if (!content || Object.keys(content).length === 0) {
      if (response.text !== "") throw new Error(`${operationId} ${response.status} documents no body, but one came back: ${excerpt}`);
      return;
    }
    if (!mediaType || !(mediaType in content)) {
      throw new Error(`${operationId} ${response.status}: content type ${mediaType ?? "(none)"} is not one of ${Object.keys(content).join(", ")}`);
    }
    if (!JSON_MEDIA.includes(mediaType)) return;
    if (response.json === undefined) throw new Error(`${operationId} ${response.status}: the ${mediaType} body is not JSON: ${excerpt}`);
    const errors = schemas.errors(`${responsePointer}/content/${mediaType.replaceAll("/", "~1")}/schema`, response.json);
    if (errors.length > 0) {
      throw new Error(`${operationId} ${response.status} body does not match the spec: ${errors.join("; ")}`);
    }
  };
}
