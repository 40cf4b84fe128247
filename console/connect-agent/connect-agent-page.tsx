// Connect an agent: copyable configuration for the workspace endpoint, each toolset's and each server's endpoint,
// for mcp-remote (Claude Desktop), VS Code's mcp.json and the SDK. A token is minted only on request.
import { useState } from "react";
import { CopyBlock } from "../components/copy-button.js";
import { Loading } from "../components/status.js";
import { useConsole } from "../context.js";
import { useServersPage, useToolsets } from "../queries.js";
import { MintForm } from "../tokens/tokens-page.js";

const PLACEHOLDER = "<YOUR_GATEWAY_TOKEN>";

function configs(name: string, url: string, token: string) {
  const id = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "mcp";
  return {
    claude: JSON.stringify({ mcpServers: { [id]: { command: "npx", args: ["-y", "mcp-remote@0.15.1", url, "--header", `Authorization: Bearer ${token}`] } } }, null, 2),
    vscode: JSON.stringify({ servers: { [id]: { type: "http", url, headers: { Authorization: `Bearer ${token}` } } } }, null, 2),
    sdk: `import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const client = new Client({ name: "my-agent", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(${JSON.stringify(url)}), {
  requestInit: { headers: { Authorization: ${JSON.stringify(`Bearer ${token}`)} } },
}));
console.log((await client.listTools()).tools.map((t) => t.name));`,
  };
}

export function ConnectAgentPage() {
  const { workspace } = useConsole();
  const servers = useServersPage(workspace, undefined, 100);
  const toolsets = useToolsets(workspace);
  const [token, setToken] = useState<string | null>(null);
  const [target, setTarget] = useState("workspace");
  const origin = window.location.origin;
  const endpoints = [
    { value: "workspace", label: `Workspace ${workspace} (every enabled server)`, name: workspace, url: `${origin}/api/workspaces/${workspace}/mcp` },
    ...(toolsets.data?.data ?? []).map((t) => ({ value: t.id, label: `Toolset ${t.name}`, name: t.name, url: `${origin}${t.mcpPath}` })),
    ...(servers.data?.data ?? []).map((s) => ({ value: s.id, label: `Server ${s.name}`, name: s.name, url: `${origin}/api/mcp-servers/${s.id}/mcp` })),
  ];
  const chosen = endpoints.find((e) => e.value === target) ?? endpoints[0];
  const c = configs(chosen.name, chosen.url, token ?? PLACEHOLDER);
  return (
    <section>
      <h1>Connect an agent</h1>
      <Loading query={servers} what="servers">
        {() => (
          <div className="field">
            <label htmlFor="agent-endpoint">Endpoint</label>
            <select id="agent-endpoint" value={chosen.value} onChange={(e) => setTarget(e.target.value)}>
              {endpoints.map((e) => (
                <option key={e.value} value={e.value}>
                  {e.label}
                </option>
              ))}
            </select>
          </div>
        )}
      </Loading>
      <CopyBlock label="URL" text={chosen.url} />
      <details className="panel">
        <summary>Mint a gateway token for this agent</summary>
        {/* Keyed by the endpoint, so a toolset chosen above starts ticked as the token's limit. */}
        <MintForm key={chosen.value} defaultName="Agent" onMinted={setToken} defaultToolsets={chosen.value.startsWith("tls_") ? [chosen.value] : []} />
      </details>
      <p role="status">{token ? "The configurations below carry the token you just minted." : `The configurations below carry ${PLACEHOLDER}: put a gateway token there, or mint one above.`}</p>
      <CopyBlock label="Claude Desktop (mcp-remote)" text={c.claude} />
      <CopyBlock label="VS Code mcp.json" text={c.vscode} />
      <CopyBlock label="SDK (TypeScript)" text={c.sdk} />
    </section>
  );
}
