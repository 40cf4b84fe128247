// New trace ids come from a pool of random bytes (server/observability/http.ts): each is a
// valid, distinct W3C trace id, also across refills of the pool; a caller's valid one is kept.
import { describe, expect, test } from "vitest";
import { traceIdOf } from "../../server/observability/http.js";

describe("trace ids", () => {
  test("when no traceparent is given, then each request gets a new 32-hex, non-zero id, none repeated across pool refills", () => {
    const ids = Array.from({ length: 1000 }, () => traceIdOf(undefined));
    for (const id of ids) expect(id).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("when the traceparent is valid, then its trace id is kept; when it is all zeros or malformed, then a new one", () => {
    const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    expect(traceIdOf(`00-${trace}-00f067aa0ba902b7-01`)).toBe(trace);
    expect(traceIdOf(`00-${"0".repeat(32)}-00f067aa0ba902b7-01`)).not.toBe("0".repeat(32));
    expect(traceIdOf("garbage")).toMatch(/^[0-9a-f]{32}$/);
  });
});
