// A relayed call's bookkeeping waits for its answer to go out: the tool_called event is taken
// when the answer is known and appended by the exchange's settled(), which the endpoints run
// once the answer has been written (issue 25), and it is appended exactly once, with the
// outcome and the time the answer took.
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import type { AppendedEvent } from "../server/data/audit-repo.js";
import { createMcpServerRepo, type StoredServer } from "../server/data/mcp-server-repo.js";
import { createGatewayService } from "../server/domain/gateway/service.js";
import { createSessionCodec } from "../server/domain/gateway/session-codec.js";
import { raw, startServer } from "./helpers/server.js";

describe("the gateway exchange's tool_called event", () => {
  test("when a tools/call is answered, then its event is appended by settled() and not before, once, with the answer's outcome", async () => {
    const srv = await startServer();
    try {
      const ws = `ws_gwfirst_${randomBytes(3).toString("hex")}`;
      const token = await srv.token([ws], "usr_first");
      const created = await raw(srv.baseUrl, "POST", "/api/mcp-servers", { token, body: JSON.stringify({ workspaceId: ws, name: "first", url: "https://mcp.example.com/mcp" }) });
      expect(created.status, created.text).toBe(201);
      const id = created.json.id as string;
      const appended: AppendedEvent["event"][] = [];
      const gateway = createGatewayService({
        repo: createMcpServerRepo(srv.services.db.knex, srv.services.box, (n) => n.toLowerCase(), (n) => n.toLowerCase()),
        audit: { append: async (_server: unknown, event: AppendedEvent["event"]) => void appended.push(event) } as never,
        oauthToken: async (stored: StoredServer) => ({ ok: false, stored, error: { class: "auth", message: "no", httpStatus: null } }) as never,
        sessions: createSessionCodec([Buffer.alloc(32, 1)]),
      });
      const actor = await srv.services.tokens.authenticate(`Bearer ${token}`);
      const ctx = await gateway.open(actor, id, undefined);

      const ex = ctx.exchange([
        { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: {} } },
        { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "broken", arguments: {} } },
      ]);
      expect(ex.forward).toHaveLength(2);
      expect(ex.onUpstreamMessage({ jsonrpc: "2.0", id: 1, result: { content: [] } })).toMatchObject({ id: 1 });
      expect(ex.onUpstreamMessage({ jsonrpc: "2.0", id: 2, result: { content: [], isError: true } })).toMatchObject({ id: 2 });
      expect(appended).toEqual([]); // the answers may go to the agent before anything is recorded

      await ex.settled();
      expect(appended.map((e) => ({ type: e.type, tool: e.toolCall?.tool, outcome: e.toolCall?.outcome }))).toEqual([
        { type: "tool_called", tool: "echo", outcome: "ok" },
        { type: "tool_called", tool: "broken", outcome: "tool_error" },
      ]);
      expect(appended.every((e) => typeof e.toolCall?.durationMs === "number" && e.toolCall.durationMs >= 0)).toBe(true);

      await ex.settled(); // a second settle appends nothing again
      expect(appended).toHaveLength(2);
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
