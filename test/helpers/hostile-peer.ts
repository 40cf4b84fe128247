// A hostile HTTP peer on loopback: answers as its handler says and records everything it
// receives, so a test can prove what did (and did not) reach it, and count open sockets.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { closer, listen } from "./mcp-peers.js";

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface HostilePeer {
  origin: string;
  received: Received[];
  /** Sockets currently open to the peer. */
  openSockets(): Promise<number>;
  /** Waits (up to `ms`) until no socket is open; returns how many still are. */
  settled(ms?: number): Promise<number>;
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export type Handler = (req: Received, res: ServerResponse) => void | Promise<void>;

export async function startHostilePeer(handler: Handler = (_req, res) => void res.end()): Promise<HostilePeer> {
  const received: Received[] = [];
  let current = handler;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const entry = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
    received.push(entry);
    try {
      await current(entry, res);
    } catch {
      res.destroy();
    }
  });
  const port = await listen(server);
  const openSockets = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  return {
    origin: `http://127.0.0.1:${port}`,
    received,
    openSockets,
    async settled(ms = 5000) {
      const until = Date.now() + ms;
      for (;;) {
        const n = await openSockets();
        if (n === 0 || Date.now() > until) return n;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    handle(next) {
      current = next;
    },
    close: closer(server),
  };
}

/** Sends the headers, then one byte a second, forever (until the client goes away). */
export function slowDrip(res: ServerResponse, contentType = "application/json") {
  res.writeHead(200, { "content-type": contentType });
  res.write("{");
  const timer = setInterval(() => res.write(" "), 1000);
  res.on("close", () => clearInterval(timer));
}

/** Sends a JSON body that never ends: an object whose one string grows without bound. */
export function endlessJson(res: ServerResponse, contentType = "application/json") {
  res.writeHead(200, { "content-type": contentType });
  res.write('{"issuer":"');
  const chunk = "x".repeat(64 * 1024);
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once("drain", pump);
  };
  res.on("close", () => res.removeAllListeners("drain"));
  pump();
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}
