// Servers: the workspace's servers, a page at a time along the API's cursors, searchable by name or URL.
import { useState } from "react";
import { TableWrap } from "../components/table-wrap.js";
import type { McpServer } from "../../client/index.js";
import { Loading } from "../components/status.js";
import { useConsole } from "../context.js";
import { useServersPage } from "../queries.js";
import { Link, navigate } from "../router.js";

export const originOf = (url: string) => {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
};

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "never");

export function StatusBadge({ server }: { server: Pick<McpServer, "connectorStatus" | "enabled"> }) {
  return <span className={`badge status-${server.connectorStatus}`}>{server.connectorStatus}</span>;
}

export function ServersPage() {
  const { workspace } = useConsole();
  // Earlier pages' cursors, so "Previous" goes back the way "Next" came.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [search, setSearch] = useState("");
  const cursor = cursors[cursors.length - 1];
  const page = useServersPage(workspace, cursor);
  const needle = search.trim().toLowerCase();
  const matches = (s: McpServer) => !needle || s.name.toLowerCase().includes(needle) || s.url.toLowerCase().includes(needle);

  return (
    <section>
      <div className="title-row">
        <h1>Servers</h1>
        <button type="button" className="primary" onClick={() => navigate("/servers/new")}>
          New server
        </button>
      </div>
      <div className="field inline">
        <label htmlFor="server-search">Search</label>
        <input id="server-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="name or URL on this page" />
      </div>
      <Loading query={page} what="servers">
        {(data) => {
          const rows = data.data.filter(matches);
          return (
            <>
              <TableWrap label="Servers">
                <table>
                  <caption className="sr-only">MCP servers of {workspace}</caption>
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">URL origin</th>
                      <th scope="col">Auth</th>
                      <th scope="col">Status</th>
                      <th scope="col">Last check</th>
                      <th scope="col">Enabled</th>
                      <th scope="col">Tools</th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((s) => (
                      <tr key={s.id}>
                        <th scope="row">
                          <Link to={`/servers/${s.id}`}>{s.name}</Link>
                        </th>
                        <td className="wrap">{originOf(s.url)}</td>
                        <td>{s.authType}</td>
                        <td>
                          <StatusBadge server={s} />
                        </td>
                        <td>{when(s.lastCheckedAt)}</td>
                        <td>{s.enabled ? "yes" : "no"}</td>
                        <td>{s.allowedTools === null ? "all" : `${s.allowedTools.length} allowed`}</td>
                      </tr>
                    ))}
                    {rows.length === 0 ? (
                      <tr>
                        <td colSpan={7}>{data.data.length === 0 ? "No servers yet: add one with New server." : "No server on this page matches."}</td>
                      </tr>
                    ) : null}
                  </tbody>
                </table>
              </TableWrap>
              <div className="pager">
                <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                  Previous page
                </button>
                <button type="button" disabled={!data.nextCursor} onClick={() => setCursors([...cursors, data.nextCursor ?? undefined])}>
                  Next page
                </button>
              </div>
            </>
          );
        }}
      </Loading>
    </section>
  );
}
