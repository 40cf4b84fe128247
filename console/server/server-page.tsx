// Server: settings, enable/disable, Test connection, the live tools with allowedTools as
// checkboxes, tool pins (held tools, their diff, Approve), OAuth connect, and the server's events.
import { useMutation } from "@tanstack/react-query";
import { TableWrap } from "../components/table-wrap.js";
import { useState, type FormEvent } from "react";
import type { components, McpServer } from "../../client/index.js";

type McpTool = components["schemas"]["McpTool"];
import { api } from "../api.js";
import { Busy, Failure, Loading } from "../components/status.js";
import { useDeleteServer, useServer, useServerEvents, useServerTools, useTestServer, useToolPins, useUpdateServer } from "../queries.js";
import { Link, navigate } from "../router.js";
import { StatusBadge, when } from "../servers/servers-page.js";
import { ConnectionsPanel } from "./connections-panel.js";
import { PinsPanel } from "./pins-panel.js";
import { SettingsForm } from "./settings-form.js";

export function ServerPage({ id }: { id: string }) {
  const server = useServer(id);
  return (
    <Loading query={server} what="the server">
      {({ server: s }) => <ServerView server={s} />}
    </Loading>
  );
}

/** The newer of the record read and the one a save answered (forms start from what was saved, before the refetch lands). */
function latest(read: McpServer, saved: McpServer | undefined): McpServer {
  return saved && saved.updatedAt > read.updatedAt ? saved : read;
}

function ServerView({ server }: { server: McpServer }) {
  const update = useUpdateServer(server.id);
  const remove = useDeleteServer(server.id);
  const toggle = () => update.mutate({ patch: { enabled: !server.enabled } });
  return (
    <section>
      <p className="crumbs">
        <Link to="/servers">Servers</Link> / {server.name}
      </p>
      <div className="title-row">
        <h1>{server.name}</h1>
        <StatusBadge server={server} />
        <span className={server.enabled ? "badge on" : "badge off"}>{server.enabled ? "enabled" : "disabled"}</span>
        <button type="button" onClick={toggle} disabled={update.isPending}>
          {server.enabled ? "Disable" : "Enable"}
        </button>
      </div>
      <p className="muted wrap">
        {server.id} · {server.url} · last check {when(server.lastCheckedAt)}
        {server.lastError ? ` · last error ${server.lastError.class}: ${server.lastError.message}` : ""}
      </p>
      <TestPanel id={server.id} />
      {server.authType === "oauth" && server.connectionScope !== "user" ? <OAuthPanel server={server} /> : null}
      {server.connectionScope === "user" ? (
        <>
          <h2>Connections</h2>
          <ConnectionsPanel server={server} />
        </>
      ) : null}
      <h2>Settings</h2>
      <SettingsForm key={update.data?.updatedAt ?? "read"} server={latest(server, update.data)} saving={update.isPending} error={update.error} save={(patch) => update.mutate({ patch })} />
      <h2>Tools</h2>
      <ToolsPanel server={server} />
      <h2>Tool pins</h2>
      <PinsPanel server={server} />
      <h2>Events</h2>
      <EventsPanel id={server.id} />
      <h2>Delete</h2>
      <p>
        <button
          type="button"
          className="danger"
          disabled={remove.isPending}
          onClick={() => {
            if (window.confirm(`Delete ${server.name}? Agents lose it at once; its events stay readable.`)) remove.mutate(undefined, { onSuccess: () => navigate("/servers") });
          }}
        >
          Delete server
        </button>
      </p>
      <Failure error={remove.error} title="Not deleted" />
    </section>
  );
}

function TestPanel({ id }: { id: string }) {
  const test = useTestServer(id);
  const check = test.data;
  return (
    <div className="panel">
      <button type="button" onClick={() => test.mutate()} disabled={test.isPending}>
        Test connection
      </button>
      {test.isPending ? <Busy>Testing the connection…</Busy> : null}
      <Failure error={test.error} title="Test failed" />
      {check ? (
        <div role="status" className={check.error ? "result bad" : "result good"}>
          {check.error ? (
            <p>
              <strong>{check.connectorStatus}</strong>: {check.error.class}: {check.error.message}
            </p>
          ) : (
            <p>
              <strong>Connected</strong> in {check.latencyMs} ms
              {check.serverInfo ? ` to ${check.serverInfo.name} ${check.serverInfo.version}` : ""}
              {check.protocolVersion ? `, protocol ${check.protocolVersion}` : ""}
              {check.toolCount !== null ? `, ${check.toolCount} tools` : ""}.
            </p>
          )}
        </div>
      ) : null}
    </div>
  );
}

