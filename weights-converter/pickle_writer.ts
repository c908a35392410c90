/**
 * A pickle writer (protocol 2) for what torch.save puts in a checkpoint's data.pkl, restricted to
 * the opcodes and globals that torch.load(f, weights_only=True) accepts (torch/_weights_only_unpickler.py):
 * GLOBAL only for allowlisted names (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch.FloatStorage / torch.HalfStorage), REDUCE on those, BINPERSID for storages, MARK / TUPLE* /
 * EMPTY_* / SETITEMS / APPENDS, BININT* / LONG1, BINUNICODE, NEWTRUE / NEWFALSE / NONE. No floats
 * (that unpickler has no BINFLOAT), no memo (it is optional), no FRAME (protocol 4 only).
 *
 * The value model is tiny on purpose: what a state dict needs and nothing callable beyond it.
 */

/** A module-level name, e.g. new PickleGlobal('collections', 'OrderedDict'). */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}

/** `callable(*args)` at load time (the REDUCE opcode). */
export class PickleReduce {
  constructor(
    readonly callable: PickleGlobal,
    readonly args: PickleTuple,
  ) {}
}

/** A tuple (lists are JS arrays). */
export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A persistent id (BINPERSID): the loader's persistent_load resolves it (torch: a storage). */
export class PicklePersistentId {
  constructor(readonly id: PickleTuple) {}
}

/** A dict, keys in insertion order; `ordered` makes it collections.OrderedDict(). */
export class PickleDict {
  constructor(
    readonly entries: readonly [string, PickleValue][],
    readonly ordered = false,
  ) {}
}

export type PickleValue =
  null | boolean | number | bigint | string | PickleGlobal | PickleReduce | PickleTuple | PicklePersistentId | PickleDict | readonly PickleValue[];

const OP = {
  PROTO: 0x80,
  STOP: 0x2e, // .
  MARK: 0x28, // (
  NONE: 0x4e, // N
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BINFLOAT: 0x47, // G: 8-byte big-endian double
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  LONG1: 0x8a,
  BINUNICODE: 0x58, // X
  GLOBAL: 0x63, // c
  REDUCE: 0x52, // R
  BINPERSID: 0x51, // Q
  EMPTY_TUPLE: 0x29, // )
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  TUPLE: 0x74, // t
  EMPTY_LIST: 0x5d, // ]
  APPENDS: 0x65, // e
  EMPTY_DICT: 0x7d, // }
  SETITEMS: 0x75, // u
} as const;

/** pickle's own batch size for SETITEMS / APPENDS. */
const BATCH = 1000;

class Out {
  private chunks: Buffer[] = [];
  byte(b: number): void {
    this.chunks.push(Buffer.from([b]));
  }
  bytes(b: Buffer): void {
    this.chunks.push(b);
  }
  result(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeInt(out: Out, v: number | bigint): void {
  const n = BigInt(v);
  if (n >= 0n && n < 256n) {
    out.bytes(Buffer.from([OP.BININT1, Number(n)]));
  } else if (n >= 0n && n < 65536n) {
    const b = Buffer.alloc(3);
    b[0] = OP.BININT2;
    b.writeUInt16LE(Number(n), 1);
    out.bytes(b);
  } else if (n >= -(2n ** 31n) && n < 2n ** 31n) {
    const b = Buffer.alloc(5);
    b[0] = OP.BININT;
    b.writeInt32LE(Number(n), 1);
    out.bytes(b);
  } else {
    // LONG1: little-endian two's complement, shortest form.
    const bytes: number[] = [];
    let x = n;
    for (;;) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      const top = bytes[bytes.length - 1];
      if ((x === 0n && (top & 0x80) === 0) || (x === -1n && (top & 0x80) !== 0)) break;
    }
    out.bytes(Buffer.from([OP.LONG1, bytes.length, ...bytes]));
  }
}

function writeString(out: Out, s: string): void {
  const body = Buffer.from(s, 'utf8');
  const head = Buffer.alloc(5);
  head[0] = OP.BINUNICODE;
  head.writeUInt32LE(body.length, 1);
  out.bytes(head);
  out.bytes(body);
}

function writeGlobal(out: Out, g: PickleGlobal): void {
  if (/\n/.test(g.module + g.name)) throw new Error(`pickle global ${g.module}.${g.name}: newline in name`);
  out.byte(OP.GLOBAL);
  out.bytes(Buffer.from(`${g.module}\n${g.name}\n`, 'utf8'));
}

function writeTuple(out: Out, t: PickleTuple): void {
  const n = t.items.length;
  if (n === 0) return out.byte(OP.EMPTY_TUPLE);
  if (n > 3) out.byte(OP.MARK);
  t.items.forEach((v) => writeValue(out, v));
  out.byte(n === 1 ? OP.TUPLE1 : n === 2 ? OP.TUPLE2 : n === 3 ? OP.TUPLE3 : OP.TUPLE);
}

function writeValue(out: Out, v: PickleValue): void {
  if (v === null) out.byte(OP.NONE);
  else if (v === true) out.byte(OP.NEWTRUE);
  else if (v === false) out.byte(OP.NEWFALSE);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) writeInt(out, v);
    else {
      const b = Buffer.alloc(9);
      b[0] = OP.BINFLOAT;
      b.writeDoubleBE(v, 1);
      out.bytes(b);
    }
  } else if (typeof v === 'bigint') writeInt(out, v);
  else if (typeof v === 'string') writeString(out, v);
  else if (v instanceof PickleGlobal) writeGlobal(out, v);
  else if (v instanceof PickleTuple) writeTuple(out, v);
  else if (v instanceof PickleReduce) {
    writeGlobal(out, v.callable);
    writeTuple(out, v.args);
    out.byte(OP.REDUCE);
  } else if (v instanceof PicklePersistentId) {
    writeTuple(out, v.id);
    out.byte(OP.BINPERSID);
  } else if (v instanceof PickleDict) {
    if (v.ordered) {
      writeGlobal(out, new PickleGlobal('collections', 'OrderedDict'));
      out.byte(OP.EMPTY_TUPLE);
      out.byte(OP.REDUCE);
    } else out.byte(OP.EMPTY_DICT);
    for (let i = 0; i < v.entries.length; i += BATCH) {
      out.byte(OP.MARK);
      for (const [k, val] of v.entries.slice(i, i + BATCH)) {
        writeString(out, k);
        writeValue(out, val);
      }
      out.byte(OP.SETITEMS);
    }
  } else if (Array.isArray(v)) {
    out.byte(OP.EMPTY_LIST);
    for (let i = 0; i < v.length; i += BATCH) {
      out.byte(OP.MARK);
      v.slice(i, i + BATCH).forEach((x) => writeValue(out, x));
      out.byte(OP.APPENDS);
    }
  } else throw new Error('pickle: unsupported value');
}

/** Serialises `v` as a protocol-2 pickle. */
export function pickle(v: PickleValue): Buffer {
  const out = new Out();
  out.bytes(Buffer.from([OP.PROTO, 2]));
  writeValue(out, v);
  out.byte(OP.STOP);
  return out.result();
}
