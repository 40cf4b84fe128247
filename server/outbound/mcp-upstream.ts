// How a failed exchange with an upstream MCP server (through the session pool) shows on the
// record and to the agent.
import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client";
import type { ConnectionError } from "../wire.js";
import { describeOutboundError } from "./guarded-fetch.js";

/**
 * How a failed upstream exchange shows on the record and to the agent; null when the server
 * answered with a JSON-RPC error of its own (that is passed on, not a failure of the server).
 */
export function describeUpstreamFailure(err: unknown, timeoutMs: number, secrets: string[]): ConnectionError | null {
  if (ProtocolError.isInstance(err)) return null;
  const status = SdkHttpError.isInstance(err) ? err.status : NaN;
  if (status === 401 || status === 403) return { class: "auth", message: `the MCP server refused the stored credentials (HTTP ${status})`, httpStatus: status };
  const described = describeOutboundError(err);
  // The SDK client's own request timeouts (a session's version probe or initialize among them) are timeouts too, not protocol errors.
  const sdkTimeout = SdkError.isInstance(err) && err.code === SdkErrorCode.RequestTimeout;
  // The SDK's error carries the timeout that fired (a connect's may be shorter than the call's deadline).
  const sdkMs = sdkTimeout ? (err.data as { timeout?: unknown } | undefined)?.timeout : undefined;
  const ms = typeof sdkMs === "number" && Number.isFinite(sdkMs) ? Math.round(sdkMs) : timeoutMs;
  if (described.class === "timeout" || (err as Error)?.name === "TimeoutError" || sdkTimeout) return { class: "timeout", message: `no answer within ${ms} ms`, httpStatus: null };
  if (Number.isInteger(status) && status >= 400) return { class: "http", message: `the MCP server answered HTTP ${status}`, httpStatus: status };
  let message = described.message;
  for (const secret of secrets) if (secret.length >= 4) message = message.split(secret).join("[redacted]");
  return { class: described.class, message: message.slice(0, 500), httpStatus: null };
}
