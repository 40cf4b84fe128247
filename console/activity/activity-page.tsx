// Activity: the workspace's tool calls per hour by outcome (uPlot), the busiest tools, and
// p50/p95 per tool (tool-stats, computed by the database).
import { useEffect, useMemo, useRef, useState } from "react";
import { TableWrap } from "../components/table-wrap.js";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { Loading } from "../components/status.js";
import { useConsole } from "../context.js";
import { useServersPage, useToolCalls, useToolStats } from "../queries.js";
import { Link } from "../router.js";

const HOUR = 3600_000;
const WINDOWS = [
  { value: 24, label: "last 24 hours" },
  { value: 24 * 7, label: "last 7 days" },
];
const OUTCOMES = [
  { key: "ok", label: "ok", color: "#1a7f37" },
  { key: "failed", label: "failed", color: "#c62828" },
] as const;

type Buckets = { hours: number[]; ok: number[]; failed: number[] };

function bucket(calls: { at: string; toolCall?: { outcome: string } }[], sinceMs: number, hours: number): Buckets {
  const start = Math.floor(sinceMs / HOUR) * HOUR;
  const out: Buckets = { hours: [], ok: [], failed: [] };
  for (let i = 0; i <= hours; i++) {
    out.hours.push((start + i * HOUR) / 1000);
    out.ok.push(0);
    out.failed.push(0);
  }
  for (const c of calls) {
    const i = Math.floor((Date.parse(c.at) - start) / HOUR);
    if (i < 0 || i > hours) continue;
    if (c.toolCall?.outcome === "ok") out.ok[i]++;
    else out.failed[i]++;
  }
  return out;
}

function Chart({ data, label }: { data: Buckets; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current!;
    const width = () => Math.max(280, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 240,
        series: [{}, ...OUTCOMES.map((o) => ({ label: o.label, stroke: o.color, fill: `${o.color}22`, width: 2, paths: uPlot.paths.stepped?.({ align: 1 }) }))],
        axes: [{}, { label: "calls per hour" }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      [data.hours, data.ok, data.failed],
      el,
    );
    const onResize = () => plot.setSize({ width: width(), height: 240 });
    window.addEventListener("resize", onResize);
    return () => {
      window.removeEventListener("resize", onResize);
      plot.destroy();
    };
  }, [data]);
  return <div ref={box} className="chart" role="img" aria-label={label} />;
}

export function ActivityPage() {
  const { workspace } = useConsole();
  const [hours, setHours] = useState(24);
  // Rounded to the minute, so the query key (and the cache) is stable while the page is open.
  const since = useMemo(() => new Date(Math.floor((Date.now() - hours * HOUR) / 60_000) * 60_000).toISOString(), [hours]);
  const stats = useToolStats(workspace, since);
  const calls = useToolCalls(workspace, since);
  const servers = useServersPage(workspace, undefined, 100);
  const nameOf = (id: string) => servers.data?.data.find((s) => s.id === id)?.name ?? id;
  return (
    <section>
      <h1>Activity</h1>
      <div className="field inline">
        <label htmlFor="activity-window">Window</label>
        <select id="activity-window" value={hours} onChange={(e) => setHours(Number(e.target.value))}>
          {WINDOWS.map((w) => (
            <option key={w.value} value={w.value}>
              {w.label}
            </option>
          ))}
        </select>
      </div>
      <h2>Tool calls per hour</h2>
      <Loading query={calls} what="tool calls">
        {({ rows, truncated }) => {
          const data = bucket(rows, Date.parse(since), hours);
          const total = rows.length;
          const failed = rows.filter((r) => r.toolCall?.outcome !== "ok").length;
          return (
            <>
              <Chart data={data} label={`Tool calls per hour, ${total} in the window, ${failed} failed`} />
              <p className="muted">
                {total} calls{truncated ? " (the most recent 1000 are charted)" : ""}, {failed} failed.
              </p>
            </>
          );
        }}
      </Loading>
      <h2>Busiest tools</h2>
      <Loading query={stats} what="tool statistics">
        {(s) =>
          s.data.length === 0 ? (
            <p>No tool calls in this window.</p>
          ) : (
            <TableWrap label="Busiest tools">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Tool</th>
                    <th scope="col">Server</th>
                    <th scope="col">Calls</th>
                    <th scope="col">Errors</th>
                    <th scope="col">p50 ms</th>
                    <th scope="col">p95 ms</th>
                  </tr>
                </thead>
                <tbody>
                  {s.data.map((t) => (
                    <tr key={`${t.serverId}/${t.tool}`}>
                      <th scope="row">{t.tool}</th>
                      <td>
                        <Link to={`/servers/${t.serverId}`}>{nameOf(t.serverId)}</Link>
                      </td>
                      <td>{t.calls}</td>
                      <td>{t.errors}</td>
                      <td>{t.p50Ms}</td>
                      <td>{t.p95Ms}</td>
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
