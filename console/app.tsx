// The shell: sign-in gate, header with navigation, the Workspace select and Sign out, and the routes.
import { useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useState, type ReactNode } from "react";
import { api, session } from "./api.js";
import { Busy, Failure } from "./components/status.js";
import { Ctx } from "./context.js";
import { useMe } from "./queries.js";
import { Link, navigate, useLocation } from "./router.js";
import { ConnectAgentPage } from "./connect-agent/connect-agent-page.js";
import { NewServerPage } from "./new-server/new-server-page.js";
import { ServerPage } from "./server/server-page.js";
import { ServersPage } from "./servers/servers-page.js";
import { SignInPage } from "./sign-in/sign-in-page.js";
import { TokensPage } from "./tokens/tokens-page.js";
import { NewToolsetPage, ToolsetPage, ToolsetsPage } from "./toolsets/toolsets-page.js";

// The chart library is loaded only when Activity is opened, so the first page stays small.
const ActivityPage = lazy(() => import("./activity/activity-page.js").then((m) => ({ default: m.ActivityPage })));

const NAV: Array<[path: string, label: string]> = [
  ["/servers", "Servers"],
  ["/toolsets", "Toolsets"],
  ["/tokens", "Tokens"],
  ["/connect-agent", "Connect an agent"],
  ["/activity", "Activity"],
];

export function App() {
  const [token, setToken] = useState(session.token());
  const me = useMe(token);
  const { path } = useLocation();
  const qc = useQueryClient();

  const signOut = async () => {
    // Ends the browser session server-side too; the token itself stays valid (revoke it on Tokens).
    await api().DELETE("/api/session").catch(() => undefined);
    session.clear();
    qc.clear();
    setToken(null);
    navigate("/sign-in", { replace: true });
  };

  useEffect(() => {
    if (!token && path !== "/sign-in") navigate("/sign-in", { replace: true });
  }, [token, path]);

  if (!token || path === "/sign-in") {
    return (
      <Shell>
        <SignInPage
          expired={me.error}
          onSignedIn={(t) => {
            setToken(t);
            navigate("/servers", { replace: true });
          }}
        />
      </Shell>
    );
  }
  if (me.error) {
    return (
      <Shell>
        <Failure error={me.error} title="Could not sign in" />
        <p>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </p>
      </Shell>
    );
  }
  if (!me.data) return <Shell><Busy>Signing in…</Busy></Shell>;
  return <SignedIn me={me.data} path={path} onSignOut={signOut} />;
}

function Shell({ children, header }: { children: ReactNode; header?: ReactNode }) {
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">
          <img src="/console/favicon.svg" alt="" width={24} height={24} /> MCP Servers
        </span>
        {header}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

function SignedIn({ me, path, onSignOut }: { me: NonNullable<ReturnType<typeof useMe>["data"]>; path: string; onSignOut: () => void }) {
  const stored = session.workspace();
  const [workspace, setWorkspaceState] = useState(stored && me.workspaces.includes(stored) ? stored : (me.workspaces[0] ?? ""));
  const setWorkspace = (ws: string) => {
    session.setWorkspace(ws);
    setWorkspaceState(ws);
    if (path.startsWith("/servers/")) navigate("/servers");
    if (path.startsWith("/toolsets/")) navigate("/toolsets");
  };
  useEffect(() => {
    if (path === "/" || path === "") navigate("/servers", { replace: true });
  }, [path]);

  const header = (
    <>
      <nav aria-label="Console">
        <ul>
          {NAV.map(([to, label]) => (
            <li key={to}>
              <Link to={to} aria-current={path === to || path.startsWith(`${to}/`) ? "page" : undefined}>
                {label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <div className="who">
        {me.workspaces.length > 1 ? (
          <label>
            Workspace{" "}
            <select value={workspace} onChange={(e) => setWorkspace(e.target.value)}>
              {me.workspaces.map((ws) => (
                <option key={ws}>{ws}</option>
              ))}
            </select>
          </label>
        ) : (
          <span className="muted">{workspace}</span>
        )}
        <span className="muted" title={`token ${me.tokenId}`}>
          {me.userId}
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </>
  );

  let page: ReactNode;
  const serverMatch = /^\/servers\/(mcp_[0-9A-Za-z]+)$/.exec(path);
  const toolsetMatch = /^\/toolsets\/(tls_[0-9A-Za-z]+)$/.exec(path);
  if (path === "/servers" || path === "/" || path === "") page = <ServersPage />;
  else if (path === "/servers/new") page = <NewServerPage />;
  else if (serverMatch) page = <ServerPage id={serverMatch[1]} />;
  else if (path === "/toolsets") page = <ToolsetsPage />;
  else if (path === "/toolsets/new") page = <NewToolsetPage />;
  else if (toolsetMatch) page = <ToolsetPage id={toolsetMatch[1]} />;
  else if (path === "/tokens") page = <TokensPage />;
  else if (path === "/connect-agent") page = <ConnectAgentPage />;
  else if (path === "/activity") page = <Suspense fallback={<Busy>Loading Activity…</Busy>}><ActivityPage /></Suspense>;
  else page = <><h1>Not found</h1><p>There is no console page at {path}. <Link to="/servers">Servers</Link></p></>;

  return (
    <Ctx.Provider value={{ me, workspace, setWorkspace }}>
      <Shell header={header}>
        {workspace ? page : <p>This token covers no workspace.</p>}
      </Shell>
    </Ctx.Provider>
  );
}