function OAuthPanel({ server }: { server: McpServer }) {
  const connect = useMutation({
    mutationFn: () => api().servers.connect(server.id),
    onSuccess: (a) => window.location.assign(a.authorizationUrl),
  });
  return (
    <div className="panel">
      <p>
        OAuth: {server.connectorStatus === "connected" ? `connected${server.oauthExpiresAt ? `, access token until ${when(server.oauthExpiresAt)}` : ""}` : "not connected"}.
      </p>
      <button type="button" onClick={() => connect.mutate()} disabled={connect.isPending}>
        Connect
      </button>
      {connect.isPending ? <Busy>Asking the authorization server…</Busy> : null}
      <Failure error={connect.error} title="Could not start the authorization" />
    </div>
  );
}

function ToolsPanel({ server }: { server: McpServer }) {
  const tools = useServerTools(server.id, true);
  // Here, not in the form: the form starts afresh from each saved version, the outcome stays shown.
  const update = useUpdateServer(server.id);
  return (
    <Loading query={tools} what="the live tools">
      {(list) => <ToolsForm key={update.data?.updatedAt ?? "read"} server={latest(server, update.data)} tools={list.data} update={update} />}
    </Loading>
  );
}

function ToolsForm({ server, tools, update }: { server: McpServer; tools: McpTool[]; update: ReturnType<typeof useUpdateServer> }) {
  // Tools whose definition changed since pinned are held from agents whatever is ticked here.
  const pins = useToolPins(server.id);
  const held = new Set((pins.data?.data ?? []).filter((p) => server.toolPinning && p.status === "changed").map((p) => p.tool));
  const allowed = (name: string) => server.allowedTools === null || server.allowedTools.includes(name);
  const [checked, setChecked] = useState(() => new Set(tools.filter((t) => allowed(t.name)).map((t) => t.name)));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const all = tools.every((t) => checked.has(t.name));
    // Every live tool ticked keeps "all" (null), so tools the server adds later are allowed too.
    update.mutate({ patch: { allowedTools: all && server.allowedTools === null ? null : tools.filter((t) => checked.has(t.name)).map((t) => t.name) } });
  };
  if (tools.length === 0) return <p>The server offers no tools.</p>;
  return (
    <form aria-label="Tools" onSubmit={submit}>
      <fieldset>
        <legend>Tools agents may list and call</legend>
        <ul className="checklist">
          {tools.map((t) => (
            <li key={t.name}>
              <input
                id={`tool-${t.name}`}
                type="checkbox"
                checked={checked.has(t.name)}
                onChange={(e) => {
                  const next = new Set(checked);
                  if (e.target.checked) next.add(t.name);
                  else next.delete(t.name);
                  setChecked(next);
                }}
              />
              <label htmlFor={`tool-${t.name}`}>{t.name}</label>
              {held.has(t.name) ? <> <span className="badge off">held: changed since pinned</span></> : null}
              {t.description ? <span className="muted"> {t.description}</span> : null}
            </li>
          ))}
        </ul>
      </fieldset>
      <div className="actions">
        <button type="submit" className="primary" disabled={update.isPending}>
          Save
        </button>
        {update.isPending ? <Busy>Saving…</Busy> : null}
        {update.isSuccess ? <span role="status">Saved.</span> : null}
      </div>
      <Failure error={update.error} title="Not saved" />
    </form>
  );
}

export function EventsTable({ events }: { events: NonNullable<ReturnType<typeof useServerEvents>["data"]>["data"] }) {
  if (events.length === 0) return <p>No events yet.</p>;
  return (
    <TableWrap label="Events">
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Type</th>
            <th scope="col">Actor</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td>{when(e.at)}</td>
              <td>{e.type}</td>
              <td>{e.actor}</td>
              <td className="wrap">
                {e.toolCall ? `${e.toolCall.tool}: ${e.toolCall.outcome} in ${e.toolCall.durationMs} ms` : e.fields.map((f) => `${f.name} ${f.change}`).join(", ")}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

function EventsPanel({ id }: { id: string }) {
  const events = useServerEvents(id);
  return <Loading query={events} what="events">{(page) => <EventsTable events={page.data} />}</Loading>;
}
