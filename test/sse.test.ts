// The relay's SSE parser: the HTML standard's rules, and work linear in the input whatever the
// chunking (counted by the parser's own meter of bytes examined, copied and decoded).
import { describe, expect, test } from "vitest";
import { createParser } from "eventsource-parser";
import { createSseParser, EventTooLarge, formatSse, lfLineEndings, parseSse, withLfEventStreams, type SseEvent } from "../server/outbound/sse.js";
import { MAX_UPSTREAM_MESSAGE_BYTES, MessageTooLarge, upstreamEvents } from "../server/outbound/mcp-relay.js";

const enc = new TextEncoder();
const MAX = MAX_UPSTREAM_MESSAGE_BYTES;

/** A web stream of the chunks, as fetch's body is. */
function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({ pull: (c) => (i < chunks.length ? c.enqueue(chunks[i++]) : c.close()) });
}

function parseAll(chunks: Uint8Array[], maxEventBytes = MAX) {
  const work = { bytes: 0 };
  const parser = createSseParser({ maxEventBytes, work });
  const events: SseEvent[] = [];
  for (const c of chunks) events.push(...parser.push(c));
  return { events, work: work.bytes };
}

/** The input cut into pieces of the given sizes, cycling. */
function cut(text: string | Uint8Array, sizes: number[]): Uint8Array[] {
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe("SSE parsing", () => {
  const stream = "\uFEFFid: 1\nevent: message\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: one\r\ndata: two\r\rdata:no-space\r\n\r\nid: a\0b\nretry: 5\ndata\n\ndata: é✓\n\ndata: unterminated";
  const want: SseEvent[] = [
    { id: "1", event: "message", data: '{"a":1}' },
    { comment: "keep-alive" },
    { data: "one\ntwo" },
    { data: "no-space" },
    { retry: "5", data: "" },
    { data: "é✓" },
  ];

  test.each([
    ["one chunk", [1 << 30]],
    ["one byte at a time", [1]],
    ["ragged pieces", [3, 1, 7, 2]],
    ["two bytes at a time (CRLF and multi-byte characters split)", [2]],
  ])("when the stream arrives in %s, then the events are the standard's", (_name, sizes) => {
    expect(parseAll(cut(stream, sizes)).events).toEqual(want);
  });

  test("when an event is larger than the bound, then EventTooLarge (MessageTooLarge through the relay)", async () => {
    expect(() => parseAll(cut(`data: ${"x".repeat(100)}\n\n`, [7]), 50)).toThrow(EventTooLarge);
    expect(() => parseAll([enc.encode("data: " + "x".repeat(60))], 50)).toThrow(EventTooLarge);
    const body = streamOf([enc.encode("data: "), new Uint8Array(MAX).fill(0x78)]);
    await expect(async () => {
      for await (const _ of upstreamEvents(body)) void _;
    }).rejects.toThrow(MessageTooLarge);
  });

  test("when events are formatted for the agent, then parsing them gives them back", () => {
    const text = want.map(formatSse).join("");
    expect(parseAll([enc.encode(text)]).events).toEqual(want.map((e) => (e.data === undefined ? { comment: e.comment } : e)));
  });
});

/** The standard's algorithm on the whole text at once, as plainly as it reads: the reference. */
function reference(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let event: SseEvent = {};
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  lines.pop(); // an unterminated last line is never processed
  for (const line of lines) {
    if (line === "") {
      if (event.data !== undefined || event.comment !== undefined) events.push(event);
      event = {};
    } else if (line.startsWith(":")) event.comment = line.slice(1).trim();
    else {
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") event.data = event.data === undefined ? value : `${event.data}\n${value}`;
      else if (field === "event") event.event = value;
      else if (field === "id" && !value.includes("\0")) event.id = value;
      else if (field === "retry") event.retry = value;
    }
  }
  return events;
}

describe("SSE parsing matches the reference", () => {
  const pieces = ["data", "data:", "data: ", "event: e", "id: 7", "id: a\0", "retry: 3", ": c", "x", "é", "✓", "dat", "a:", "\n", "\r", "\r\n", " ", "{}", "identity: 1"];
  test("when 300 random streams arrive in random pieces, then every parse equals the reference", () => {
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let run = 0; run < 300; run++) {
      const text = (rand(2) ? "\uFEFF" : "") + Array.from({ length: 40 }, () => pieces[rand(pieces.length)]).join("");
      const bytes = enc.encode(text);
      const sizes = Array.from({ length: 5 }, () => 1 + rand(9));
      expect(parseAll(cut(bytes, sizes)).events, JSON.stringify(text)).toEqual(reference(text));
    }
  });
});

