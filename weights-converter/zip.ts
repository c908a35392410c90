/**
 * A small, bounds-checked zip reader for torch.save archives (PKWARE APPNOTE 6.3: EOCD, ZIP64 EOCD
 * locator and record, central directory, local headers). Entries are read lazily by offset from a
 * file descriptor, never the whole file: checkpoints reach several GiB. torch writes STORED entries
 * (method 0) with 64-byte aligned data; DEFLATE (method 8) is also read, through zlib with the
 * output capped at the declared size. Every offset and size is checked against the file size.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';
import { CheckpointError } from './errors';
import { openRegularFile, readExactly } from './source';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

/** One central-directory entry. Sizes and offsets are byte counts within the archive file. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

let crcTable: Int32Array | null = null;
function jsCrc32(data: Uint8Array, seed: number): number {
  if (crcTable === null) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let crc = ~seed;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

type Crc32Fn = (data: Uint8Array, value?: number) => number;
// zlib.crc32 exists from Node 20.15; older 20.x fall back to the table version.
const nativeCrc32: Crc32Fn | undefined = (zlib as unknown as { crc32?: Crc32Fn }).crc32;

/** CRC-32 (IEEE, as zip uses), optionally continuing from a previous value. */
export function crc32(data: Uint8Array, seed = 0): number {
  return nativeCrc32 !== undefined ? nativeCrc32(data, seed) >>> 0 : jsCrc32(data, seed);
}

/** True when the bytes start with a zip local file header or an empty archive's EOCD. */
export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 0x03 && head[3] === 0x04) || (head[2] === 0x05 && head[3] === 0x06));
}

function readU64(buf: Buffer, off: number, file: string, what: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(file, `corrupt zip: ${what} ${v} is too large`);
  return Number(v);
}

/** A zip archive opened for random access. Call close() when done. */
export class ZipReader {
  readonly file: string;
  readonly size: number;
  /** Entries by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private fd: number;
  private readonly dataOffsets = new Map<string, number>();
  private inflated: { name: string; data: Buffer } | null = null;

  private constructor(file: string, fd: number, size: number) {
    this.file = file;
    this.fd = fd;
    this.size = size;
    this.entries = this.readCentralDirectory();
  }

  /** Open `path` and read its central directory. */
  static open(path: string): ZipReader {
    const file = openRegularFile(path, 'a zip archive');
    try {
      return new ZipReader(path, file.fd, file.size);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  private fail(reason: string): never {
    throw new CheckpointError(this.file, reason);
  }

  private readCentralDirectory(): Map<string, ZipEntry> {
    const { file, size } = this;
    if (size < EOCD_SIZE) this.fail(`truncated zip: ${size} bytes is too short for an end of central directory`);
    // The EOCD is the last record; only a comment (at most 65535 bytes) may follow it.
    const tailLen = Math.min(size, EOCD_SIZE + MAX_COMMENT);
    const tailStart = size - tailLen;
    const tail = readExactly(this.fd, tailStart, tailLen, file, 'zip end of central directory');
    let eocd = -1;
    for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.fail('truncated zip: end of central directory not found');
    const eocdPos = tailStart + eocd;
    const diskNo = tail.readUInt16LE(eocd + 4);
    const cdDisk = tail.readUInt16LE(eocd + 6);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    let zip64 = false;

    // ZIP64: a locator sits right before the EOCD and points at the ZIP64 EOCD record.
    if (eocdPos >= 20) {
      const loc = readExactly(this.fd, eocdPos - 20, 20, file, 'zip64 locator');
      if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
        const recPos = readU64(loc, 8, file, 'zip64 record offset');
        if (recPos + 56 > eocdPos - 20) this.fail(`corrupt zip: zip64 end of central directory offset ${recPos} out of range`);
        const rec = readExactly(this.fd, recPos, 56, file, 'zip64 end of central directory');
        if (rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) this.fail('corrupt zip: zip64 end of central directory signature not found');
        count = readU64(rec, 32, file, 'zip64 entry count');
        cdSize = readU64(rec, 40, file, 'zip64 central directory size');
        cdOffset = readU64(rec, 48, file, 'zip64 central directory offset');
        zip64 = true;
      }
    }
    if (!zip64 && (diskNo !== 0 || cdDisk !== 0)) this.fail('multi-disk (split) zip archives are not supported');
    if (!zip64 && (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff)) {
      this.fail('truncated zip: zip64 end of central directory locator not found');
    }
    if (cdOffset + cdSize > size) {
      this.fail(`truncated zip: central directory (${cdSize} bytes at ${cdOffset}) extends past the end of the ${size}-byte file`);
    }
    if (count * 46 > cdSize) this.fail(`corrupt zip: ${count} entries cannot fit in a ${cdSize}-byte central directory`);

    const cd = readExactly(this.fd, cdOffset, cdSize, file, 'zip central directory');
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize) this.fail(`corrupt zip: central directory entry ${i} is truncated`);
      if (cd.readUInt32LE(p) !== SIG_CENTRAL) this.fail(`corrupt zip: bad central directory signature for entry ${i}`);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc = cd.readUInt32LE(p + 16);
      let csize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      const end = p + 46 + nameLen + extraLen + commentLen;
      if (end > cdSize) this.fail(`corrupt zip: central directory entry ${i} is truncated`);
      const name = cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
      // ZIP64 extended information: only the fields whose 32-bit value is saturated, in this order.
      let q = p + 46 + nameLen;
      const extraEnd = q + extraLen;
      while (q + 4 <= extraEnd) {
        const id = cd.readUInt16LE(q);
        const len = cd.readUInt16LE(q + 2);
        if (q + 4 + len > extraEnd) this.fail(`corrupt zip: extra field of '${name}' is truncated`);
        if (id === 0x0001) {
          let r = q + 4;
          const take = (what: string): number => {
            if (r + 8 > q + 4 + len) this.fail(`corrupt zip: zip64 extra field of '${name}' lacks the ${what}`);
            const v = readU64(cd, r, file, what);
            r += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = take('uncompressed size');
          if (csize === 0xffffffff) csize = take('compressed size');
          if (localOffset === 0xffffffff) localOffset = take('local header offset');
        }
        q += 4 + len;
      }
      if (localOffset + 30 + csize > size) {
        this.fail(`truncated zip: entry '${name}' (${csize} bytes at ${localOffset}) extends past the end of the ${size}-byte file`);
      }
      if (entries.has(name)) this.fail(`corrupt zip: duplicate entry '${name}'`);
      entries.set(name, { name, method, flags, crc32: crc, compressedSize: csize, uncompressedSize: usize, localHeaderOffset: localOffset });
      p = end;
    }
    return entries;
  }

