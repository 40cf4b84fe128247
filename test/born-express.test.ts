// server/http/born-express.ts: node:http makes requests and responses with the Express app's
// prototypes once the app is adopted, so Express's own per-request prototype swap changes nothing.
import { createServer, IncomingMessage, ServerResponse, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, describe, expect, test } from "vitest";
import { bornExpress } from "../server/http/born-express.js";

let server: Server | null = null;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

describe("bornExpress", () => {
  test("when the app is adopted, then each request and response is made with its prototypes before Express sees it, and Express answers as usual", async () => {
    const app = express();
    app.get("/thing", (req, res) => res.json({ path: req.path, query: req.query }));
    const born = bornExpress();
    const seen: { before: [boolean, boolean][] } = { before: [] };
    server = createServer({ IncomingMessage: born.IncomingMessage, ServerResponse: born.ServerResponse }, (req, res) => {
      seen.before.push([Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response]);
      app(req, res);
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/thing?a=1`;

    // Before adopt (the app still loading): node's own prototypes, and Express still serves.
    const early = await fetch(url);
    expect(early.status).toBe(200);
    born.adopt(app);
    const late = await fetch(url);
    expect(late.status).toBe(200);
    expect(await late.json()).toEqual({ path: "/thing", query: { a: "1" } });

    expect(seen.before).toEqual([
      [false, false],
      [true, true],
    ]);
  });

  test("when made by node:http, then they are still its IncomingMessage and ServerResponse", async () => {
    const app = express();
    const born = bornExpress();
    born.adopt(app);
    let kinds: boolean[] = [];
    server = createServer({ IncomingMessage: born.IncomingMessage, ServerResponse: born.ServerResponse }, (req, res) => {
      kinds = [req instanceof IncomingMessage, res instanceof ServerResponse];
      res.end("ok");
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(await res.text()).toBe("ok");
    expect(kinds).toEqual([true, true]);
  });
});
