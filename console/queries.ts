// One query hook per resource, keyed by the request it makes (method, path, parameters), and
// mutations that invalidate exactly what they change (TanStack Query's own pattern).
import { useMutation, useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";
import type { McpServerCreate, McpServerPatch, components } from "../client/index.js";
import { api, ok } from "./api.js";

type Schemas = components["schemas"];
export type ApiTokenCreate = Schemas["ApiTokenCreate"];
export type Toolset = Schemas["Toolset"];
export type ToolsetCreate = Schemas["ToolsetCreate"];
export type ToolsetPatch = Schemas["ToolsetPatch"];

const key = (method: string, path: string, params: object = {}) => [method, path, params] as const;

export function useMe(token: string | null) {
  return useQuery({ queryKey: key("GET", "/api/me", { token }), queryFn: () => ok(api(token ?? "").GET("/api/me")), enabled: !!token, retry: false, staleTime: 60_000 });
}

export function useServersPage(workspaceId: string, cursor: string | undefined, limit = 20) {
  const query = { workspaceId, limit, ...(cursor ? { cursor } : {}) };
  return useQuery({ queryKey: key("GET", "/api/mcp-servers", query), queryFn: () => api().servers.page(query), enabled: !!workspaceId });
}

export function useServer(id: string) {
  return useQuery({
    queryKey: key("GET", "/api/mcp-servers/{id}", { id }),
    queryFn: () => api().servers.getWithEtag(id),
  });
}

export function useServerTools(id: string, enabled: boolean) {
  const qc = useQueryClient();
  return useQuery({
    queryKey: key("GET", "/api/mcp-servers/{id}/tools", { id }),
    queryFn: async () => {
      // A live listing records the server's status too: the record shown must follow.
      // …and pins the tools it sees, or finds them changed: the pins shown must follow too.
      const tools = await api()
        .servers.tools(id)
        .finally(() => {
          void qc.invalidateQueries({ queryKey: ["GET", "/api/mcp-servers/{id}", { id }] });
          void qc.invalidateQueries({ queryKey: ["GET", "/api/mcp-servers/{id}/tool-pins", { id }] });
          void qc.invalidateQueries({ queryKey: ["GET", "/api/mcp-servers/{id}/tool-pins/{tool}"], predicate: (q) => (q.queryKey[2] as { id?: string })?.id === id });
        });
      return tools;
    },
    enabled,
    retry: false,
  });
}

export function useServerEvents(id: string) {
  const query = { limit: 20 };
  return useQuery({ queryKey: key("GET", "/api/mcp-servers/{id}/events", { id, ...query }), queryFn: () => api().servers.eventsPage(id, query) });
}

export function useConnectors(search: string) {
  const query = { limit: 20, ...(search ? { search } : {}) };
  return useQuery({ queryKey: key("GET", "/api/connectors", query), queryFn: () => ok(api().GET("/api/connectors", { params: { query } })) });
}

export function useConnector(connectorId: string | null) {
  return useQuery({
    queryKey: key("GET", "/api/connectors/{connectorId}", { connectorId }),
    queryFn: () => ok(api().GET("/api/connectors/{connectorId}", { params: { path: { connectorId: connectorId! } } })),
    enabled: !!connectorId,
  });
}

export function useTokens() {
  return useQuery({ queryKey: key("GET", "/api/tokens"), queryFn: () => ok(api().GET("/api/tokens", { params: { query: { limit: 100 } } })) });
}

export function useToolStats(workspaceId: string, since: string) {
  const query = { since };
  return useQuery({
    queryKey: key("GET", "/api/workspaces/{workspaceId}/tool-stats", { workspaceId, ...query }),
    queryFn: () => ok(api().GET("/api/workspaces/{workspaceId}/tool-stats", { params: { path: { workspaceId }, query } })),
  });
}

/** Tool calls per hour and outcome since `since`, counted by the database (the hourly chart). */
export function useToolCallHours(workspaceId: string, since: string) {
  const query = { since };
  return useQuery({
    queryKey: key("GET", "/api/workspaces/{workspaceId}/tool-call-hours", { workspaceId, ...query }),
    queryFn: () => ok(api().GET("/api/workspaces/{workspaceId}/tool-call-hours", { params: { path: { workspaceId }, query } })),
  });
}

export function useWorkspaceEvents(workspaceId: string) {
  const query = { limit: 20 };
  return useQuery({
    queryKey: key("GET", "/api/workspaces/{workspaceId}/events", { workspaceId, ...query }),
    queryFn: () => ok(api().GET("/api/workspaces/{workspaceId}/events", { params: { path: { workspaceId }, query } })),
  });
}

// What a change to one server makes stale: its record, its list, its events, its tools.
function invalidateServer(qc: QueryClient, id?: string) {
  void qc.invalidateQueries({ queryKey: ["GET", "/api/mcp-servers"] });
  void qc.invalidateQueries({ queryKey: ["GET", "/api/workspaces/{workspaceId}/events"] });
  if (!id) return;
  for (const path of ["/api/mcp-servers/{id}", "/api/mcp-servers/{id}/events", "/api/mcp-servers/{id}/tools", "/api/mcp-servers/{id}/tool-pins"]) {
    void qc.invalidateQueries({ queryKey: ["GET", path, { id }], exact: false });
  }
}

export function useCreateServer() {
  const qc = useQueryClient();
  return useMutation({ mutationFn: (body: McpServerCreate) => api().servers.create(body), onSuccess: (s) => invalidateServer(qc, s.id) });
}

export function useUpdateServer(id: string) {
  const qc = useQueryClient();
  return useMutation({
    // No If-Match: a patch carries only the fields the person changed, and every check moves the
    // record's version (its status), which would refuse most saves for no one else's change.
    mutationFn: ({ patch }: { patch: McpServerPatch }) => api().servers.update(id, patch),
    onSuccess: () => invalidateServer(qc, id),
  });
}

export function useTestServer(id: string) {
  const qc = useQueryClient();
  return useMutation({ mutationFn: () => api().servers.test(id), onSettled: () => invalidateServer(qc, id) });
}

export function useDeleteServer(id: string) {
  const qc = useQueryClient();
  return useMutation({ mutationFn: () => api().servers.delete(id), onSuccess: () => invalidateServer(qc, id) });
}

export function useToolPins(id: string) {
  const query = { limit: 100 };
  return useQuery({
    queryKey: key("GET", "/api/mcp-servers/{id}/tool-pins", { id, ...query }),
    queryFn: () => ok(api().GET("/api/mcp-servers/{id}/tool-pins", { params: { path: { id }, query } })),
  });
}

/** One pin with both definitions, and the ETag an approval must send as If-Match. */
export function useToolPin(id: string, tool: string | null) {
  return useQuery({
    queryKey: key("GET", "/api/mcp-servers/{id}/tool-pins/{tool}", { id, tool }),
    queryFn: async () => {
      const result = await api().GET("/api/mcp-servers/{id}/tool-pins/{tool}", { params: { path: { id, tool: tool! } } });
      const pin = await ok(Promise.resolve(result));
      return { pin, etag: result.response.headers.get("etag") ?? "" };
    },
    enabled: !!tool,
  });
}

// An approval or a forgotten pin changes the pin, the pins list, what the gateway serves (tools) and the events.
function invalidatePins(qc: QueryClient, id: string) {
  invalidateServer(qc, id);
  void qc.invalidateQueries({ queryKey: ["GET", "/api/mcp-servers/{id}/tool-pins/{tool}"], predicate: (q) => (q.queryKey[2] as { id?: string })?.id === id });
}

export function useApproveToolPin(id: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ tool, etag }: { tool: string; etag: string }) =>
      ok(api().POST("/api/mcp-servers/{id}/tool-pins/{tool}/approve", { params: { path: { id, tool }, header: { "If-Match": etag } } })),
    // A 412 means the definition moved on since it was read: read it again, so the diff shown is the one an approval would pin.
    onSettled: () => invalidatePins(qc, id),
  });
}

