// Toolsets: the workspace's toolsets (list), a new one (create) and one toolset (edit): a name, a
// description and tools picked across the workspace's servers from their live lists, each with
// an optional name and description the agent sees instead of the server's.
import { useState, type FormEvent } from "react";
import type { McpServer } from "../../client/index.js";
import { fieldError, ProblemError } from "../api.js";
import { CopyBlock } from "../components/copy-button.js";
import { TextArea, TextField } from "../components/field.js";
import { Busy, Failure, Loading } from "../components/status.js";
import { TableWrap } from "../components/table-wrap.js";
import { useConsole } from "../context.js";
import { useCreateToolset, useDeleteToolset, useServersPage, useServerTools, useToolset, useToolsetEvents, useToolsets, useUpdateToolset, type Toolset, type ToolsetCreate } from "../queries.js";
import { Link, navigate } from "../router.js";
import { when } from "../servers/servers-page.js";

export function ToolsetsPage() {
  const { workspace } = useConsole();
  const toolsets = useToolsets(workspace);
  return (
    <section>
      <div className="title-row">
        <h1>Toolsets</h1>
        <button type="button" className="primary" onClick={() => navigate("/toolsets/new")}>
          New toolset
        </button>
      </div>
      <p className="muted">A toolset is an MCP endpoint serving only the tools you pick, from any servers of the workspace, under the names and descriptions you give them.</p>
      <Loading query={toolsets} what="toolsets">
        {(page) =>
          page.data.length === 0 ? (
            <p>No toolsets yet.</p>
          ) : (
            <TableWrap label="Toolsets">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Tools</th>
                    <th scope="col">Endpoint</th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((t) => (
                    <tr key={t.id}>
                      <th scope="row">
                        <Link to={`/toolsets/${t.id}`}>{t.name}</Link>
                      </th>
                      <td className="wrap">{t.tools.length === 0 ? "none" : t.tools.map((x) => x.exposedName).join(", ")}</td>
                      <td className="wrap">
                        <code>{t.mcpPath}</code>
                      </td>
                      <td>{when(t.updatedAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )
        }
      </Loading>
    </section>
  );
}

export function NewToolsetPage() {
  const { workspace } = useConsole();
  const create = useCreateToolset(workspace);
  return (
    <section>
      <p className="crumbs">
        <Link to="/toolsets">Toolsets</Link> / new
      </p>
      <h1>New toolset</h1>
      <ToolsetForm
        submitLabel="Create"
        pending={create.isPending}
        error={create.error}
        onSubmit={(body) => create.mutate(body, { onSuccess: (t) => navigate(`/toolsets/${t.id}`) })}
      />
    </section>
  );
}

export function ToolsetPage({ id }: { id: string }) {
  const read = useToolset(id);
  const update = useUpdateToolset(id);
  const remove = useDeleteToolset(id);
  // The form starts from one version; after a 412 the person chooses to load the newer one.
  const [version, setVersion] = useState(0);
  return (
    <Loading query={read} what="the toolset">
      {({ toolset, etag }) => (
        <section>
          <p className="crumbs">
            <Link to="/toolsets">Toolsets</Link> / {toolset.name}
          </p>
          <h1>{toolset.name}</h1>
          <p className="muted wrap">
            {toolset.id} · {toolset.tools.length} tools · updated {when(toolset.updatedAt)}
          </p>
          <CopyBlock label="Endpoint URL" text={`${window.location.origin}${toolset.mcpPath}`} />
          <h2>Edit</h2>
          <ToolsetForm
            key={`${version}:${update.data?.updatedAt ?? toolset.updatedAt}`}
            initial={update.data ?? toolset}
            submitLabel="Save"
            // Not while the record is read again: the ETag sent must be the one of what is shown.
            pending={update.isPending || read.isFetching}
            error={update.error}
            onSubmit={(body) => update.mutate({ patch: body, etag })}
            saved={update.isSuccess}
          />
          {update.error instanceof ProblemError && update.error.status === 412 ? (
            <p>
              <button type="button" onClick={() => { update.reset(); setVersion((v) => v + 1); }}>
                Load the latest version
              </button>
            </p>
          ) : null}
          <h2>Events</h2>
          <ToolsetEvents id={id} />
          <h2>Delete</h2>
          <p>
            <button
              type="button"
              className="danger"
              disabled={remove.isPending}
              onClick={() => window.confirm(`Delete ${toolset.name}? Its endpoint answers 404 at once.`) && remove.mutate(undefined, { onSuccess: () => navigate("/toolsets") })}
            >
              Delete toolset
            </button>
          </p>
          <Failure error={remove.error} title="Not deleted" />
        </section>
      )}
    </Loading>
  );
}

function ToolsetEvents({ id }: { id: string }) {
  const events = useToolsetEvents(id);
  return (
    <Loading query={events} what="events">
      {(page) =>
        page.data.length === 0 ? (
          <p>No events yet.</p>
        ) : (
          <TableWrap label="Toolset events">
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
                {page.data.map((e) => (
                  <tr key={e.id}>
                    <td>{when(e.at)}</td>
                    <td>{e.type}</td>
                    <td>{e.actor}</td>
                    <td className="wrap">{e.removedTools ? e.removedTools.map((t) => t.tool).join(", ") : e.fields.map((f) => `${f.name} ${f.change}`).join(", ")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )
      }
    </Loading>
  );
}

type ToolPick = { serverId: string; tool: string; name: string; description: string };
const keyOf = (serverId: string, tool: string) => `${serverId}\u0000${tool}`;

function ToolsetForm({
  initial,
  submitLabel,
  pending,
  error,
  onSubmit,
  saved,
}: {
  initial?: Toolset;
  submitLabel: "Create" | "Save";
  pending: boolean;
  error: unknown;
  onSubmit: (body: ToolsetCreate) => void;
  saved?: boolean;
}) {
  const { workspace } = useConsole();
  const servers = useServersPage(workspace, undefined, 100);
  const [name, setName] = useState(initial?.name ?? "");
  const [description, setDescription] = useState(initial?.description ?? "");
  // Insertion order is the toolset's order, and the index the API's errors name (/tools/3/name).
  const [picks, setPicks] = useState<Map<string, ToolPick>>(
    () => new Map((initial?.tools ?? []).map((t) => [keyOf(t.serverId, t.tool), { serverId: t.serverId, tool: t.tool, name: t.name ?? "", description: t.description ?? "" }])),
  );
  const order = [...picks.keys()];
  const toggle = (serverId: string, tool: string, on: boolean) =>
    setPicks((m) => {
      const next = new Map(m);
      if (on) next.set(keyOf(serverId, tool), { serverId, tool, name: "", description: "" });
      else next.delete(keyOf(serverId, tool));
      return next;
    });
  const edit = (k: string, field: "name" | "description", value: string) =>
    setPicks((m) => {
      const next = new Map(m);
      next.set(k, { ...next.get(k)!, [field]: value });
      return next;
    });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const tools = [...picks.values()].map((p) => ({ serverId: p.serverId, tool: p.tool, ...(p.name.trim() ? { name: p.name.trim() } : {}), ...(p.description.trim() ? { description: p.description.trim() } : {}) }));
    onSubmit({ name, description: description.trim() ? description : null, tools });
  };
  const err = (pointer: string) => fieldError(error, pointer);
  const entryError = (k: string, field?: "name" | "description") => {
    const i = order.indexOf(k);
    return i < 0 ? undefined : field ? err(`/tools/${i}/${field}`) : fieldError(error, `/tools/${i}`, { exact: true });
  };
  return (
    <form aria-label={submitLabel === "Create" ? "New toolset" : "Toolset"} onSubmit={submit} className="grid-form">
      <TextField label="Name" required value={name} onChange={(e) => setName(e.target.value)} error={err("/name")} />
      <TextArea label="Description" rows={2} value={description} onChange={(e) => setDescription(e.target.value)} error={err("/description")} />
      <h3>Tools</h3>
      <p className="muted">Tick the tools agents of this toolset may list and call; a name or description you give replaces the server's for them.</p>
      {err("/tools") ? (
        <p className="error" role="alert">
          {err("/tools")}
        </p>
      ) : null}
      <Loading query={servers} what="servers">
        {(page) =>
          page.data.length === 0 ? (
            <p>The workspace has no servers yet.</p>
          ) : (
            <>
              {page.data.map((s) => (
                <ServerTools key={s.id} server={s} picks={picks} toggle={toggle} edit={edit} entryError={entryError} />
              ))}
            </>
          )
        }
      </Loading>
      <div className="actions">
        <button type="submit" className="primary" disabled={pending}>
          {submitLabel}
        </button>
        {pending ? <Busy>{submitLabel === "Create" ? "Creating…" : "Saving…"}</Busy> : null}
        {saved && !pending ? <span role="status">Saved.</span> : null}
        <span className="muted">{picks.size} tools picked</span>
      </div>
      <Failure error={error} title={submitLabel === "Create" ? "Not created" : "Not saved"} />
    </form>
  );
}

function ServerTools({
  server,
  picks,
  toggle,
  edit,
  entryError,
}: {
  server: McpServer;
  picks: Map<string, ToolPick>;
  toggle: (serverId: string, tool: string, on: boolean) => void;
  edit: (k: string, field: "name" | "description", value: string) => void;
  entryError: (k: string, field?: "name" | "description") => string | undefined;
}) {
  const tools = useServerTools(server.id, true);
  // Tools the toolset holds that the live list lacks now (server unreachable, tool gone) stay shown, and can be removed.
  const live = tools.data?.data.map((t) => ({ name: t.name, description: t.description ?? null })) ?? [];
  const kept = [...picks.values()].filter((p) => p.serverId === server.id && !live.some((t) => t.name === p.tool)).map((p) => ({ name: p.tool, description: null, gone: true }));
  const rows = [...live.map((t) => ({ ...t, gone: false })), ...kept];
  return (
    <fieldset className="toolset-server">
      <legend>{server.name}</legend>
      {tools.isPending ? <Busy>Loading the live tools of {server.name}…</Busy> : null}
      <Failure error={tools.error} title={`Could not load the live tools of ${server.name}`} />
      {!tools.isPending && rows.length === 0 ? <p className="muted">No tools offered.</p> : null}
      <ul className="checklist">
        {rows.map((t) => {
          const k = keyOf(server.id, t.name);
          const pick = picks.get(k);
          const id = `ts-${server.id}-${t.name}`;
          const problem = entryError(k);
          return (
            <li key={t.name}>
              <input id={id} type="checkbox" checked={!!pick} onChange={(e) => toggle(server.id, t.name, e.target.checked)} aria-invalid={problem ? true : undefined} aria-describedby={problem ? `${id}-error` : undefined} />
              <label htmlFor={id}>{t.name}</label>
              {t.gone ? <span className="muted"> (not in the server's live list now)</span> : t.description ? <span className="muted"> {t.description}</span> : null}
              {problem ? (
                <small id={`${id}-error`} className="error" role="alert">
                  {" "}
                  {problem}
                </small>
              ) : null}
              {pick ? (
                <div className="overrides">
                  <TextField label={`Name for ${t.name}`} value={pick.name} placeholder="(the workspace name)" onChange={(e) => edit(k, "name", e.target.value)} error={entryError(k, "name")} />
                  <TextField label={`Description for ${t.name}`} value={pick.description} placeholder="(the server's description)" onChange={(e) => edit(k, "description", e.target.value)} error={entryError(k, "description")} />
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
    </fieldset>
  );
}
