// Operator endpoints.
import { ServiceUnavailable } from "../domain/errors.js";
import type { Handler } from "./handler-types.js";
import { HEALTH } from "./starting.js";

export function systemHandlers(readiness: { check(): Promise<boolean> }) {
  const getHealth: Handler<"getHealth"> = async () => ({ status: 200, body: { ...HEALTH } });
  const getReadiness: Handler<"getReadiness"> = async () => {
    if (!(await readiness.check())) throw new ServiceUnavailable("The database is unavailable or not migrated yet.");
    return { status: 200, body: { status: "ready" } };
  };
  return { getHealth, getReadiness };
}
