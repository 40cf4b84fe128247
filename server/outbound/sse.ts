// Server-sent events as the HTML standard parses them, in time linear in the input whatever the
// chunking: each byte is searched once per line-ending kind, copied at most a bounded number of
// times (amortised), and decoded at most once (only known fields' values are decoded at all).
// An upstream dripping one byte at a time costs one byte's work.

export interface SseEvent {
  /** A comment line (keep-alive) rather than a message. */
  comment?: string;
  event?: string;
  id?: string;
  retry?: string;
  data?: string;
}

/** Counts the bytes the parser examines, copies and decodes, so a test can bound its work. */
export interface ParseWork {
  bytes: number;
}

export class EventTooLarge extends Error {
  override readonly name = "EventTooLarge";
  constructor(readonly limit: number) {
    super(`an event was larger than ${limit} bytes`);
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** The bytes of the line being read when it spans chunks; grows by doubling so appends are amortised O(1) per byte. */
class LineBuffer {
  private bytes = Buffer.alloc(0);
  length = 0;
  constructor(private readonly work: ParseWork) {}

  append(part: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.length + n > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.length + n, this.bytes.length * 2, 256));
      this.bytes.copy(grown, 0, 0, this.length);
      this.work.bytes += this.length;
      this.bytes = grown;
    }
    part.copy(this.bytes, this.length, start, end);
    this.work.bytes += n;
    this.length += n;
  }

  /** The line so far; valid until the next append. */
  take(): Buffer {
    const line = this.bytes.subarray(0, this.length);
    this.length = 0;
    // A huge line's storage is not kept for the lines after it.
    if (this.bytes.length > 64 * 1024) this.bytes = Buffer.alloc(0);
    return line;
  }
}

export interface SseParser {
  /** The events completed by this chunk, in order. Throws EventTooLarge past the bound. */
  push(chunk: Uint8Array): SseEvent[];
}

const COLON = 0x3a;
const SPACE = 0x20;
// The fields the standard defines, as bytes; any other field is ignored without being decoded.
const FIELDS = ["data", "event", "id", "retry"].map((f) => Buffer.from(f));

/** Which of FIELDS the bytes name (by index), or -1. */
function fieldOf(buf: Buffer, start: number, end: number): number {
  next: for (let f = 0; f < FIELDS.length; f++) {
    const name = FIELDS[f];
    if (name.length !== end - start) continue;
    for (let i = 0; i < name.length; i++) if (buf[start + i] !== name[i]) continue next;
    return f;
  }
  return -1;
}

