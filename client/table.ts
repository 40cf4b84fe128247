// Plain-text tables for the CLI: a header row of column names, then one aligned row per record.
function cell(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value).replace(/[\r\n\t]+/g, " ");
}

export function table<T extends object>(rows: T[], columns: readonly (keyof T & string)[]): string {
  const grid = [columns.map((c) => c.replace(/[A-Z]/g, (m) => `_${m}`).toUpperCase()), ...rows.map((r) => columns.map((c) => cell(r[c])))];
  const widths = columns.map((_, i) => Math.max(...grid.map((line) => line[i].length)));
  return grid.map((line) => line.map((v, i) => (i === line.length - 1 ? v : v.padEnd(widths[i]))).join("  ")).join("\n") + "\n";
}

/** One record as `key  value` lines. */
export function record(value: object): string {
  const entries = Object.entries(value);
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`).join("\n") + "\n";
}
