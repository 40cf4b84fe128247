// Tool pins of a server: every pinned tool with its status, the held ones first; the chosen pin's
// pinned and current definitions side by side, with Approve (sending the ETag read as If-Match,
// so a definition that changed again since is refused with the API's 412) and Forget.
import { useState } from "react";
import type { components, McpServer } from "../../client/index.js";
import { Busy, Failure, Loading } from "../components/status.js";
import { TableWrap } from "../components/table-wrap.js";
import { useApproveToolPin, useDeleteToolPin, useToolPin, useToolPins } from "../queries.js";
import { when } from "../servers/servers-page.js";
import { DefinitionDiff } from "./definition-diff.js";

type ToolPin = components["schemas"]["ToolPin"];

const ORDER: Record<ToolPin["status"], number> = { changed: 0, missing: 1, pinned: 2 };

export function PinsPanel({ server }: { server: McpServer }) {
  const pins = useToolPins(server.id);
  const [chosen, setChosen] = useState<string | null>(null);
  return (
    <div className="panel">
      <p>
        {server.toolPinning
          ? "Each tool's definition is pinned when first seen. A tool whose definition changed is held: agents neither list nor call it until it is approved here."
          : "Pinning is off for this server (Settings): nothing is pinned or held. Pins made before are kept."}
      </p>
      <Loading query={pins} what="tool pins">
        {(page) => {
          if (page.data.length === 0) return <p>No tool pinned yet: pins are made when the tools are first listed.</p>;
          const sorted = [...page.data].sort((a, b) => ORDER[a.status] - ORDER[b.status] || a.tool.localeCompare(b.tool));
          const held = sorted.filter((p) => p.status === "changed");
          // The first held tool is shown unless the person chose another.
          const shown = chosen && sorted.some((p) => p.tool === chosen) ? chosen : (held[0]?.tool ?? null);
          return (
            <>
              <p role="status">{held.length === 0 ? "No tool is held." : `${held.length} held: ${held.map((p) => p.tool).join(", ")}.`}</p>
              <TableWrap label="Tool pins">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Tool</th>
                      <th scope="col">Status</th>
                      <th scope="col">Changed parts</th>
                      <th scope="col">Pinned</th>
                      <th scope="col">Changed</th>
                      <th scope="col">
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {sorted.map((p) => (
                      <tr key={p.tool} aria-current={p.tool === shown ? "true" : undefined}>
                        <th scope="row">{p.tool}</th>
                        <td>
                          <span className={p.status === "pinned" ? "badge on" : "badge off"}>{p.status === "changed" ? "changed, held" : p.status}</span>
                        </td>
                        <td>{p.changedParts.join(", ") || "—"}</td>
                        <td>{when(p.pinnedAt)}</td>
                        <td>{p.changedAt ? when(p.changedAt) : "—"}</td>
                        <td>
                          <button type="button" onClick={() => setChosen(p.tool)} aria-pressed={p.tool === shown} aria-label={`Compare ${p.tool}`}>
                            Compare
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
              {shown ? <PinDetail key={shown} serverId={server.id} tool={shown} onApproved={() => setChosen(shown)} /> : null}
            </>
          );
        }}
      </Loading>
    </div>
  );
}

function PinDetail({ serverId, tool, onApproved }: { serverId: string; tool: string; onApproved: () => void }) {
  const detail = useToolPin(serverId, tool);
  const approve = useApproveToolPin(serverId);
  const forget = useDeleteToolPin(serverId);
  return (
    <section aria-label={`Pin of ${tool}`} className="pin-detail">
      <h3>{tool}: pinned and current definition</h3>
      <Loading query={detail} what={`the pin of ${tool}`}>
        {({ pin, etag }) => (
          <>
            <p className="muted wrap">
              {pin.status === "changed"
                ? `Changed ${pin.changedAt ? when(pin.changedAt) : ""} in ${pin.changedParts.join(", ")}; held until approved.`
                : pin.status === "missing"
                  ? "The server no longer lists this tool; the pin is kept in case it comes back."
                  : "The definition seen last is the pinned one."}{" "}
              Pinned {when(pin.pinnedAt)}, hash <code>{pin.pinnedHash.slice(0, 12)}</code>
              {pin.currentHash ? (
                <>
                  , current <code>{pin.currentHash.slice(0, 12)}</code>
                </>
              ) : null}
              .
            </p>
            <DefinitionDiff pinned={pin.pinned} current={pin.current ?? null} changed={pin.changedParts} />
            <div className="actions">
              {pin.status === "changed" ? (
                <button type="button" className="primary" disabled={approve.isPending || detail.isFetching} onClick={() => approve.mutate({ tool, etag }, { onSuccess: onApproved })}>
                  Approve
                </button>
              ) : null}
              <button
                type="button"
                className="danger"
                disabled={forget.isPending}
                onClick={() => window.confirm(`Forget the pin of ${tool}? Its definition when next seen is pinned afresh, unreviewed.`) && forget.mutate(tool)}
              >
                Forget pin
              </button>
              {approve.isPending ? <Busy>Approving…</Busy> : null}
              {approve.isSuccess && pin.status === "pinned" ? <span role="status">Approved: agents see {tool} again.</span> : null}
            </div>
            <Failure error={approve.error} title="Not approved" />
            <Failure error={forget.error} title="Not forgotten" />
          </>
        )}
      </Loading>
    </section>
  );
}
