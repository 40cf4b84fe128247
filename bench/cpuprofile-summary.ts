// Summarises a V8 .cpuprofile (node --cpu-prof): self time by package, by file and by
// function, and time attributed to the first package or repo file up the stack (so that
// JSON.stringify called by Express counts as Express), and inclusive time (itself and what it
// called) of the repo's own functions.
//   tsx bench/cpuprofile-summary.ts <file.cpuprofile> [--from <µs>] [--to <µs>] [--top 25]
// --from/--to are monotonic clock microseconds (process.hrtime), V8's profile clock on Linux.
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "./lib.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber?: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const REPO_URL = pathToFileURL(REPO_ROOT).href;

/** Who a frame belongs to: an npm package, a repo file, Node's core, V8 builtins, or a VM state. */
export function ownerOf(frame: CallFrame): { owner: string; kind: "package" | "repo" | "node" | "native" | "vm" } {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith("(")) return { owner: functionName, kind: "vm" }; // (program), (garbage collector), (idle)
    return { owner: `native ${functionName || "(anonymous)"}`, kind: "native" };
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return { owner: rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0], kind: "package" };
  }
  if (url.startsWith("node:")) return { owner: "node core", kind: "node" };
  if (url.startsWith(REPO_URL)) return { owner: `repo ${url.slice(REPO_URL.length).split("/")[0]}/`, kind: "repo" };
  return { owner: url, kind: "package" };
}

function fileOf(frame: CallFrame): string {
  const { url } = frame;
  if (!url) return ownerOf(frame).owner;
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) return url.slice(nm + "/node_modules/".length);
  if (url.startsWith(REPO_URL)) return url.slice(REPO_URL.length);
  return url;
}

export interface Summary {
  totalMs: number;
  idleMs: number;
  selfByOwner: [string, number][];
  attributedByOwner: [string, number][];
  selfByFile: [string, number][];
  selfByFunction: [string, number][];
  /** Repo functions' inclusive time: every sample with the function anywhere on its stack, once. */
  inclusiveByRepoFunction: [string, number][];
}

/**
 * The server runs bundled (scripts/bundle-server.ts): a frame in a dist/ file with a source
 * map beside it is given the file and line it was bundled from, so packages and repo files
 * are told apart as before.
 */
function throughSourceMaps(profile: CpuProfile): void {
  const maps = new Map<string, SourceMap | null>();
  const mapOf = (url: string) => {
    if (!maps.has(url)) {
      const file = `${fileURLToPath(url)}.map`;
      maps.set(url, existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, "utf8"))) : null);
    }
    return maps.get(url)!;
  };
  for (const node of profile.nodes) {
    const f = node.callFrame;
    if (!f.url.startsWith(`${REPO_URL}/dist/`) && !f.url.startsWith(`${REPO_URL}dist/`)) continue;
    const map = mapOf(f.url);
    const entry = map?.findEntry(f.lineNumber, f.columnNumber ?? 0) as { originalSource?: string; originalLine?: number } | undefined;
    if (!entry?.originalSource) continue;
    node.callFrame = { ...f, url: new URL(entry.originalSource, f.url).href, lineNumber: entry.originalLine ?? f.lineNumber };
  }
}

export function summarize(profile: CpuProfile, window: { from?: number; to?: number } = {}): Summary {
  throughSourceMaps(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Attribution: the sampled frame if it is a package or repo file, else the first such caller.
  const attributed = new Map<number, string>();
  const attribute = (id: number): string => {
    const cached = attributed.get(id);
    if (cached) return cached;
    const node = byId.get(id)!;
    const own = ownerOf(node.callFrame);
    let result: string;
    if (own.kind === "package" || own.kind === "repo" || own.kind === "vm") result = own.owner;
    else {
      const p = parent.get(id);
      const up = p === undefined ? null : attribute(p);
      result = up === null || up.startsWith("(") ? `${own.owner} (no caller)` : up;
    }
    attributed.set(id, result);
    return result;
  };

  const fnKey = (f: CallFrame) => `${f.functionName || "(anonymous)"}  ${fileOf(f)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
  // The distinct repo functions on a node's stack (itself and its callers).
  const repoStacks = new Map<number, string[]>();
  const repoStack = (id: number): string[] => {
    const cached = repoStacks.get(id);
    if (cached) return cached;
    const p = parent.get(id);
    const up = p === undefined ? [] : repoStack(p);
    const f = byId.get(id)!.callFrame;
    const key = ownerOf(f).kind === "repo" ? fnKey(f) : null;
    const result = key === null || up.includes(key) ? up : [...up, key];
    repoStacks.set(id, result);
    return result;
  };

  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const inclusive = new Map<string, number>();
  const selfOwner = new Map<string, number>();
  const attrOwner = new Map<string, number>();
  const selfFile = new Map<string, number>();
  const selfFn = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (window.from !== undefined && t < window.from) continue;
    if (window.to !== undefined && t > window.to) break;
    // A sample's time is the gap to the next one.
    const dt = (i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0) / 1000;
    const node = byId.get(profile.samples[i])!;
    const f = node.callFrame;
    if (f.functionName === "(idle)") {
      idle += dt;
      continue;
    }
    total += dt;
    add(selfOwner, ownerOf(f).owner, dt);
    add(attrOwner, attribute(node.id), dt);
    add(selfFile, fileOf(f), dt);
    add(selfFn, fnKey(f), dt);
    for (const k of repoStack(node.id)) add(inclusive, k, dt);
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total,
    idleMs: idle,
    selfByOwner: sorted(selfOwner),
    attributedByOwner: sorted(attrOwner),
    selfByFile: sorted(selfFile),
    selfByFunction: sorted(selfFn),
    inclusiveByRepoFunction: sorted(inclusive),
  };
}

export function printSummary(s: Summary, top = 25, perRequestDivisor?: number) {
  const pct = (v: number) => `${((100 * v) / s.totalMs).toFixed(1).padStart(5)}%`;
  const per = (v: number) => (perRequestDivisor ? `${((v * 1000) / perRequestDivisor).toFixed(0).padStart(6)} µs/req` : "");
  const section = (title: string, rows: [string, number][], n: number) => {
    console.log(`\n${title}`);
    for (const [k, v] of rows.slice(0, n)) console.log(`  ${pct(v)}  ${v.toFixed(0).padStart(7)} ms ${per(v)}  ${k}`);
  };
  console.log(`busy ${s.totalMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms`);
  section("self time by package / area", s.selfByOwner, top);
  section("time attributed to the first package or repo file up the stack (core and builtins count for their caller)", s.attributedByOwner, top);
  section("self time by file", s.selfByFile, top);
  section("self time by function", s.selfByFunction, top);
  section("inclusive time of the repo's functions (with what they called)", s.inclusiveByRepoFunction, top);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: "string" }, to: { type: "string" }, top: { type: "string" }, requests: { type: "string" } },
  });
  if (positionals.length !== 1) {
    console.error("usage: tsx bench/cpuprofile-summary.ts <file.cpuprofile> [--from µs] [--to µs] [--top N] [--requests N]");
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(positionals[0], "utf8")) as CpuProfile;
  const s = summarize(profile, { from: values.from ? Number(values.from) : undefined, to: values.to ? Number(values.to) : undefined });
  printSummary(s, values.top ? Number(values.top) : 25, values.requests ? Number(values.requests) : undefined);
}