describe("SSE parsing costs linear work", () => {
  const K = 8;
  const big = 3.5 * 1024 * 1024;

  test("when 3.5 MiB arrive with no newline and then one byte at a time, then the parser's work stays within 8 bytes per input byte", async () => {
    const head = enc.encode("data: " + "x".repeat(big));
    const chunks = [head, ...cut("y".repeat(20_000) + "\n\n", [1])];
    const work = { bytes: 0 };
    const events: SseEvent[] = [];
    // Through the async generator the relay uses, fed by a stream.
    for await (const e of parseSse(streamOf(chunks), { maxEventBytes: MAX, work })) events.push(e);
    const input = chunks.reduce((n, c) => n + c.length, 0);
    expect(events).toHaveLength(1);
    expect(events[0].data).toHaveLength(big + 20_000);
    expect(work.bytes).toBeGreaterThanOrEqual(input);
    expect(work.bytes).toBeLessThanOrEqual(K * input);
  });

  const many = (line: string, n: number) => line.repeat(n);
  test.each([
    ["every byte its own chunk", () => cut("data: " + "z".repeat(200_000) + "\n\n", [1])],
    ["many short LF lines in one chunk", () => [enc.encode(many("data: a\n\n", 100_000))]],
    ["many short CR lines in one chunk (no LF to find)", () => [enc.encode(many("data: a\r\r", 100_000))]],
    ["a lone LF far after many CRs", () => [enc.encode(many("data: a\r\r", 50_000) + "\n")]],
    ["CRLF split across every chunk", () => cut(many("data: b\r\n\r\n", 20_000), [8, 1, 2])],
    ["a huge line, then many tiny lines", () => [enc.encode("data: " + "q".repeat(1 << 20)), ...cut(many("\n:\n", 50_000), [3])]],
  ])("when the input is %s, then the work stays within 8 bytes per input byte", (_name, make) => {
    const chunks = make();
    const input = chunks.reduce((n, c) => n + c.length, 0);
    const { work } = parseAll(chunks);
    expect(work).toBeGreaterThanOrEqual(input / 2);
    expect(work).toBeLessThanOrEqual(K * input);
  });
});

describe("LF line endings for the SDKs' SSE parser", () => {
  async function throughLf(chunks: Uint8Array[]): Promise<Uint8Array> {
    const out: Uint8Array[] = [];
    for await (const c of streamOf(chunks).pipeThrough(lfLineEndings())) out.push(c);
    return Buffer.concat(out);
  }
  /** What eventsource-parser (the SDKs' parser) makes of the bytes. */
  function sdkEvents(bytes: Uint8Array) {
    const events: { event?: string; id?: string; data: string }[] = [];
    const parser = createParser({ onEvent: (e) => void events.push({ event: e.event, id: e.id, data: e.data }) });
    parser.feed(new TextDecoder().decode(bytes));
    return events;
  }

  test.each([
    ["CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", [3]],
    ["lone CR", "data: a\r\rid: 2\rdata: b\r\r", [1]],
    ["CRLF split across chunks", "data: a\r\n\r\n", [8, 1, 1]],
    ["a CR at the very end of many LF lines", "data: x\n\n".repeat(2000) + "data: y\r\r", [1 << 20]],
  ])("when the stream uses %s, then no CR remains and the SDK's parser sees the same events", async (_name, text, sizes) => {
    const bytes = enc.encode(text);
    const lf = await throughLf(cut(bytes, sizes));
    expect(lf.includes(0x0d)).toBe(false);
    // A final LF, so that eventsource-parser does not hold back a last CR waiting to see whether an LF follows.
    const end = enc.encode("\n");
    expect(sdkEvents(Buffer.concat([lf, end]))).toEqual(sdkEvents(Buffer.concat([bytes, end])));
  });

  test("when an answer is an event stream, then the wrapped fetch gives it LF endings; other answers are untouched", async () => {
    const fetch = withLfEventStreams(async (input) =>
      new Response(String(input).endsWith("sse") ? "data: a\r\n\r\n" : "{\"a\":\"\\r\"}\r\n", {
        headers: { "content-type": String(input).endsWith("sse") ? "text/event-stream" : "application/json" },
      }),
    );
    expect(await (await fetch("http://x/sse")).text()).toBe("data: a\n\n");
    expect(await (await fetch("http://x/json")).text()).toBe('{"a":"\\r"}\r\n');
  });
});