export function useDeleteToolPin(id: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (tool: string) => ok(api().DELETE("/api/mcp-servers/{id}/tool-pins/{tool}", { params: { path: { id, tool } } })),
    onSuccess: () => invalidatePins(qc, id),
  });
}

export function useToolsets(workspaceId: string) {
  const query = { limit: 100 };
  return useQuery({
    queryKey: key("GET", "/api/workspaces/{workspaceId}/toolsets", { workspaceId, ...query }),
    queryFn: () => ok(api().GET("/api/workspaces/{workspaceId}/toolsets", { params: { path: { workspaceId }, query } })),
    enabled: !!workspaceId,
  });
}

/** One toolset and its ETag, which a save sends back as If-Match. */
export function useToolset(toolsetId: string) {
  return useQuery({
    queryKey: key("GET", "/api/toolsets/{toolsetId}", { toolsetId }),
    queryFn: async () => {
      const result = await api().GET("/api/toolsets/{toolsetId}", { params: { path: { toolsetId } } });
      const toolset = await ok(Promise.resolve(result));
      return { toolset, etag: result.response.headers.get("etag") ?? "" };
    },
  });
}

export function useToolsetEvents(toolsetId: string) {
  const query = { limit: 20 };
  return useQuery({
    queryKey: key("GET", "/api/toolsets/{toolsetId}/events", { toolsetId, ...query }),
    queryFn: () => ok(api().GET("/api/toolsets/{toolsetId}/events", { params: { path: { toolsetId }, query } })),
  });
}

// What a change to a toolset makes stale: the workspace's list, the toolset and its events.
function invalidateToolset(qc: QueryClient, toolsetId?: string) {
  void qc.invalidateQueries({ queryKey: ["GET", "/api/workspaces/{workspaceId}/toolsets"] });
  if (!toolsetId) return;
  void qc.invalidateQueries({ queryKey: ["GET", "/api/toolsets/{toolsetId}", { toolsetId }] });
  void qc.invalidateQueries({ queryKey: ["GET", "/api/toolsets/{toolsetId}/events"], predicate: (q) => (q.queryKey[2] as { toolsetId?: string })?.toolsetId === toolsetId });
}

export function useCreateToolset(workspaceId: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: ToolsetCreate) => ok(api().POST("/api/workspaces/{workspaceId}/toolsets", { params: { path: { workspaceId } }, body })),
    onSuccess: (t) => invalidateToolset(qc, t.id),
  });
}

export function useUpdateToolset(toolsetId: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ patch, etag }: { patch: ToolsetPatch; etag: string }) =>
      ok(api().PATCH("/api/toolsets/{toolsetId}", { params: { path: { toolsetId }, header: { "If-Match": etag } }, body: patch })),
    onSuccess: () => invalidateToolset(qc, toolsetId),
  });
}

export function useDeleteToolset(toolsetId: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () => ok(api().DELETE("/api/toolsets/{toolsetId}", { params: { path: { toolsetId } } })),
    onSuccess: () => invalidateToolset(qc, toolsetId),
  });
}

export function useMintToken() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: ApiTokenCreate) => ok(api().POST("/api/tokens", { body })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["GET", "/api/tokens"] }),
  });
}

export function useRevokeToken() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (tokenId: string) => ok(api().DELETE("/api/tokens/{tokenId}", { params: { path: { tokenId } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["GET", "/api/tokens"] }),
  });
}