  /** Entry names in central-directory order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The entry called `name`, or undefined. */
  get(name: string): ZipEntry | undefined {
    return this.entries.get(name);
  }

  private entryOf(e: string | ZipEntry): ZipEntry {
    if (typeof e !== 'string') return e;
    const entry = this.entries.get(e);
    if (entry === undefined) this.fail(`zip entry '${e}' not found`);
    return entry;
  }

  /** File offset of the entry's data: after the local header and its own name and extra fields. */
  dataOffset(e: string | ZipEntry): number {
    const entry = this.entryOf(e);
    const cached = this.dataOffsets.get(entry.name);
    if (cached !== undefined) return cached;
    const h = readExactly(this.fd, entry.localHeaderOffset, 30, this.file, `zip local header of '${entry.name}'`);
    if (h.readUInt32LE(0) !== SIG_LOCAL) this.fail(`corrupt zip: bad local header signature for '${entry.name}'`);
    const off = entry.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (off + entry.compressedSize > this.size) {
      this.fail(`truncated zip: data of '${entry.name}' (${entry.compressedSize} bytes at ${off}) extends past the end of the ${this.size}-byte file`);
    }
    this.dataOffsets.set(entry.name, off);
    return off;
  }

  private checkReadable(entry: ZipEntry): void {
    if (entry.flags & 0x1) this.fail(`zip entry '${entry.name}' is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) {
      this.fail(`zip entry '${entry.name}' uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
    }
    if (entry.method === 0 && entry.compressedSize !== entry.uncompressedSize) {
      this.fail(`corrupt zip: stored entry '${entry.name}' has compressed size ${entry.compressedSize} != uncompressed size ${entry.uncompressedSize}`);
    }
  }

  /**
   * The whole (decompressed) content of an entry. `maxBytes` bounds what a caller is willing to
   * hold; `verifyCrc` (default true) checks the CRC-32 recorded in the central directory.
   */
  read(e: string | ZipEntry, opts: { verifyCrc?: boolean; maxBytes?: number } = {}): Buffer {
    const entry = this.entryOf(e);
    this.checkReadable(entry);
    if (opts.maxBytes !== undefined && entry.uncompressedSize > opts.maxBytes) {
      this.fail(`zip entry '${entry.name}' is ${entry.uncompressedSize} bytes, more than the ${opts.maxBytes} allowed`);
    }
    const off = this.dataOffset(entry);
    const raw = readExactly(this.fd, off, entry.compressedSize, this.file, `zip entry '${entry.name}'`);
    let data = raw;
    if (entry.method === 8) data = this.inflate(entry, raw);
    if (opts.verifyCrc !== false && crc32(data) !== entry.crc32) {
      this.fail(`corrupt zip: CRC-32 mismatch in entry '${entry.name}'`);
    }
    return data;
  }

  private inflate(entry: ZipEntry, raw: Buffer): Buffer {
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (err) {
      this.fail(`corrupt zip: cannot inflate '${entry.name}': ${(err as Error).message}`);
    }
    if (out.length !== entry.uncompressedSize) {
      this.fail(`corrupt zip: '${entry.name}' inflates to ${out.length} bytes, expected ${entry.uncompressedSize}`);
    }
    return out;
  }

  /**
   * `length` bytes of the entry's content starting at `start`, without reading the rest (stored
   * entries; a deflated entry is inflated once and kept until another deflated entry is read).
   */
  readRange(e: string | ZipEntry, start: number, length: number): Buffer {
    const entry = this.entryOf(e);
    this.checkReadable(entry);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0 || start + length > entry.uncompressedSize) {
      this.fail(`range [${start}, ${start + length}) is outside zip entry '${entry.name}' of ${entry.uncompressedSize} bytes`);
    }
    if (entry.method === 8) {
      if (this.inflated === null || this.inflated.name !== entry.name) {
        this.inflated = { name: entry.name, data: this.read(entry) };
      }
      return this.inflated.data.subarray(start, start + length);
    }
    return readExactly(this.fd, this.dataOffset(entry) + start, length, this.file, `zip entry '${entry.name}'`);
  }

  /** Close the file. Safe to call twice. */
  close(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
    this.inflated = null;
  }
}
