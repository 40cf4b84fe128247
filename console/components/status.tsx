// Visible progress and failure for anything that talks to the server.
import type { ReactNode } from "react";
import { messageOf, ProblemError } from "../api.js";

export function Failure({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const fields = error instanceof ProblemError ? error.errors : [];
  return (
    <div className="failure" role="alert">
      <strong>{title ?? "Failed"}:</strong> {messageOf(error)}
      {fields.length > 0 ? (
        <ul>
          {fields.map((f) => (
            <li key={f.path + f.message}>
              <code>{f.path}</code> {f.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function Busy({ children }: { children: ReactNode }) {
  return (
    <p className="busy" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {children}
    </p>
  );
}

export function Loading<T>({ query, children, what }: { query: { isPending: boolean; error: unknown; data?: T }; what: string; children: (data: T) => ReactNode }) {
  if (query.error) return <Failure error={query.error} title={`Could not load ${what}`} />;
  if (query.isPending || query.data === undefined) return <Busy>Loading {what}…</Busy>;
  return <>{children(query.data)}</>;
}
