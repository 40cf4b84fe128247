// A pinned and a current tool definition side by side, part by part, with the lines that differ
// marked (a line diff of each part's pretty-printed JSON).
import type { components } from "../../client/index.js";

type ToolDefinition = components["schemas"]["ToolDefinition"];
type Part = components["schemas"]["ToolDefinitionPart"];

const PARTS: readonly Part[] = ["title", "description", "inputSchema", "outputSchema", "annotations"];

type Line = { text: string; kind: "same" | "del" | "ins" };

function linesOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (typeof value === "string" ? value : JSON.stringify(value, null, 2)).split("\n");
}

/** Longest common subsequence of lines; past 400 lines a side, every line is marked changed (a definition that long is read, not diffed). */
export function diffLines(a: string[], b: string[]): { left: Line[]; right: Line[] } {
  if (a.length > 400 || b.length > 400) return { left: a.map((text) => ({ text, kind: "del" })), right: b.map((text) => ({ text, kind: "ins" })) };
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const left: Line[] = [];
  const right: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      left.push({ text: a[i++], kind: "same" });
      right.push({ text: b[j++], kind: "same" });
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) left.push({ text: a[i++], kind: "del" });
    else right.push({ text: b[j++], kind: "ins" });
  }
  while (i < n) left.push({ text: a[i++], kind: "del" });
  while (j < m) right.push({ text: b[j++], kind: "ins" });
  return { left, right };
}

function Side({ lines, label }: { lines: Line[]; label: string }) {
  return (
    <figure className="diff-side">
      <figcaption>{label}</figcaption>
      {lines.length === 0 ? (
        <p className="muted">(none)</p>
      ) : (
        <pre tabIndex={0} aria-label={label}>
          {lines.map((l, k) => (
            <span key={k} className={`diff-line ${l.kind}`}>
              {l.kind === "del" ? <span className="sr-only">removed: </span> : l.kind === "ins" ? <span className="sr-only">added: </span> : null}
              {l.kind === "del" ? "− " : l.kind === "ins" ? "+ " : "  "}
              {l.text}
              {"\n"}
            </span>
          ))}
        </pre>
      )}
    </figure>
  );
}

export function DefinitionDiff({ pinned, current, changed }: { pinned: ToolDefinition; current: ToolDefinition | null; changed: readonly Part[] }) {
  const parts = PARTS.filter((p) => pinned[p] != null || current?.[p] != null || changed.includes(p));
  return (
    <div className="definition-diff">
      {parts.map((part) => {
        const { left, right } = diffLines(linesOf(pinned[part]), current ? linesOf(current[part]) : []);
        const isChanged = changed.includes(part);
        return (
          <section key={part} aria-label={`${part}${isChanged ? " (changed)" : ""}`}>
            <h4>
              {part} {isChanged ? <span className="badge status-error">changed</span> : <span className="muted">(same)</span>}
            </h4>
            <div className="diff">
              <Side lines={left} label={`Pinned ${part}`} />
              <Side lines={current ? right : []} label={`Current ${part}`} />
            </div>
          </section>
        );
      })}
    </div>
  );
}
