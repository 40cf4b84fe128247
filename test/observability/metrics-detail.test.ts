// The series' labels (issue 24): bounded sets by default; server ids and tool names only with
// MCP_API_METRICS_DETAIL=server, and then capped.
import { describe, expect, test } from "vitest";
import { createMetrics } from "../../server/observability/metrics.js";
import { readObservabilityConfig } from "../../server/observability/start.js";

describe("metric labels", () => {
  test("when detail is off, then no server or tool label appears, and unknown methods and outcomes are 'other'", async () => {
    const { metrics, registry } = createMetrics({ detail: false, detailCap: 2 });
    metrics.gatewayMessage("server", "tools/call", "ok", 0.01, { serverId: "mcp_01SERVERID", tool: "secret_tool_name" });
    metrics.gatewayMessage("server", "made/up-by-an-agent", "weird", 0.01, {});
    metrics.upstream("tools/call", "ok", 0.01, "mcp_01SERVERID");
    const text = await registry.metrics();
    expect(text).toContain('mcp_api_gateway_messages_total{endpoint="server",method="tools/call",outcome="ok"} 1');
    expect(text).toContain('mcp_api_gateway_messages_total{endpoint="server",method="other",outcome="other"} 1');
    expect(text).not.toContain("mcp_01SERVERID");
    expect(text).not.toContain("secret_tool_name");
    expect(text).not.toContain("made/up");
  });

  test("when detail is server, then server ids and tool names are labels, and past the cap they are 'other'", async () => {
    const { metrics, registry } = createMetrics({ detail: true, detailCap: 2 });
    for (const id of ["mcp_A", "mcp_B", "mcp_C"]) metrics.gatewayMessage("server", "tools/call", "ok", 0.01, { serverId: id, tool: `tool_${id}` });
    metrics.upstreamFailure("connect", "mcp_A");
    const text = await registry.metrics();
    expect(text).toContain('mcp_api_gateway_messages_total{endpoint="server",method="tools/call",outcome="ok",server="mcp_A",tool="tool_mcp_A"} 1');
    expect(text).toContain('mcp_api_gateway_messages_total{endpoint="server",method="tools/call",outcome="ok",server="mcp_B",tool="tool_mcp_B"} 1');
    expect(text).toContain('mcp_api_gateway_messages_total{endpoint="server",method="tools/call",outcome="ok",server="other",tool="other"} 1');
    expect(text).not.toContain("mcp_C");
    expect(text).toContain('mcp_api_upstream_failures_total{class="connect",server="mcp_A"} 1');
  });

  test("when the variables are malformed, then start-up stops with a message naming them", () => {
    expect(() => readObservabilityConfig({ MCP_API_METRICS_PORT: "port" })).toThrow(/MCP_API_METRICS_PORT/);
    expect(() => readObservabilityConfig({ MCP_API_METRICS_DETAIL: "everything" })).toThrow(/MCP_API_METRICS_DETAIL/);
    expect(() => readObservabilityConfig({ MCP_API_HEALTH_INTERVAL_MS: "999" })).toThrow(/MCP_API_HEALTH_INTERVAL_MS/);
    expect(readObservabilityConfig({})).toEqual({ metricsPort: null, metricsToken: null, metricsDetail: false, tracing: false, healthIntervalMs: null });
    expect(readObservabilityConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" }).tracing).toBe(true);
  });
});
