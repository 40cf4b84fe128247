// Activity: the workspace's tool calls per hour by outcome (uPlot, from tool-call-hours), the
// busiest tools, and p50/p95 per tool (tool-stats); both computed by the database.
import { useEffect, useMemo, useRef, useState } from "react";
import { TableWrap } from "../components/table-wrap.js";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { Loading } from "../components/status.js";
import { useConsole } from "../context.js";
import type { components } from "../../client/index.js";
import { useServersPage, useToolCallHours, useToolStats } from "../queries.js";

type ToolCallHour = components["schemas"]["ToolCallHour"];
import { Link } from "../router.js";

const HOUR = 3600_000;
const WINDOWS = [
  { value: 24, label: "last 24 hours" },
  { value: 24 * 7, label: "last 7 days" },
];
// Every outcome of a tool call (ToolCall.outcome in openapi.yaml), with a colour each.
const OUTCOMES: ReadonlyArray<{ key: ToolCallHour["outcome"]; color: string }> = [
  { key: "ok", color: "#1a7f37" },
  { key: "tool_error", color: "#b35900" },
  { key: "error", color: "#c62828" },
  { key: "denied", color: "#6a1b9a" },
  { key: "timeout", color: "#00639b" },
  { key: "upstream_error", color: "#7b1f1f" },
  { key: "cancelled", color: "#5f6368" },
];

type Buckets = { hours: number[]; series: Array<{ key: string; color: string; counts: number[] }> };

/** Every hour of the window on the x axis, one series per outcome that occurred (counted by the database). */
function bucket(rows: ToolCallHour[], sinceMs: number, hours: number): Buckets {
  const start = Math.floor(sinceMs / HOUR) * HOUR;
  const xs = Array.from({ length: hours + 1 }, (_, i) => (start + i * HOUR) / 1000);
  const present = OUTCOMES.filter((o) => rows.some((r) => r.outcome === o.key));
  const series = (present.length > 0 ? present : OUTCOMES.slice(0, 1)).map((o) => ({ ...o, counts: xs.map(() => 0) }));
  for (const r of rows) {
    const i = Math.round((Date.parse(r.hour) - start) / HOUR);
    const s = series.find((x) => x.key === r.outcome);
    if (s && i >= 0 && i <= hours) s.counts[i] += r.calls;
  }
  return { hours: xs, series };
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
        series: [{}, ...data.series.map((o) => ({ label: o.key, stroke: o.color, fill: `${o.color}22`, width: 2, paths: uPlot.paths.stepped?.({ align: 1 }) }))],
        axes: [{}, { label: "calls per hour" }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      [data.hours, ...data.series.map((o) => o.counts)],
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
  const calls = useToolCallHours(workspace, since);
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
        {({ data: rows }) => {
          const data = bucket(rows, Date.parse(since), hours);
          const total = rows.reduce((n, r) => n + r.calls, 0);
          const failed = rows.reduce((n, r) => n + (r.outcome === "ok" ? 0 : r.calls), 0);
          const byOutcome = OUTCOMES.map((o) => [o.key, rows.filter((r) => r.outcome === o.key).reduce((n, r) => n + r.calls, 0)] as const).filter(([, n]) => n > 0);
          return (
            <>
              <Chart data={data} label={`Tool calls per hour, ${total} in the window, ${failed} not ok`} />
              <p className="muted">
                {total} {total === 1 ? "call" : "calls"}{byOutcome.length > 0 ? `: ${byOutcome.map(([k, n]) => `${n} ${k}`).join(", ")}` : ""}.
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
