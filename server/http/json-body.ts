// A JSON request body read and parsed as the generic stack's body-parser (app.ts: express.json,
// strict) reads and parses it, for the direct routes that run ahead of it (mcp-gateway-direct.ts,
// rest-direct.ts): the same results and the same errors, which the problem handler answers.
import type { Request } from "express";

/** What body-parser and eov both take as application/json in UTF-8 without another look. */
export const JSON_TYPE = /^application\/json(?:; ?charset=(?:utf-8|UTF-8))?$/;
// body-parser's strict mode: the first non-blank character opens an object or an array.
const FIRST_CHAR = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d])/;

/** As body-parser fails a body that is not strict JSON (the problem handler reads its type). */
function parseFailure(message: string, text: string) {
  return Object.assign(new SyntaxError(message), { status: 400, statusCode: 400, expose: true, type: "entity.parse.failed", body: text });
}

/** The body parsed as body-parser's strict JSON parser parses it, or the error it would fail with. */
export function parseJsonBody(bytes: Buffer): { ok: true; value: unknown } | { ok: false; error: ReturnType<typeof parseFailure> } {
  // iconv-lite, which body-parser decodes with, drops a UTF-8 byte-order mark.
  const text = bytes.toString("utf8", bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0);
  if (text.length === 0) return { ok: true, value: {} };
  const first = FIRST_CHAR.exec(text)?.[1];
  if (first !== "{" && first !== "[") return { ok: false, error: parseFailure(`Unexpected token ${first ?? "end"} in JSON`, text) };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: parseFailure((err as Error).message, text) };
  }
}

/** The request's body of `length` bytes; rejects as raw-body does when the client goes away mid-body. */
export function readBody(req: Request, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    req.on("data", (chunk: Buffer) => void chunks.push(chunk));
    req.on("end", () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length));
    });
    req.on("error", reject);
    req.on("close", () => {
      if (!ended) reject(Object.assign(new Error("request aborted"), { status: 400, statusCode: 400, expose: true, code: "ECONNABORTED", type: "request.aborted" }));
    });
  });
}
