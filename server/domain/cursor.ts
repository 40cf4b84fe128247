// Opaque keyset cursors, signed so that only cursors this server issued are accepted.
import { createHmac, timingSafeEqual } from "node:crypto";
import { ValidationFailed } from "./errors.js";

export function createCursorCodec(key: Buffer) {
  const sign = (payload: string) => createHmac("sha256", key).update(payload).digest().subarray(0, 16);
  const invalid = () => new ValidationFailed([{ path: "/query/cursor", message: "is not a cursor this server issued for this list" }]);

  return {
    encode(scope: string, lastId: string): string {
      const payload = Buffer.from(JSON.stringify({ s: scope, a: lastId })).toString("base64url");
      return `${payload}.${sign(payload).toString("base64url")}`;
    },
    /** Returns the id to continue after, or throws a 400 for a cursor not issued for `scope`. */
    decode(scope: string, cursor: string): string {
      const [payload, mac, extra] = cursor.split(".");
      if (!payload || !mac || extra !== undefined) throw invalid();
      const given = Buffer.from(mac, "base64url");
      const want = sign(payload);
      if (given.length !== want.length || !timingSafeEqual(given, want)) throw invalid();
      let parsed: { s?: unknown; a?: unknown };
      try {
        parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
      } catch {
        throw invalid();
      }
      if (parsed.s !== scope || typeof parsed.a !== "string") throw invalid();
      return parsed.a;
    },
  };
}

export type CursorCodec = ReturnType<typeof createCursorCodec>;
