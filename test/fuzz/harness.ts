// What the fuzz and soak tests share: raw HTTP with full control over what is sent, a
// snapshot of the store's tables, and readable accounts of an exchange.
import http from "node:http";
import type { ContractResponse } from "../contract/validate-response.js";
import type { TestServer } from "../helpers/server.js";

export interface WireRequest {
  method: string;
  /** Path and query, already encoded. */
  target: string;
  headers: Record<string, string>;
  body?: string;
}

export interface WireResponse extends ContractResponse {
  ms: number;
}

/** Thrown when Node refuses to put the request on the wire (a CR/LF in a header, say). */
export class Unsendable extends Error {}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

export async function send(baseUrl: string, req: WireRequest, timeoutMs = 15_000): Promise<WireResponse> {
  try {
    return await sendOnce(baseUrl, req, timeoutMs);
  } catch (err) {
    // A kept-alive socket the server closed as idle just as it was reused: send again, once
    // (Node's documented keep-alive race: https://nodejs.org/api/http.html#requestreusedsocket).
    if ((err as { reusedSocket?: boolean }).reusedSocket && (err as NodeJS.ErrnoException).code === "ECONNRESET") return sendOnce(baseUrl, req, timeoutMs);
    throw err;
  }
}

function sendOnce(baseUrl: string, req: WireRequest, timeoutMs: number): Promise<WireResponse> {
  const started = performance.now();
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let request: http.ClientRequest;
    try {
      request = http.request({ host: url.hostname, port: url.port, method: req.method, path: req.target, headers: req.headers, agent, timeout: timeoutMs });
    } catch (err) {
      reject(new Unsendable(String((err as Error).message)));
      return;
    }
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", (err) => reject(Object.assign(err, { reusedSocket: request.reusedSocket })));
    request.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
        }
        let json: unknown;
        try {
          json = text === "" ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers, text, json, ms: performance.now() - started });
      });
    });
    try {
      request.end(req.body);
    } catch (err) {
      request.destroy();
      reject(new Unsendable(String((err as Error).message)));
    }
  });
}

// Tables a refused request may legitimately change: the rate-limit counters.
const VOLATILE_TABLES = new Set(["rate_limits", "knex_migrations", "knex_migrations_lock"]);

/** Every table of the store but the volatile ones, rows sorted, as JSON per table. */
export async function storeSnapshot(srv: TestServer): Promise<Record<string, string[]>> {
  const knex = srv.services.db.knex;
  const sqlite = srv.services.db.dialect === "sqlite";
  const names: string[] = sqlite
    ? (await knex.raw("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")).map((r: { name: string }) => r.name)
    : (await knex.raw("select table_name as name from information_schema.tables where table_schema = current_schema()")).rows.map((r: { name: string }) => r.name);
  const out: Record<string, string[]> = {};
  for (const name of names.filter((n) => !VOLATILE_TABLES.has(n)).sort()) {
    const rows = await knex(name).select();
    out[name] = rows.map((r: unknown) => JSON.stringify(r)).sort();
  }
  return out;
}

/** What changed between two snapshots, briefly; "" when nothing did. */
export function snapshotDiff(before: Record<string, string[]>, after: Record<string, string[]>): string {
  const lines: string[] = [];
  for (const table of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = new Set(before[table] ?? []);
    const b = new Set(after[table] ?? []);
    const removed = [...a].filter((r) => !b.has(r));
    const added = [...b].filter((r) => !a.has(r));
    if (removed.length === 0 && added.length === 0) continue;
    lines.push(`${table}: ${removed.length} row(s) gone, ${added.length} new or changed`);
    for (const r of removed.slice(0, 2)) lines.push(`  - ${excerpt(r, 400)}`);
    for (const r of added.slice(0, 2)) lines.push(`  + ${excerpt(r, 400)}`);
  }
  return lines.join("\n");
}

export function excerpt(text: string, max = 600): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

/** A request and its answer, as a reader wants them in a failure message. */
export function describeExchange(req: WireRequest, res: WireResponse | null): string {
  const headers = Object.entries(req.headers)
    .map(([k, v]) => `${k}: ${k.toLowerCase() === "authorization" ? v.replace(/(mcpk_[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+/, "$1…") : excerpt(v, 200)}`)
    .join("\n  ");
  const lines = [`request:  ${req.method} ${excerpt(req.target, 400)}`, `  ${headers}`];
  if (req.body !== undefined) lines.push(`  body: ${excerpt(req.body)}`);
  if (res) {
    lines.push(`response: ${res.status} ${res.headers.get("content-type") ?? ""}`);
    if (res.text) lines.push(`  body: ${excerpt(res.text)}`);
  }
  return lines.join("\n");
}

/** Counts per key and status, printed as one line per key. */
export class Tally {
  private readonly rows = new Map<string, Map<string, number>>();

  add(key: string, column: string | number, n = 1) {
    const row = this.rows.get(key) ?? new Map<string, number>();
    row.set(String(column), (row.get(String(column)) ?? 0) + n);
    this.rows.set(key, row);
  }

  get(key: string, column: string | number): number {
    return this.rows.get(key)?.get(String(column)) ?? 0;
  }

  total(key: string, columns?: (c: string) => boolean): number {
    let n = 0;
    for (const [c, v] of this.rows.get(key) ?? []) if (!columns || columns(c)) n += v;
    return n;
  }

  format(title: string): string {
    const lines = [title];
    for (const [key, row] of this.rows) {
      const cells = [...row].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })).map(([c, v]) => `${c}×${v}`);
      lines.push(`  ${key.padEnd(28)} ${cells.join("  ")}`);
    }
    return lines.join("\n");
  }
}
