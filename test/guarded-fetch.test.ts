// Every peer here listens on loopback; host names resolve through an injected lookup, never DNS.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { classifyAddress } from "../server/outbound/address-guard.js";
import { createGuardedFetch, describeOutboundError, LiteCancel, OutboundBlockedError, type LookupFn } from "../server/outbound/guarded-fetch.js";

interface Peer {
  origin: string;
  port: number;
  requests: IncomingMessage[];
  server: Server;
}

const running: { close(): void }[] = [];

afterEach(() => {
  for (const server of running.splice(0)) server.close();
});

async function startPeer(host: string, handle: (req: IncomingMessage, res: ServerResponse) => void = okHandler): Promise<Peer | null> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handle(req, res);
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(0, host, () => resolve(true));
  });
  if (!listening) return null;
  running.push({
    close() {
      server.closeAllConnections();
      server.close();
    },
  });
  const { port } = server.address() as AddressInfo;
  return { origin: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, port, requests, server };
}

async function mustStartPeer(host: string, handle?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Peer> {
  const peer = await startPeer(host, handle);
  if (!peer) throw new Error(`cannot listen on ${host}`);
  return peer;
}

function okHandler(_req: IncomingMessage, res: ServerResponse) {
  res.end("ok");
}

function redirectTo(location: (req: IncomingMessage) => string, status = 302) {
  return (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(status, { location: location(req) }).end();
  };
}

const fakeDns = (names: Record<string, string[]>): LookupFn => {
  return async (hostname) => {
    const addresses = names[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
};

// Lets one loopback address stand in for "the public internet" so redirects can be tested locally.
const only127002IsPublic = (ip: string) => (ip === "127.0.0.2" ? { allowed: true } : classifyAddress(ip));

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the fetch to fail");
}

describe("guarded fetch, private network refused", () => {
  const guarded = () => createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2_000 });

  test.for([
    ["127.0.0.1", "http://127.0.0.1:PORT/", "refused to connect to 127.0.0.1: loopback address"],
    ["127.0.0.1", "http://localhost:PORT/", "refused to connect to localhost (127.0.0.1): loopback address"],
    ["127.0.0.1", "http://2130706433:PORT/", "refused to connect to 127.0.0.1: loopback address"],
    ["127.0.0.1", "http://0x7f.1:PORT/", "refused to connect to 127.0.0.1: loopback address"],
    ["::1", "http://[::1]:PORT/", "refused to connect to ::1: loopback address"],
    ["::1", "http://[::ffff:127.0.0.1]:PORT/", "refused to connect to ::ffff:7f00:1: loopback address"],
  ])("when the peer listens on %s and is fetched as %s, then the fetch is refused and nothing arrives", async ([host, url, message], ctx) => {
    const peer = await startPeer(host);
    if (!peer) return ctx.skip(`cannot listen on ${host}`);
    const err = await rejectionOf(guarded()(url.replace("PORT", String(peer.port))));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect((err as Error).message).toBe(`${message}; setting MCP_API_ALLOW_PRIVATE_NETWORK=true lifts this guard`);
    expect(describeOutboundError(err).class).toBe("blocked");
    expect(peer.requests).toHaveLength(0);
  });

  test("when a host name resolves to loopback, then the resolved address is checked and nothing arrives", async () => {
    const peer = await mustStartPeer("127.0.0.1");
    const fetch = createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2_000, lookup: fakeDns({ "rebind.test": ["127.0.0.1"] }) });
    const err = await rejectionOf(fetch(`http://rebind.test:${peer.port}/`));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect((err as OutboundBlockedError).reason).toBe("loopback address");
    expect(peer.requests).toHaveLength(0);
  });

  test("when a host name resolves to an allowed and a refused address, then the fetch is refused", async () => {
    const peer = await mustStartPeer("127.0.0.2");
    const fetch = createGuardedFetch({
      allowPrivateNetwork: false,
      timeoutMs: 2_000,
      classify: only127002IsPublic,
      lookup: fakeDns({ "mixed.test": ["127.0.0.2", "127.0.0.1"] }),
    });
    const err = await rejectionOf(fetch(`http://mixed.test:${peer.port}/`));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect(peer.requests).toHaveLength(0);
  });

  test.each(["file:///etc/passwd", "ftp://127.0.0.2/", "data:text/plain,hi"])("when the URL is %s, then the scheme is refused", async (url) => {
    const err = await rejectionOf(createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 })(url));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect((err as OutboundBlockedError).reason).toBe("only http and https are allowed");
  });
});

