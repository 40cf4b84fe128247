// Operator endpoints.
import type { Handler } from "./handler-types.js";

export function systemHandlers() {
  const getHealth: Handler<"getHealth"> = async () => ({ status: 200, body: { status: "ok" } });
  return { getHealth };
}
