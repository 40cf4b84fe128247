// Server-sent events as the HTML standard parses them, in time linear in the input whatever the
// chunking: each byte is searched once per line-ending kind, copied at most a bounded number of
// times (amortised), and decoded once. An upstream dripping one byte at a time costs one byte's work.

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
  private bytes = new Uint8Array(0);
  length = 0;
  constructor(private readonly work: ParseWork) {}

  append(part: Uint8Array): void {
    if (this.length + part.length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.length + part.length, this.bytes.length * 2, 256));
      grown.set(this.bytes.subarray(0, this.length));
      this.work.bytes += this.length;
      this.bytes = grown;
    }
    this.bytes.set(part, this.length);
    this.work.bytes += part.length;
    this.length += part.length;
  }

  take(): Uint8Array {
    const line = this.bytes.subarray(0, this.length);
    this.length = 0;
    // A huge line's storage is not kept for the lines after it.
    if (this.bytes.length > 64 * 1024) this.bytes = new Uint8Array(0);
    return line;
  }
}

export interface SseParser {
  /** The events completed by this chunk, in order. Throws EventTooLarge past the bound. */
  push(chunk: Uint8Array): SseEvent[];
}

export function createSseParser({ maxEventBytes, work = { bytes: 0 } }: { maxEventBytes: number; work?: ParseWork }): SseParser {
  // UTF-8 never puts CR or LF inside a multi-byte sequence, so lines are split as bytes and each decoded once.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const pending = new LineBuffer(work);
  let skipLf = false; // the last chunk ended in CR: an LF starting the next one belongs to it
  let first = true;
  let event: SseEvent = {};
  let eventBytes = 0;

  function line(bytes: Uint8Array, out: SseEvent[]): void {
    if (first) {
      first = false;
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    }
    if (bytes.length === 0) {
      if (event.data !== undefined || event.comment !== undefined) out.push(event);
      event = {};
      eventBytes = 0;
      return;
    }
    work.bytes += bytes.length * 2; // decoding, then the field split below
    const text = decoder.decode(bytes);
    const colon = text.indexOf(":");
    if (colon === 0) {
      event.comment = text.slice(1).trim();
      return;
    }
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? "" : text.slice(colon + (text.charCodeAt(colon + 1) === 0x20 ? 2 : 1));
    if (field === "data") event.data = event.data === undefined ? value : `${event.data}\n${value}`;
    else if (field === "event") event.event = value;
    else if (field === "id" && !value.includes("\0")) event.id = value;
    else if (field === "retry") event.retry = value;
  }

  return {
    push(chunk) {
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
          pending.append(chunk.subarray(pos));
          break;
        }
        let bytes = chunk.subarray(pos, end);
        if (pending.length > 0) {
          pending.append(bytes);
          bytes = pending.take();
        }
        line(bytes, out);
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
  for (const line of event.data.split("\n")) out += `data: ${line}\n`;
  return out + "\n";
}