describe("guarded fetch, redirects", () => {
  test("when private networks are allowed, then a GET succeeds", async () => {
    const peer = await mustStartPeer("127.0.0.1");
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 })(`${peer.origin}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
    expect(peer.requests.map((r) => r.url)).toEqual(["/hello"]);
  });

  test("when a redirect chain is as long as the cap, then it is followed to the end", async () => {
    const peer = await mustStartPeer("127.0.0.1", (req, res) => {
      const n = Number(new URL(req.url!, "http://peer").pathname.split("/")[2]);
      if (n === 0) res.end("arrived");
      else redirectTo(() => `/hop/${n - 1}`)(req, res);
    });
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000, maxRedirects: 3 });

    const res = await fetch(`${peer.origin}/hop/3`);
    expect(await res.text()).toBe("arrived");
    expect(peer.requests).toHaveLength(4);
  });

  test("when a redirect chain is longer than the cap, then the fetch fails before the next hop", async () => {
    const peer = await mustStartPeer("127.0.0.1", (req, res) => {
      const n = Number(new URL(req.url!, "http://peer").pathname.split("/")[2]);
      if (n === 0) res.end("arrived");
      else redirectTo(() => `/hop/${n - 1}?secret=1`)(req, res);
    });
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000, maxRedirects: 3 });

    const err = await rejectionOf(fetch(`${peer.origin}/hop/4`));
    expect(describeOutboundError(err)).toEqual({
      class: "http",
      message: `too many redirects (more than 3) from ${peer.origin}/hop/1`,
    });
    expect(peer.requests).toHaveLength(4);
  });

  test.each([
    "http://127.0.0.1:PORT/admin",
    "http://internal.test:PORT/admin",
    "http://0177.0.0.1:PORT/admin",
  ])("when an allowed origin redirects to %s, then the hop is refused and nothing arrives there", async (target) => {
    const internal = await mustStartPeer("127.0.0.1");
    const publicPeer = await mustStartPeer("127.0.0.2", redirectTo(() => target.replace("PORT", String(internal.port))));
    const fetch = createGuardedFetch({
      allowPrivateNetwork: false,
      timeoutMs: 2_000,
      classify: only127002IsPublic,
      lookup: fakeDns({ "internal.test": ["127.0.0.1"] }),
    });

    const err = await rejectionOf(fetch(`${publicPeer.origin}/start`));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect(publicPeer.requests).toHaveLength(1);
    expect(internal.requests).toHaveLength(0);
  });

  test("when a redirect points at a file: URL, then it is refused", async () => {
    const peer = await mustStartPeer("127.0.0.1", redirectTo(() => "file:///etc/passwd"));
    const err = await rejectionOf(createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 })(`${peer.origin}/`));
    expect(err).toBeInstanceOf(OutboundBlockedError);
  });

  test("when a redirect crosses origins, then credentials are not forwarded", async () => {
    const second = await mustStartPeer("127.0.0.1");
    const first = await mustStartPeer("127.0.0.1", redirectTo(() => `${second.origin}/next`));
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 })(`${first.origin}/`, {
      headers: { authorization: "Bearer secret", "x-trace": "1" },
    });
    expect(res.status).toBe(200);
    expect(first.requests[0].headers.authorization).toBe("Bearer secret");
    expect(second.requests[0].headers.authorization).toBeUndefined();
    expect(second.requests[0].headers["x-trace"]).toBe("1");
  });

  test("when a POST is answered with 303, then the next hop is a GET without the body", async () => {
    const bodies: string[] = [];
    const peer = await mustStartPeer("127.0.0.1", async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      bodies.push(body);
      if (req.url === "/form") redirectTo(() => "/done", 303)(req, res);
      else res.end("done");
    });
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 })(`${peer.origin}/form`, { method: "POST", body: "a=1" });
    expect(await res.text()).toBe("done");
    expect(peer.requests.map((r) => r.method)).toEqual(["POST", "GET"]);
    expect(bodies).toEqual(["a=1", ""]);
  });
});

describe("guarded fetch, timeouts and failures", () => {
  test("when the peer accepts and never answers, then the fetch fails as a timeout", async () => {
    const peer = await mustStartPeer("127.0.0.1", () => {});
    const err = await rejectionOf(createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 200 })(`${peer.origin}/`));
    expect(describeOutboundError(err).class).toBe("timeout");
  });

  test("when the body streams past the deadline, then reading it fails as a timeout and the socket is closed", async () => {
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      setTimeout(() => res.end("data: second\n\n"), 1_000);
    });
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 500 })(`${peer.origin}/sse`);
    expect(describeOutboundError(await rejectionOf(res.text())).class).toBe("timeout");
  });

  test("when a longer deadline is asked for, then the body streams past the default one", async () => {
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      setTimeout(() => res.end("data: second\n\n"), 1_000);
    });
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 500 }).withLimits({ timeoutMs: 5_000 });
    expect(await (await fetch(`${peer.origin}/sse`)).text()).toBe("data: first\n\ndata: second\n\n");
  });

  test("when the body is larger than the cap, then reading it fails with a size error", async () => {
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => res.end("x".repeat(20_000)));
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000, maxBodyBytes: 10_000 })(`${peer.origin}/`);
    const err = await rejectionOf(res.text());
    expect(describeOutboundError(err)).toEqual({ class: "protocol", message: "the response was larger than 10000 bytes" });
  });

  test("when the caller aborts, then the fetch fails as a timeout", async () => {
    const peer = await mustStartPeer("127.0.0.1", () => {});
    const controller = new AbortController();
    const pending = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 10_000 })(`${peer.origin}/`, { signal: controller.signal });
    controller.abort();
    expect(describeOutboundError(await rejectionOf(pending)).class).toBe("timeout");
  });

  test("when nothing listens on the port, then the fetch fails as a connect error", async () => {
    const peer = await mustStartPeer("127.0.0.1");
    running.splice(0).forEach((server) => server.close());
    const err = await rejectionOf(createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 })(`${peer.origin}/`));
    expect(describeOutboundError(err).class).toBe("connect");
  });

  test("when a name does not resolve, then the fetch fails as a dns error", async () => {
    const fetch = createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2_000, lookup: fakeDns({}) });
    const err = await rejectionOf(fetch("http://nowhere.test/"));
    expect(describeOutboundError(err)).toEqual({ class: "dns", message: "getaddrinfo ENOTFOUND nowhere.test" });
  });
});

describe("describeOutboundError", () => {
  test.each([
    [Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }), "tls"],
    [Object.assign(new Error("Headers Timeout Error"), { code: "UND_ERR_HEADERS_TIMEOUT" }), "timeout"],
    [Object.assign(new Error("connect EHOSTUNREACH"), { code: "EHOSTUNREACH" }), "connect"],
    [Object.assign(new Error("getaddrinfo EAI_AGAIN x.test"), { code: "EAI_AGAIN" }), "dns"],
    [Object.assign(new Error("Error POSTing to endpoint (HTTP 502)"), { code: 502 }), "http"],
    [new Error("unexpected end of JSON"), "protocol"],
  ])("when the cause is %s, then the class is %s", (cause, cls) => {
    expect(describeOutboundError(new TypeError("fetch failed", { cause })).class).toBe(cls);
  });

  test("when a message mentions a URL, then credentials and the query are left out", () => {
    const err = new TypeError("fetch failed", {
      cause: new Error("bad reply from https://user:pw@mcp.example.test:8443/v1/sse?token=abc#frag"),
    });
    expect(describeOutboundError(err).message).toBe("bad reply from https://mcp.example.test:8443/v1/sse");
  });
});

describe("guarded fetch, lite form (the relay's)", () => {
  const post = { method: "POST", headers: { "content-type": "application/json" }, body: "{}" } as const;
  const socketsOf = (peer: Peer) => new Set(peer.requests.map((r) => r.socket)).size;
  // undici hands a kept socket to the next request a full event-loop turn after an answer ends (client-h1's setImmediate).
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  test("when a host name resolves to loopback, then the exchange is refused and no connection is made", async () => {
    const peer = await mustStartPeer("127.0.0.1");
    let connections = 0;
    peer.server.on("connection", () => connections++);
    const fetch = createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2_000, lookup: fakeDns({ "rebind.test": ["127.0.0.1"] }) });
    const err = await rejectionOf(fetch.lite(`http://rebind.test:${peer.port}/mcp`, post));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect((err as OutboundBlockedError).reason).toBe("loopback address");
    expect(describeOutboundError(err).class).toBe("blocked");
    expect(peer.requests).toHaveLength(0);
    expect(connections).toBe(0);
  });

  test("when a literal refused address is named, then the exchange is refused and nothing arrives", async () => {
    const peer = await mustStartPeer("127.0.0.1");
    const err = await rejectionOf(createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2_000 }).lite(`http://127.0.0.1:${peer.port}/mcp`, post));
    expect((err as Error).message).toBe("refused to connect to 127.0.0.1: loopback address; setting MCP_API_ALLOW_PRIVATE_NETWORK=true lifts this guard");
    expect(peer.requests).toHaveLength(0);
  });

  test("when the name rebinds to a refused address after the first connection, then that connection is reused while it lasts and the next one is refused", async () => {
    const allowed = await mustStartPeer("127.0.0.2", (_req, res) => res.end("public"));
    const refused = await startPeerOnPort("127.0.0.1", allowed.port);
    const answers = ["127.0.0.2"];
    let lookups = 0;
    const lookup: LookupFn = async () => {
      lookups++;
      const address = answers[Math.min(lookups, answers.length) - 1];
      return [{ address, family: 4 }];
    };
    const fetch = createGuardedFetch({ allowPrivateNetwork: false, timeoutMs: 2_000, classify: only127002IsPublic, lookup });
    const url = `http://rebind.test:${allowed.port}/mcp`;
    for (let i = 0; i < 3; i++) {
      const res = await fetch.lite(url, post);
      expect((await res.body!.bytes(1024))?.toString()).toBe("public");
      await nextTurn();
    }
    // Kept alive: one lookup and one connection for three exchanges.
    expect(lookups).toBe(1);
    expect(socketsOf(allowed)).toBe(1);

    answers.push("127.0.0.1");
    for (const req of allowed.requests) req.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const err = await rejectionOf(fetch.lite(url, post));
    expect(err).toBeInstanceOf(OutboundBlockedError);
    expect((err as Error).message).toMatch(/^refused to connect to rebind\.test \(127\.0\.0\.1\): loopback address/);
    expect(lookups).toBe(2);
    expect(refused?.requests ?? []).toHaveLength(0);
  });

  test("when the peer redirects, then the exchange fails as an http error and nothing is followed, unless the redirect is asked for as an answer", async () => {
    const target = await mustStartPeer("127.0.0.1");
    const peer = await mustStartPeer("127.0.0.1", redirectTo(() => `${target.origin}/elsewhere`, 307));
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 });
    const err = await rejectionOf(fetch.lite(`${peer.origin}/mcp`, { ...post, redirect: "error" }));
    expect(describeOutboundError(err)).toEqual({ class: "http", message: `unexpected redirect from ${peer.origin}/mcp` });
    const manual = await fetch.lite(`${peer.origin}/mcp`, { ...post, redirect: "manual" });
    expect(manual.status).toBe(307);
    expect(manual.headers.get("Location")).toBe(`${target.origin}/elsewhere`);
    expect(target.requests).toHaveLength(0);
  });

  test("when the body is larger than the fetch's cap, then reading it fails with a size error and the socket is closed", async () => {
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => res.end("x".repeat(200_000)));
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000, maxBodyBytes: 100_000 });
    const res = await fetch.lite(`${peer.origin}/mcp`, post);
    const err = await rejectionOf((async () => {
      for await (const _ of res.body!);
    })());
    expect(describeOutboundError(err)).toEqual({ class: "protocol", message: "the response was larger than 100000 bytes" });
    expect(await rejectionOf(res.body!.bytes(1_000_000))).toBe(err);
    await fetch.lite(`${peer.origin}/mcp`, post).then((r) => r.body!.cancel());
    expect(socketsOf(peer)).toBe(2);
  });

  test("when a whole body is read past the reader's limit, then it is null and the socket is closed; within it, the bytes and a kept socket", async () => {
    let closed = 0;
    const peer = await mustStartPeer("127.0.0.1", (req, res) => {
      req.socket.once("close", () => closed++);
      res.end(req.url === "/big" ? "y".repeat(300_000) : "small");
    });
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 2_000 });
    expect(await (await fetch.lite(`${peer.origin}/big`, post)).body!.bytes(100_000)).toBeNull();
    await expect.poll(() => closed).toBe(1);
    for (let i = 0; i < 2; i++) {
      expect((await (await fetch.lite(`${peer.origin}/small`, post)).body!.bytes(100_000))?.toString()).toBe("small");
      await nextTurn();
    }
    expect(new Set(peer.requests.filter((r) => r.url === "/small").map((r) => r.socket)).size).toBe(1);
    expect(closed).toBe(1);
  });

  test("when the caller aborts mid-body, then the read fails with the caller's reason and the socket is destroyed, not pooled", async () => {
    let closed = 0;
    const peer = await mustStartPeer("127.0.0.1", (req, res) => {
      req.socket.once("close", () => closed++);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
    });
    const fetch = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 10_000 });
    const caller = new AbortController();
    const res = await fetch.lite(`${peer.origin}/mcp`, { ...post, signal: caller.signal });
    const iterator = res.body![Symbol.asyncIterator]();
    expect(Buffer.from((await iterator.next()).value!).toString()).toBe("data: first\n\n");
    const pending = iterator.next();
    const reason = new Error("the agent went away");
    caller.abort(reason);
    expect(await rejectionOf(pending)).toBe(reason);
    await expect.poll(() => closed).toBe(1);
    await fetch.lite(`${peer.origin}/mcp`, post).then((r) => r.body!.cancel());
    expect(socketsOf(peer)).toBe(2);
  });

  test("when the caller aborts before any answer, then the exchange fails at once as a timeout", async () => {
    const peer = await mustStartPeer("127.0.0.1", () => {});
    const caller = new AbortController();
    const pending = createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 10_000 }).lite(`${peer.origin}/mcp`, { ...post, signal: caller.signal });
    await expect.poll(() => peer.requests.length).toBe(1);
    caller.abort();
    expect(describeOutboundError(await rejectionOf(pending)).class).toBe("timeout");
  });

  test("when the body streams past the deadline, then reading it fails as a timeout", async () => {
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      setTimeout(() => res.end("data: second\n\n"), 1_000);
    });
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 300 }).lite(`${peer.origin}/mcp`, post);
    const err = await rejectionOf((async () => {
      for await (const _ of res.body!);
    })());
    expect(err).toMatchObject({ name: "TimeoutError", message: "outbound request timed out after 300 ms" });
    expect(describeOutboundError(err).class).toBe("timeout");
  });

  test("when the caller's deadline is sooner than the fetch's, then the exchange ends at it with the caller's reason; a later one leaves the fetch's own", async () => {
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      setTimeout(() => res.end("data: second\n\n"), 1_500);
    });
    const drain = async (res: { body: AsyncIterable<Uint8Array> | null }) => {
      for await (const _ of res.body!);
    };
    const mine = new Error("the caller's deadline");
    const sooner = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 10_000 }).lite(`${peer.origin}/mcp`, { ...post, deadline: { ms: 300, reason: () => mine } });
    expect(await rejectionOf(drain(sooner))).toBe(mine);
    const later = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 300 }).lite(`${peer.origin}/mcp`, { ...post, deadline: { ms: 10_000, reason: () => mine } });
    expect(await rejectionOf(drain(later))).toMatchObject({ name: "TimeoutError", message: "outbound request timed out after 300 ms" });
  });

  test("when the caller ends the exchange with a LiteCancel, then the read fails with its reason, the socket is closed, and a second abort changes nothing", async () => {
    let closed = 0;
    const peer = await mustStartPeer("127.0.0.1", (req, res) => {
      req.socket.once("close", () => closed++);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
    });
    const caller = new LiteCancel();
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 10_000 }).lite(`${peer.origin}/mcp`, { ...post, signal: caller });
    const iterator = res.body![Symbol.asyncIterator]();
    expect(Buffer.from((await iterator.next()).value!).toString()).toBe("data: first\n\n");
    const pending = iterator.next();
    const reason = new Error("the agent went away");
    caller.abort(reason);
    caller.abort(new Error("again"));
    expect(await rejectionOf(pending)).toBe(reason);
    expect(caller).toMatchObject({ aborted: true, reason });
    await expect.poll(() => closed).toBe(1);
    // Aborted before the exchange starts: it fails at once, as with an aborted AbortSignal.
    const early = new LiteCancel();
    early.abort();
    const err = await rejectionOf(createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 10_000 }).lite(`${peer.origin}/mcp`, { ...post, signal: early }));
    expect(err).toMatchObject({ name: "AbortError" });
    expect(describeOutboundError(err).class).toBe("timeout");
  });

  test("when a LiteCancel's listener throws, then the others still run and abort throws the first error", () => {
    const cancel = new LiteCancel();
    const ran: string[] = [];
    const first = new Error("first listener failed");
    cancel.addEventListener("abort", () => {
      ran.push("a");
      throw first;
    });
    cancel.addEventListener("abort", { handleEvent: () => void ran.push("b") });
    cancel.addEventListener("abort", () => {
      ran.push("c");
      throw new Error("third listener failed");
    });
    expect(() => cancel.abort(new Error("why"))).toThrow(first);
    expect(ran).toEqual(["a", "b", "c"]);
    expect(cancel.aborted).toBe(true);
    // Once only: nothing runs again, nothing is thrown again.
    expect(() => cancel.abort()).not.toThrow();
    expect(ran).toEqual(["a", "b", "c"]);
  });

  test("when a slow reader takes a large stream, then every byte arrives in order", async () => {
    const piece = Buffer.alloc(16 * 1024, "z");
    const peer = await mustStartPeer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      for (let i = 0; i < 64; i++) res.write(piece);
      res.end("end");
    });
    const res = await createGuardedFetch({ allowPrivateNetwork: true, timeoutMs: 5_000 }).lite(`${peer.origin}/mcp`, post);
    let total = 0;
    let last = "";
    for await (const chunk of res.body!) {
      total += chunk.byteLength;
      last = Buffer.from(chunk).toString().slice(-3);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(total).toBe(64 * piece.length + 3);
    expect(last).toBe("end");
  });
});

async function startPeerOnPort(host: string, port: number): Promise<Peer | null> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    res.end("private");
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  if (!listening) return null;
  running.push({
    close() {
      server.closeAllConnections();
      server.close();
    },
  });
  return { origin: `http://${host}:${port}`, port, requests, server };
}