export function createSseParser({ maxEventBytes, work = { bytes: 0 } }: { maxEventBytes: number; work?: ParseWork }): SseParser {
  // UTF-8 never puts CR or LF inside a multi-byte sequence, so lines are split as bytes, and
  // only the values of known fields are decoded, each once.
  const pending = new LineBuffer(work);
  let skipLf = false; // the last chunk ended in CR: an LF starting the next one belongs to it
  let first = true;
  let event: SseEvent = {};
  let data: string[] = [];
  let eventBytes = 0;

  const decode = (buf: Buffer, start: number, end: number) => {
    work.bytes += end - start;
    return buf.toString("utf8", start, end);
  };

  function line(buf: Buffer, start: number, end: number, out: SseEvent[]): void {
    if (first) {
      first = false;
      if (end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf) start += 3;
    }
    if (start === end) {
      if (data.length > 0) event.data = data.join("\n");
      if (event.data !== undefined || event.comment !== undefined) out.push(event);
      event = {};
      data = [];
      eventBytes = 0;
      return;
    }
    if (buf[start] === COLON) {
      event.comment = decode(buf, start + 1, end).trim();
      return;
    }
    // The field name ends at the first colon; no known name is longer than 5 bytes, so at most 6 are looked at.
    let colon = -1;
    for (let i = start, stop = Math.min(end, start + 6); i < stop; i++) {
      if (buf[i] === COLON) {
        colon = i;
        break;
      }
    }
    work.bytes += Math.min(end - start, 6);
    const field = fieldOf(buf, start, colon < 0 ? end : colon);
    if (field < 0) return;
    let valueStart = colon < 0 ? end : colon + 1;
    if (valueStart < end && buf[valueStart] === SPACE) valueStart++;
    const value = decode(buf, valueStart, end);
    if (field === 0) data.push(value);
    else if (field === 1) event.event = value;
    else if (field === 2 && !value.includes("\0")) event.id = value;
    else if (field === 3) event.retry = value;
  }

  return {
    push(input) {
      const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      const out: SseEvent[] = [];
      let pos = 0;
      if (skipLf && chunk.length > 0) {
        skipLf = false;
        if (chunk[0] === LF) pos = 1;
      }
      // The next CR and LF at or after `pos`; each is searched for again only once passed, so every byte is searched at most once for each.
      let nextLf = -2;
      let nextCr = -2;
      const find = (byte: number, known: number) => {
        if (known === -1 || known >= pos) return known;
        const at = chunk.indexOf(byte, pos);
        work.bytes += (at < 0 ? chunk.length : at + 1) - pos;
        return at;
      };
      while (pos < chunk.length) {
        nextLf = find(LF, nextLf);
        nextCr = find(CR, nextCr);
        const end = nextLf < 0 ? nextCr : nextCr < 0 ? nextLf : Math.min(nextLf, nextCr);
        const stop = end < 0 ? chunk.length : end;
        eventBytes += stop - pos;
        if (eventBytes > maxEventBytes) throw new EventTooLarge(maxEventBytes);
        if (end < 0) {
          pending.append(chunk, pos, chunk.length);
          break;
        }
        if (pending.length > 0) {
          pending.append(chunk, pos, end);
          const whole = pending.take();
          line(whole, 0, whole.length, out);
        } else {
          line(chunk, pos, end, out);
        }
        pos = end + 1;
        if (chunk[end] === CR) {
          if (pos === chunk.length) skipLf = true;
          else if (chunk[pos] === LF) pos++;
        }
      }
      return out;
    },
  };
}

/** The events of an SSE body, one at a time; the body is cancelled when the reader stops early. */
export async function* parseSse(body: AsyncIterable<Uint8Array>, options: { maxEventBytes: number; work?: ParseWork }): AsyncGenerator<SseEvent> {
  const parser = createSseParser(options);
  for await (const chunk of body) yield* parser.push(chunk);
}

/** An SSE event as the agent receives it. */
export function formatSse(event: SseEvent): string {
  if (event.data === undefined) return `: ${event.comment ?? ""}\n\n`;
  let out = "";
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  return `${out}data: ${event.data.replaceAll("\n", "\ndata: ")}\n\n`;
}

/**
 * An SSE body with every line ending (CR, CRLF) turned into LF, in one pass. The SDKs' parser
 * (eventsource-parser 3.1) searches the rest of its input for CR at every line when a CR is
 * present, which is quadratic in a chunk of many lines; with LF alone it takes its linear path.
 * The events are the same: the standard treats the three endings alike.
 */
export function lfLineEndings(): TransformStream<Uint8Array, Uint8Array> {
  let afterCr = false;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, out) {
      if (chunk.length === 0) return;
      if (chunk.indexOf(CR) < 0) {
        out.enqueue(afterCr && chunk[0] === LF ? chunk.subarray(1) : chunk);
        afterCr = false;
        return;
      }
      const copy = new Uint8Array(chunk.length);
      let n = 0;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === LF && afterCr) {
          afterCr = false;
          continue;
        }
        afterCr = b === CR;
        copy[n++] = afterCr ? LF : b;
      }
      out.enqueue(copy.subarray(0, n));
    },
  });
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A fetch whose event-stream answers come with LF line endings only (see lfLineEndings). */
export function withLfEventStreams(fetch: Fetch): Fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    if (!res.body || !/^text\/event-stream\b/i.test(res.headers.get("content-type") ?? "")) return res;
    const out = new Response(res.body.pipeThrough(lfLineEndings()), { status: res.status, statusText: res.statusText, headers: res.headers });
    Object.defineProperty(out, "url", { value: res.url });
    return out;
  };
}
