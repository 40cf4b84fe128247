// Every field of a server, editable; write-only secrets are sent only when typed, and the API's
// problem+json errors appear at the field they name.
import { useState, type FormEvent } from "react";
import type { McpServer, McpServerPatch } from "../../client/index.js";
import { fieldError } from "../api.js";
import { SelectField, TextArea, TextField } from "../components/field.js";
import { Busy, Failure } from "../components/status.js";

export const AUTH_TYPES = ["none", "api_key", "oauth"] as const;
const GRANTS = [
  { value: "", label: "inferred" },
  { value: "authorization_code", label: "authorization_code" },
  { value: "client_credentials", label: "client_credentials" },
];

/** `Name: value` lines ⇄ a headers object. */
export function headersText(headers: Record<string, string>): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n");
}
export function parseHeaders(text: string, sep = ":"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const i = line.indexOf(sep);
    // A line without a separator is sent as a name with an empty value; the API names it if that is wrong.
    if (i < 0) out[line.trim()] = "";
    else out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

interface Draft {
  name: string;
  url: string;
  authType: McpServer["authType"];
  apiKey: string;
  oauthClientId: string;
  oauthClientSecret: string;
  oauthScopes: string;
  oauthTokenEndpoint: string;
  oauthAuthorizationEndpoint: string;
  oauthGrantType: string;
  headers: string;
  secretHeaders: string;
  connectorId: string;
  connectorConfig: string;
  enabled: boolean;
  toolPinning: boolean;
  connectionScope: NonNullable<McpServer["connectionScope"]>;
}

function draftOf(s: McpServer): Draft {
  return {
    name: s.name,
    url: s.url,
    authType: s.authType,
    apiKey: "",
    oauthClientId: s.oauthClientId ?? "",
    oauthClientSecret: "",
    oauthScopes: s.oauthScopes ?? "",
    oauthTokenEndpoint: s.oauthTokenEndpoint ?? "",
    oauthAuthorizationEndpoint: s.oauthAuthorizationEndpoint ?? "",
    oauthGrantType: s.oauthGrantType ?? "",
    headers: headersText(s.headers),
    secretHeaders: "",
    connectorId: s.connectorId ?? "",
    connectorConfig: s.connectorConfig ? JSON.stringify(s.connectorConfig, null, 2) : "",
    enabled: s.enabled,
    toolPinning: s.toolPinning,
    connectionScope: s.connectionScope ?? "workspace",
  };
}

const orNull = (v: string) => (v.trim() === "" ? null : v.trim());

/** Only what changed, so a save never rewrites fields someone else changed meanwhile. */
function patchOf(before: Draft, after: Draft): { patch: McpServerPatch; configError?: string } {
  const patch: McpServerPatch = {};
  if (after.name !== before.name) patch.name = after.name;
  if (after.url !== before.url) patch.url = after.url;
  if (after.authType !== before.authType) patch.authType = after.authType;
  if (after.apiKey) patch.apiKey = after.apiKey;
  if (after.oauthClientSecret) patch.oauthClientSecret = after.oauthClientSecret;
  for (const k of ["oauthClientId", "oauthScopes", "oauthTokenEndpoint", "oauthAuthorizationEndpoint"] as const) {
    if (after[k] !== before[k]) patch[k] = orNull(after[k]);
  }
  if (after.oauthGrantType !== before.oauthGrantType) patch.oauthGrantType = (orNull(after.oauthGrantType) as McpServerPatch["oauthGrantType"]) ?? null;
  if (after.headers !== before.headers) patch.headers = parseHeaders(after.headers);
  if (after.secretHeaders.trim()) patch.secretHeaders = parseHeaders(after.secretHeaders, "=");
  if (after.connectorId !== before.connectorId) patch.connectorId = orNull(after.connectorId);
  if (after.connectorConfig !== before.connectorConfig) {
    if (!after.connectorConfig.trim()) patch.connectorConfig = null;
    else {
      try {
        patch.connectorConfig = JSON.parse(after.connectorConfig);
      } catch {
        return { patch, configError: "must be a JSON object" };
      }
    }
  }
  if (after.enabled !== before.enabled) patch.enabled = after.enabled;
  if (after.toolPinning !== before.toolPinning) patch.toolPinning = after.toolPinning;
  if (after.connectionScope !== before.connectionScope) patch.connectionScope = after.connectionScope;
  return { patch };
}

export function SettingsForm({ server, save, saving, error }: { server: McpServer; save: (patch: McpServerPatch) => void; saving: boolean; error: unknown }) {
  const initial = draftOf(server);
  const [draft, setDraft] = useState(initial);
  const [configError, setConfigError] = useState<string>();
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const err = (pointer: string) => fieldError(error, pointer);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const { patch, configError } = patchOf(initial, draft);
    setConfigError(configError);
    if (!configError) save(patch);
  };
  return (
    <form aria-label="Settings" onSubmit={submit} className="grid-form">
      <TextField label="Name" required value={draft.name} onChange={(e) => set("name", e.target.value)} error={err("/name")} />
      <TextField label="URL" type="url" value={draft.url} onChange={(e) => set("url", e.target.value)} error={err("/url")} />
      <SelectField label="Authentication" options={AUTH_TYPES} value={draft.authType} onChange={(e) => set("authType", e.target.value as Draft["authType"])} error={err("/authType")} />
      {draft.authType === "api_key" ? (
        <TextField label="API key" type="password" autoComplete="new-password" value={draft.apiKey} onChange={(e) => set("apiKey", e.target.value)} error={err("/apiKey")} hint={server.hasApiKey ? "One is stored; type a new one to replace it." : "None stored yet."} />
      ) : null}
      {draft.authType === "oauth" ? (
        <fieldset>
          <legend>OAuth</legend>
          <TextField label="Client id" value={draft.oauthClientId} onChange={(e) => set("oauthClientId", e.target.value)} error={err("/oauthClientId")} hint="Empty: registered automatically where the server allows it." />
          <TextField label="Client secret" type="password" autoComplete="new-password" value={draft.oauthClientSecret} onChange={(e) => set("oauthClientSecret", e.target.value)} error={err("/oauthClientSecret")} hint={server.hasOauthClientSecret ? "One is stored; type a new one to replace it." : "None stored."} />
          <TextField label="Scopes" value={draft.oauthScopes} onChange={(e) => set("oauthScopes", e.target.value)} error={err("/oauthScopes")} />
          <SelectField label="Grant type" options={GRANTS} value={draft.oauthGrantType} onChange={(e) => set("oauthGrantType", e.target.value)} error={err("/oauthGrantType")} />
          <TextField label="Token endpoint" type="url" value={draft.oauthTokenEndpoint} onChange={(e) => set("oauthTokenEndpoint", e.target.value)} error={err("/oauthTokenEndpoint")} />
          <TextField label="Authorization endpoint" type="url" value={draft.oauthAuthorizationEndpoint} onChange={(e) => set("oauthAuthorizationEndpoint", e.target.value)} error={err("/oauthAuthorizationEndpoint")} />
        </fieldset>
      ) : null}
      <SelectField
        label="Connection scope"
        options={[
          { value: "workspace", label: "workspace (one credential for everyone)" },
          { value: "user", label: "user (each person connects their own account)" },
        ]}
        value={draft.connectionScope}
        onChange={(e) => set("connectionScope", e.target.value as Draft["connectionScope"])}
        error={err("/connectionScope")}
      />
      <TextArea label="Headers" rows={3} value={draft.headers} onChange={(e) => set("headers", e.target.value)} error={err("/headers")} hint="One per line: Name: value" />
      <TextArea
        label="Secret headers"
        rows={2}
        value={draft.secretHeaders}
        onChange={(e) => set("secretHeaders", e.target.value)}
        error={err("/secretHeaders")}
        hint={`One per line: NAME=value; write-only. Stored: ${server.secretHeaderNames.join(", ") || "none"}. Leave empty to keep them.`}
      />
      <TextField label="Connector id" value={draft.connectorId} onChange={(e) => set("connectorId", e.target.value)} error={err("/connectorId")} />
      <TextArea label="Connector config" rows={3} value={draft.connectorConfig} onChange={(e) => set("connectorConfig", e.target.value)} error={configError ?? err("/connectorConfig")} hint={`JSON object of the connector's inputs. Secret inputs stored: ${server.connectorSecretsSet.join(", ") || "none"}.`} />
      <div className="field check">
        <input id="settings-enabled" type="checkbox" checked={draft.enabled} onChange={(e) => set("enabled", e.target.checked)} />
        <label htmlFor="settings-enabled">Enabled (agents may use it through the gateway)</label>
      </div>
      <div className="field check">
        <input id="settings-pinning" type="checkbox" checked={draft.toolPinning} onChange={(e) => set("toolPinning", e.target.checked)} aria-describedby="settings-pinning-hint" />
        <label htmlFor="settings-pinning">Pin tool definitions</label>
      </div>
      <small id="settings-pinning-hint" className="muted field-hint">Each tool's definition is pinned when first seen; a tool whose definition later changes is held from agents until approved under Tool pins.</small>
      <div className="actions">
        <button type="submit" className="primary" disabled={saving}>
          Save
        </button>
        {saving ? <Busy>Saving…</Busy> : null}
      </div>
      <Failure error={error} title="Not saved" />
    </form>
  );
}
