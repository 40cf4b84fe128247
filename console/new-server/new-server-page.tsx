// New server: from scratch, or from a connector of the catalog whose inputs become a form
// (secret inputs as password fields, sent once and never shown again).
import { useState, type FormEvent } from "react";
import type { components, McpServerCreate } from "../../client/index.js";
import { fieldError } from "../api.js";
import { SelectField, TextField } from "../components/field.js";
import { Busy, Failure, Loading } from "../components/status.js";
import { useConsole } from "../context.js";
import { useConnector, useConnectors, useCreateServer } from "../queries.js";
import { navigate } from "../router.js";
import { AUTH_TYPES } from "../server/settings-form.js";

type Connector = components["schemas"]["Connector"];

export function NewServerPage() {
  const [mode, setMode] = useState<"scratch" | "connector">("scratch");
  return (
    <section>
      <h1>New server</h1>
      <fieldset className="tabs">
        <legend>Start</legend>
        <label>
          <input type="radio" name="mode" checked={mode === "scratch"} onChange={() => setMode("scratch")} /> From scratch
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === "connector"} onChange={() => setMode("connector")} /> From a connector
        </label>
      </fieldset>
      {mode === "scratch" ? <ScratchForm /> : <ConnectorPicker />}
    </section>
  );
}

function useCreate() {
  const create = useCreateServer();
  const submit = (body: McpServerCreate) => create.mutate(body, { onSuccess: (s) => navigate(`/servers/${s.id}`) });
  return { create, submit };
}

function ScratchForm() {
  const { workspace } = useConsole();
  const { create, submit } = useCreate();
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [authType, setAuthType] = useState<McpServerCreate["authType"]>("none");
  const [apiKey, setApiKey] = useState("");
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    submit({ workspaceId: workspace, name, url, authType, ...(authType === "api_key" && apiKey ? { apiKey } : {}) });
  };
  const err = (p: string) => fieldError(create.error, p);
  return (
    <form aria-label="New server" onSubmit={onSubmit} className="grid-form">
      <TextField label="Name" required value={name} onChange={(e) => setName(e.target.value)} error={err("/name")} />
      <TextField label="URL" type="url" required value={url} onChange={(e) => setUrl(e.target.value)} error={err("/url")} hint="The server's Streamable HTTP (or SSE) endpoint, e.g. https://mcp.example.com/mcp" />
      <SelectField label="Authentication" options={AUTH_TYPES} value={authType} onChange={(e) => setAuthType(e.target.value as McpServerCreate["authType"])} error={err("/authType")} />
      {authType === "api_key" ? <TextField label="API key" type="password" autoComplete="new-password" value={apiKey} onChange={(e) => setApiKey(e.target.value)} error={err("/apiKey")} /> : null}
      <p className="muted">Headers, OAuth settings, secret headers and tool limits are on the server's page once it exists.</p>
      <div className="actions">
        <button type="submit" className="primary" disabled={create.isPending}>
          Create
        </button>
        {create.isPending ? <Busy>Creating…</Busy> : null}
      </div>
      <Failure error={create.error} title="Not created" />
    </form>
  );
}

function ConnectorPicker() {
  const [search, setSearch] = useState("");
  const [chosen, setChosen] = useState<string | null>(null);
  const list = useConnectors(search.trim());
  const connector = useConnector(chosen);
  return (
    <>
      <div className="field inline">
        <label htmlFor="connector-search">Search the catalog</label>
        <input id="connector-search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
      </div>
      <Loading query={list} what="connectors">
        {(page) =>
          page.data.length === 0 ? (
            <p>No connector matches. The catalog is filled with <code>npm run -s catalog -- sync</code> or <code>import</code>.</p>
          ) : (
            <ul className="cards">
              {page.data.map((c) => (
                <li key={c.name}>
                  <button type="button" aria-pressed={chosen === c.name} onClick={() => setChosen(c.name)}>
                    <strong>{c.title ?? c.name}</strong> <span className="muted">{c.name} {c.version}</span>
                    <br />
                    <span>{c.description}</span>
                  </button>
                </li>
              ))}
            </ul>
          )
        }
      </Loading>
      {chosen ? <Loading query={connector} what="the connector">{(c) => <ConnectorForm key={c.name} connector={c} />}</Loading> : null}
    </>
  );
}

function ConnectorForm({ connector }: { connector: Connector }) {
  const { workspace } = useConsole();
  const { create, submit } = useCreate();
  // The product uses the first streamable-http remote, else the first (README "Connectors").
  const remote = connector.remotes.find((r) => r.type === "streamable-http") ?? connector.remotes[0];
  // The inputs are the variables and the headers without a fixed value, as the API validates them.
  const inputs = [...(remote?.variables ?? []), ...(remote?.headers ?? []).filter((h) => h.value === null || h.value === undefined)];
  const [name, setName] = useState(connector.title ?? connector.name.split("/").pop() ?? connector.name);
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(inputs.map((i) => [i.name, i.isSecret ? "" : (i.default ?? "")])));
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    // Inputs left empty are left out, so the connector's defaults apply and the API names missing required ones.
    const config = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ""));
    submit({ workspaceId: workspace, name, connectorId: connector.name, connectorConfig: config });
  };
  return (
    <form aria-label={`New server from ${connector.title ?? connector.name}`} onSubmit={onSubmit} className="grid-form">
      <h2>{connector.title ?? connector.name}</h2>
      <p className="muted wrap">{remote ? `${remote.type} ${remote.url}` : "This connector has no remote."}</p>
      <TextField label="Name" required value={name} onChange={(e) => setName(e.target.value)} error={fieldError(create.error, "/name")} />
      {inputs.map((i) =>
        i.choices && i.choices.length > 0 ? (
          <SelectField
            key={i.name}
            label={i.name}
            hint={i.description ?? undefined}
            options={[...(i.isRequired ? [] : [{ value: "", label: "(default)" }]), ...i.choices.map((c) => ({ value: c, label: c }))]}
            value={values[i.name] ?? ""}
            onChange={(e) => setValues({ ...values, [i.name]: e.target.value })}
            error={fieldError(create.error, `/connectorConfig/${i.name}`)}
          />
        ) : (
          <TextField
            key={i.name}
            label={i.name}
            type={i.isSecret ? "password" : "text"}
            autoComplete={i.isSecret ? "new-password" : "off"}
            required={i.isRequired}
            hint={[i.description, i.isSecret ? "Secret: stored encrypted and never shown again." : null].filter(Boolean).join(" ")}
            value={values[i.name] ?? ""}
            onChange={(e) => setValues({ ...values, [i.name]: e.target.value })}
            error={fieldError(create.error, `/connectorConfig/${i.name}`)}
          />
        ),
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={create.isPending}>
          Create
        </button>
        {create.isPending ? <Busy>Creating…</Busy> : null}
      </div>
      <Failure error={create.error} title="Not created" />
    </form>
  );
}
