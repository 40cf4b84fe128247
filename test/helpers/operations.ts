// One request per secured operation of the spec, for tests that expect every one of them
// to answer the same way (429 past the rate limit, 500 on a store fault, 503 while the
// store is unavailable). scripts/check-status-coverage.ts notices an operation left out.
export type OperationCall = readonly [method: string, path: string, body: string | undefined];

const TOOLSET = "tls_01JDQ4N8ZK3V7W0XG5T2H9RBCE";

export function everySecuredOperation(workspaceId: string, id: string): OperationCall[] {
  return [
    ["POST", "/api/mcp-servers", JSON.stringify({ workspaceId, name: "every-op", url: "https://mcp.example.com/mcp" })],
    ["GET", `/api/mcp-servers?workspaceId=${workspaceId}`, undefined],
    ["GET", `/api/mcp-servers/${id}`, undefined],
    ["PATCH", `/api/mcp-servers/${id}`, "{}"],
    ["DELETE", `/api/mcp-servers/${id}`, undefined],
    ["POST", `/api/mcp-servers/${id}/test`, undefined],
    ["GET", `/api/mcp-servers/${id}/tools`, undefined],
    ["GET", `/api/mcp-servers/${id}/events`, undefined],
    ["GET", `/api/mcp-servers/${id}/tool-pins`, undefined],
    ["GET", `/api/mcp-servers/${id}/tool-pins/lookup`, undefined],
    ["DELETE", `/api/mcp-servers/${id}/tool-pins/lookup`, undefined],
    ["POST", `/api/mcp-servers/${id}/tool-pins/lookup/approve`, undefined],
    ["POST", `/api/mcp-servers/${id}/oauth/authorize`, undefined],
    ["DELETE", `/api/mcp-servers/${id}/oauth`, undefined],
    ["POST", `/api/mcp-servers/${id}/mcp`, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })],
    ["GET", `/api/mcp-servers/${id}/mcp`, undefined],
    ["DELETE", `/api/mcp-servers/${id}/mcp`, undefined],
    ["GET", "/api/connectors?search=weather", undefined],
    ["GET", "/api/connectors/io.github.acme%2Fweather", undefined],
    ["POST", `/api/workspaces/${workspaceId}/mcp`, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })],
    ["GET", `/api/workspaces/${workspaceId}/mcp`, undefined],
    ["DELETE", `/api/workspaces/${workspaceId}/mcp`, undefined],
    ["GET", `/api/workspaces/${workspaceId}/events`, undefined],
    ["GET", `/api/workspaces/${workspaceId}/tool-stats`, undefined],
    ["GET", `/api/workspaces/${workspaceId}/tool-call-hours`, undefined],
    ["GET", `/api/workspaces/${workspaceId}/health`, undefined],
    ["GET", "/api/me", undefined],
    ["POST", "/api/tokens", JSON.stringify({ name: "every-op", workspaces: [workspaceId] })],
    ["GET", "/api/tokens", undefined],
    ["DELETE", "/api/tokens/tok_01JDQ4N8ZK3V7W0XG5T2H9RBCE", undefined],
    ["POST", "/api/session", undefined],
    ["GET", `/api/mcp-servers/${id}/connections`, undefined],
    ["PUT", `/api/mcp-servers/${id}/connections/me`, JSON.stringify({ apiKey: "every-op" })],
    ["DELETE", `/api/mcp-servers/${id}/connections/me`, undefined],
    ["DELETE", `/api/mcp-servers/${id}/connections/usr_other`, undefined],
    ["POST", `/api/workspaces/${workspaceId}/toolsets`, JSON.stringify({ name: "every-op", tools: [] })],
    ["GET", `/api/workspaces/${workspaceId}/toolsets`, undefined],
    ["GET", `/api/toolsets/${TOOLSET}`, undefined],
    ["PATCH", `/api/toolsets/${TOOLSET}`, "{}"],
    ["DELETE", `/api/toolsets/${TOOLSET}`, undefined],
    ["GET", `/api/toolsets/${TOOLSET}/events`, undefined],
    ["POST", `/api/toolsets/${TOOLSET}/mcp`, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })],
  ];
}
