// Connections of a user-scope server: each person's own, with Connect my account (OAuth through the
// authorization server, or an API key typed here) and removal.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { McpServer } from "../../client/index.js";
import { api, fieldError, ok } from "../api.js";
import { TextField } from "../components/field.js";
import { Busy, Failure, Loading } from "../components/status.js";
import { TableWrap } from "../components/table-wrap.js";
import { useConsole } from "../context.js";
import { when } from "../servers/servers-page.js";

export function ConnectionsPanel({ server }: { server: McpServer }) {
  const { me } = useConsole();
  const qc = useQueryClient();
  const id = server.id;
  const queryKey = ["GET", "/api/mcp-servers/{id}/connections", { id }] as const;
  const list = useQuery({ queryKey, queryFn: () => ok(api().GET("/api/mcp-servers/{id}/connections", { params: { path: { id }, query: { limit: 100 } } })) });
  const changed = () => {
    void qc.invalidateQueries({ queryKey });
    void qc.invalidateQueries({ queryKey: ["GET", "/api/mcp-servers/{id}", { id }] });
  };
  const connectOAuth = useMutation({ mutationFn: () => api().servers.connect(id), onSuccess: (a) => window.location.assign(a.authorizationUrl) });
  const [apiKey, setApiKey] = useState("");
  const setKey = useMutation({ mutationFn: () => ok(api().PUT("/api/mcp-servers/{id}/connections/me", { params: { path: { id } }, body: { apiKey } })), onSuccess: () => { setApiKey(""); changed(); } });
  const removeMine = useMutation({ mutationFn: () => ok(api().DELETE("/api/mcp-servers/{id}/connections/me", { params: { path: { id } } })), onSuccess: changed });
  const removeOther = useMutation({ mutationFn: (userId: string) => ok(api().DELETE("/api/mcp-servers/{id}/connections/{userId}", { params: { path: { id, userId } } })), onSuccess: changed });
  const submitKey = (e: FormEvent) => {
    e.preventDefault();
    setKey.mutate();
  };
  return (
    <div className="panel">
      <p>Each person connects their own account; agents act as the person whose token they use.</p>
      {server.authType === "oauth" ? (
        <p>
          <button type="button" className="primary" onClick={() => connectOAuth.mutate()} disabled={connectOAuth.isPending}>
            Connect my account
          </button>
        </p>
      ) : (
        <form aria-label="My connection" onSubmit={submitKey}>
          <TextField label="My API key" type="password" autoComplete="new-password" required value={apiKey} onChange={(e) => setApiKey(e.target.value)} error={fieldError(setKey.error, "/apiKey")} />
          <button type="submit" className="primary" disabled={setKey.isPending}>
            Connect my account
          </button>
        </form>
      )}
      {connectOAuth.isPending ? <Busy>Asking the authorization server…</Busy> : null}
      {setKey.isPending ? <Busy>Saving your key…</Busy> : null}
      <Failure error={connectOAuth.error ?? setKey.error ?? removeMine.error ?? removeOther.error} title="Connection not changed" />
      <Loading query={list} what="connections">
        {(page) =>
          page.data.length === 0 ? (
            <p>Nobody has connected yet.</p>
          ) : (
            <TableWrap label="Connections">
              <table>
                <thead>
                  <tr>
                    <th scope="col">User</th>
                    <th scope="col">Status</th>
                    <th scope="col">Credential</th>
                    <th scope="col">Last used</th>
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((c) => (
                    <tr key={c.userId}>
                      <th scope="row">{c.userId === me.userId ? `${c.userId} (you)` : c.userId}</th>
                      <td>{c.status}</td>
                      <td className="wrap">{[c.oauthExpiresAt ? `OAuth until ${when(c.oauthExpiresAt)}` : null, c.hasApiKey ? "API key" : null, ...c.secretHeaderNames].filter(Boolean).join(", ") || "none"}</td>
                      <td>{when(c.lastUsedAt)}</td>
                      <td>
                        <button
                          type="button"
                          className="danger"
                          aria-label={`Remove ${c.userId}'s connection`}
                          onClick={() => (c.userId === me.userId ? removeMine.mutate() : window.confirm(`Remove ${c.userId}'s connection?`) && removeOther.mutate(c.userId))}
                        >
                          Remove
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )
        }
      </Loading>
    </div>
  );
}
