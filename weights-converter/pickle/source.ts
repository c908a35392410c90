/**
 * Byte sources the unpickler (./vm.ts) reads from: bytes held in memory (a zip entry's data.pkl) or
 * a file read forwards through a small buffer (the legacy torch format, several pickles in a row).
 * Callers check `remaining` before every read; a source never reads past its `end`.
 */

/** Sequential bytes to unpickle from. `position` is absolute, for messages. */
export interface ByteSource {
  readonly position: number;
  readonly remaining: number;
  /** One byte; the caller has checked `remaining`. */
  byte(): number;
  /** `n` bytes (a copy or a view); the caller has checked `remaining`. */
  bytes(n: number): Uint8Array;
}

/** Bytes held in memory. */
export class BufferSource implements ByteSource {
  private pos: number;
  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }
  get position(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  byte(): number {
    return this.buf[this.pos++];
  }
  bytes(n: number): Uint8Array {
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** An opened file read sequentially through a small buffer (legacy torch files hold several pickles). */
export class FileSource implements ByteSource {
  private pos: number;
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;
  constructor(
    private readonly read: (position: number, length: number) => Buffer,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }
  get position(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  private fill(n: number): void {
    const len = Math.min(Math.max(n, 65536), this.end - this.pos);
    this.chunk = this.read(this.pos, len);
    this.chunkStart = this.pos;
  }
  byte(): number {
    const i = this.pos - this.chunkStart;
    if (i < 0 || i >= this.chunk.length) this.fill(1);
    return this.chunk[this.pos++ - this.chunkStart];
  }
  bytes(n: number): Uint8Array {
    const i = this.pos - this.chunkStart;
    if (i < 0 || i + n > this.chunk.length) this.fill(n);
    const s = this.pos - this.chunkStart;
    const out = new Uint8Array(n);
    out.set(this.chunk.subarray(s, s + n));
    this.pos += n;
    return out;
  }
}
