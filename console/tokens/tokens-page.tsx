// Tokens: mint an agent token (scope, workspaces, toolsets, expiry), shown once with a copy button; list; revoke.
import { useState, type FormEvent } from "react";
import { TableWrap } from "../components/table-wrap.js";
import { fieldError } from "../api.js";
import { CopyButton } from "../components/copy-button.js";
import { SelectField, TextField } from "../components/field.js";
import { Busy, Failure, Loading } from "../components/status.js";
import { useConsole } from "../context.js";
import { useMintToken, useRevokeToken, useTokens, useToolsets, type ApiTokenCreate } from "../queries.js";
import { when } from "../servers/servers-page.js";

export function MintedToken({ token, id }: { token: string; id: string }) {
  return (
    <div className="result good" role="status">
      <p>
        Token <code>{id}</code> minted. It is shown only now: copy it and store it where the agent reads it.
      </p>
      <p className="secret">
        <code tabIndex={0}>{token}</code> <CopyButton text={token} label="Copy token" />
      </p>
    </div>
  );
}

export function MintForm({ onMinted, defaultName = "", defaultToolsets = [] }: { onMinted?: (token: string) => void; defaultName?: string; defaultToolsets?: string[] }) {
  const { me, workspace } = useConsole();
  const mint = useMintToken();
  const toolsetList = useToolsets(workspace);
  const [toolsets, setToolsets] = useState<string[]>(defaultToolsets);
  const [name, setName] = useState(defaultName);
  const [scope, setScope] = useState<NonNullable<ApiTokenCreate["scope"]>>("gateway");
  const [workspaces, setWorkspaces] = useState<string[]>([workspace]);
  const [days, setDays] = useState("90");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    // A toolset limit is for gateway tokens only (the API refuses it on admin ones).
    const limit = scope === "gateway" && toolsets.length > 0 ? { toolsets } : {};
    const body: ApiTokenCreate = { name, scope, workspaces, ...limit, ...(days ? { expiresInDays: Number(days) } : {}) };
    mint.mutate(body, { onSuccess: (t) => onMinted?.(t.token) });
  };
  const err = (p: string) => fieldError(mint.error, p);
  return (
    <form aria-label="Mint a token" onSubmit={submit} className="grid-form">
      <TextField label="Token name" required value={name} onChange={(e) => setName(e.target.value)} error={err("/name")} hint="What it is for, e.g. Claude Desktop on my laptop" />
      <SelectField
        label="Scope"
        options={[
          { value: "gateway", label: "gateway (MCP endpoints only)" },
          ...(me.scope === "admin" ? [{ value: "admin", label: "admin (the whole API)" }] : []),
        ]}
        value={scope}
        onChange={(e) => setScope(e.target.value as typeof scope)}
        error={err("/scope")}
      />
      <fieldset>
        <legend>Workspaces</legend>
        {me.workspaces.map((ws) => (
          <div className="field check" key={ws}>
            <input
              id={`mint-ws-${ws}`}
              type="checkbox"
              checked={workspaces.includes(ws)}
              onChange={(e) => setWorkspaces(e.target.checked ? [...workspaces, ws] : workspaces.filter((w) => w !== ws))}
            />
            <label htmlFor={`mint-ws-${ws}`}>{ws}</label>
          </div>
        ))}
        {err("/workspaces") ? <small className="error" role="alert">{err("/workspaces")}</small> : null}
      </fieldset>
      {scope === "gateway" ? (
        <fieldset>
          <legend>Toolsets</legend>
          <p className="muted">Ticked: the token may use only these toolsets' endpoints. None ticked: every MCP endpoint of its workspaces.</p>
          {toolsetList.data?.data.length === 0 ? <p className="muted">This workspace has no toolsets.</p> : null}
          {(toolsetList.data?.data ?? []).map((t) => (
            <div className="field check" key={t.id}>
              <input id={`mint-ts-${t.id}`} type="checkbox" checked={toolsets.includes(t.id)} onChange={(e) => setToolsets(e.target.checked ? [...toolsets, t.id] : toolsets.filter((x) => x !== t.id))} />
              <label htmlFor={`mint-ts-${t.id}`}>{t.name}</label>
            </div>
          ))}
          <Failure error={toolsetList.error} title="Could not load the toolsets" />
          {err("/toolsets") ? <small className="error" role="alert">{err("/toolsets")}</small> : null}
        </fieldset>
      ) : null}
      <TextField label="Expires in days" type="number" min={1} max={365} value={days} onChange={(e) => setDays(e.target.value)} error={err("/expiresInDays")} hint="1–365; empty for no expiry" />
      <div className="actions">
        <button type="submit" className="primary" disabled={mint.isPending}>
          Mint token
        </button>
        {mint.isPending ? <Busy>Minting…</Busy> : null}
      </div>
      <Failure error={mint.error} title="Not minted" />
      {mint.data ? <MintedToken token={mint.data.token} id={mint.data.id} /> : null}
    </form>
  );
}

export function TokensPage() {
  const tokens = useTokens();
  const revoke = useRevokeToken();
  return (
    <section>
      <h1>Tokens</h1>
      <h2>Mint a token</h2>
      <MintForm />
      <h2>Your tokens</h2>
      <Failure error={revoke.error} title="Not revoked" />
      <Loading query={tokens} what="tokens">
        {(page) => (
          <TableWrap label="Tokens">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Id</th>
                  <th scope="col">Scope</th>
                  <th scope="col">Workspaces</th>
                  <th scope="col">Toolsets</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((t) => (
                  <tr key={t.id}>
                    <th scope="row">{t.name ?? "(no name)"}</th>
                    <td>
                      <code>{t.id}</code>
                    </td>
                    <td>{t.scope}</td>
                    <td className="wrap">{t.workspaces.join(", ")}</td>
                    <td className="wrap">{t.toolsets ? t.toolsets.join(", ") : "any"}</td>
                    <td>{when(t.createdAt)}</td>
                    <td>{t.expiresAt ? when(t.expiresAt) : "never"}</td>
                    <td>
                      <button type="button" className="danger" disabled={revoke.isPending} onClick={() => window.confirm(`Revoke ${t.name ?? t.id}? Agents using it are refused at once.`) && revoke.mutate(t.id)} aria-label={`Revoke ${t.name ?? t.id}`}>
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Loading>
    </section>
  );
}
