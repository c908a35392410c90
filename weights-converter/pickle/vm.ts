/**
 * The restricted pickle virtual machine: Python pickle protocols 2-5, the opcodes of Lib/pickle.py
 * (`_Unpickler.dispatch`) that a tensor state dict needs. Like CPython's, it is a dispatch table of
 * one small handler per opcode, grouped by family below, over one machine state (stack, marks,
 * memo). Security invariants (see ./allowlist.ts for the names it may resolve):
 *
 * - Nothing is imported or called: GLOBAL / STACK_GLOBAL resolve "module.name" only through the
 *   allowlist given in the options, and any other name is refused with an UnsafePickleError before
 *   an object is built. Persistent ids (torch storages) go to a callback.
 * - The machine is a loop, not a recursion: nesting depth costs no native stack.
 * - Every length is checked against the bytes left before anything is allocated, and the work done
 *   (items moved, built or copied) is bounded by a multiple of the bytes consumed, so a hostile
 *   pickle can neither hang the reader nor make it allocate absurdly.
 */
import { CheckpointError, UnsafePickleError } from '../errors';
import { MAX_NAME, normaliseGlobalName } from './allowlist';
import { ByteSource } from './source';
import { GlobalHandler, HandlerContext, PyDict, PyFloat, PyGlobal, PyList, PyObject, PySet, PyTuple, PyValue, typeName } from './values';

export interface UnpickleOptions {
  /** Name of the file for error messages. */
  file: string;
  /** Allowlist: normalised "module.name" → handler. Anything else is refused. */
  globals: ReadonlyMap<string, GlobalHandler>;
  /** BINPERSID: resolve a persistent id (torch: a storage). Absent: persistent ids are an error. */
  persistentLoad?: (pid: PyValue, ctx: HandlerContext) => PyValue;
  /** Label for messages, e.g. "data.pkl". */
  label?: string;
}

const MAX_LONG_BYTES = 1024;
/** Work allowed per byte consumed, plus a constant for tiny pickles. */
const WORK_PER_BYTE = 64;
const WORK_BASE = 100000;
const utf8 = new TextDecoder('utf-8');
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Python's decode_long: little-endian two's complement; a number when it fits exactly. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

/** Opcodes of Lib/pickle.py that are deliberately not implemented, named in the error. */
const UNSUPPORTED: Readonly<Record<number, string>> = {
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4c: 'LONG',
  0x50: 'PERSID',
  0x53: 'STRING',
  0x56: 'UNICODE',
  0x67: 'GET',
  0x69: 'INST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const STOP = 0x2e;

/** One run of the machine: its state and the bounded readers every opcode handler uses. */
class Machine {
  readonly stack: PyValue[] = [];
  readonly marks: number[] = [];
  readonly memo = new Map<number, PyValue>();
  readonly label: string;
  readonly start: number;
  /** Position of the opcode being run, for messages. */
  opOffset: number;
  private work = 0;
  readonly ctx: HandlerContext;

  constructor(
    readonly src: ByteSource,
    readonly opts: UnpickleOptions,
  ) {
    this.label = opts.label ?? 'pickle';
    this.start = src.position;
    this.opOffset = this.start;
    const offset = () => this.opOffset - this.start;
    this.ctx = {
      file: opts.file,
      get offset() {
        return offset();
      },
      fail: (reason) => this.fail(reason),
      charge: (n) => this.charge(n),
      pendingKey: () => this.pendingKey(),
    };
  }

  pendingKey(): string | undefined {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const v = this.stack[i];
      if (!(v instanceof PyGlobal)) return typeof v === 'string' ? v : undefined;
    }
    return undefined;
  }

  fail(reason: string): never {
    throw new CheckpointError(this.opts.file, `corrupt ${this.label}: ${reason} at offset ${this.opOffset - this.start}`);
  }
  charge(n: number): void {
    this.work += n;
    if (this.work > WORK_PER_BYTE * (this.src.position - this.start) + WORK_BASE) {
      this.fail('too much work for the pickle size (hostile input?)');
    }
  }

  // Readers of opcode arguments: each checks the length against what is left first.
  need(n: number, what: string): void {
    if (!(n <= this.src.remaining)) {
      throw new CheckpointError(
        this.opts.file,
        `truncated ${this.label}: ${what} needs ${n} bytes but only ${this.src.remaining} remain at offset ${this.src.position - this.start}`,
      );
    }
  }
  u8(): number {
    this.need(1, 'argument');
    return this.src.byte();
  }
  le(n: number): Uint8Array {
    this.need(n, 'argument');
    return this.src.bytes(n);
  }
  u16(): number {
    const b = this.le(2);
    return b[0] | (b[1] << 8);
  }
  u32(): number {
    const b = this.le(4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }
  i32(): number {
    return this.u32() | 0;
  }
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    // Anything past 2^53 is more than any file holds: let the length check reject it.
    return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
  }
  str(n: number): string {
    this.need(n, 'string');
    return utf8.decode(this.src.bytes(n));
  }
  bytesCopy(n: number): Uint8Array {
    this.need(n, 'bytes');
    return this.src.bytes(n).slice();
  }
  /** A printable-ASCII line of at most MAX_NAME characters (GLOBAL's text arguments). */
  readLine(what: string): string {
    const chars: number[] = [];
    for (;;) {
      if (this.src.remaining < 1) this.need(1, what);
      const c = this.src.byte();
      if (c === 0x0a) break;
      if (chars.length >= MAX_NAME || c < 0x20 || c > 0x7e) this.fail(`malformed ${what}`);
      chars.push(c);
    }
    return String.fromCharCode(...chars);
  }

  // The stack: items below the innermost MARK are out of reach, as in CPython's metastack.
  floor(): number {
    return this.marks.length > 0 ? this.marks[this.marks.length - 1] : 0;
  }
  push(v: PyValue): void {
    this.stack.push(v);
  }
  pop(): PyValue {
    if (this.stack.length <= this.floor()) this.fail('stack underflow');
    return this.stack.pop() as PyValue;
  }
  top(): PyValue {
    if (this.stack.length <= this.floor()) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }
  popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail('MARK not found');
    const items = this.stack.splice(m);
    this.charge(items.length);
    return items;
  }

  setItems(d: PyValue, items: PyValue[]): void {
    if (!(d instanceof PyDict)) this.fail(`SETITEM(S) on ${typeName(d)}, expected a dict`);
    if (items.length % 2 !== 0) this.fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (k instanceof PyList || k instanceof PyDict || (k instanceof PySet && !k.frozen)) {
        this.fail(`unhashable dict key of type ${typeName(k)}`);
      }
      d.map.set(k, items[i + 1]);
    }
  }
  resolveGlobal(module: string, name: string): PyGlobal {
    if (module.length === 0 || name.length === 0 || module.length > MAX_NAME || name.length > MAX_NAME) {
      this.fail('malformed global name');
    }
    const normalised = normaliseGlobalName(module, name);
    const handler = this.opts.globals.get(normalised);
    if (handler === undefined) throw new UnsafePickleError(this.opts.file, `${module}.${name}`, this.opOffset - this.start);
    return new PyGlobal(normalised, handler);
  }
  asArgs(v: PyValue, what: string): PyValue[] {
    if (!(v instanceof PyTuple)) this.fail(`${what} arguments must be a tuple, got ${typeName(v)}`);
    return v.items;
  }
}

/** The handler of one opcode (its byte is passed for handlers shared by two opcodes). */
type Op = (m: Machine, op: number) => void;

/** PROTO, FRAME and the stack discipline (STOP is the loop's own). */
const STACK_OPS: Readonly<Record<number, Op>> = {
  0x80: (m: Machine) => {
    // PROTO
    const p = m.u8();
    if (p > 5) m.fail(`unsupported pickle protocol ${p}`);
  },
  // FRAME: a length hint; the frame must fit in what is left.
  0x95: (m: Machine) => m.need(m.u64(), 'FRAME'),
  0x28: (m: Machine) => void m.marks.push(m.stack.length), // MARK
  0x30: (m: Machine) => {
    // POP: the top item, or an empty MARK.
    if (m.stack.length > m.floor()) m.stack.pop();
    else if (m.marks.length > 0) m.marks.pop();
    else m.fail('stack underflow');
  },
  0x31: (m: Machine) => void m.popMark(), // POP_MARK
  0x32: (m: Machine) => m.push(m.top()), // DUP
};

/** Python's containers: dict, list, tuple, set, frozenset. */
const CONTAINER_OPS: Readonly<Record<number, Op>> = {
  0x7d: (m: Machine) => m.push(new PyDict()), // EMPTY_DICT
  0x64: (m: Machine) => {
    // DICT
    const d = new PyDict();
    m.setItems(d, m.popMark());
    m.push(d);
  },
  0x5d: (m: Machine) => m.push(new PyList([])), // EMPTY_LIST
  0x6c: (m: Machine) => m.push(new PyList(m.popMark())), // LIST
  0x29: (m: Machine) => m.push(new PyTuple([])), // EMPTY_TUPLE
  0x74: (m: Machine) => m.push(new PyTuple(m.popMark())), // TUPLE
  0x85: (m: Machine) => m.push(new PyTuple([m.pop()])), // TUPLE1
  0x86: (m: Machine) => {
    // TUPLE2
    const b = m.pop();
    const a = m.pop();
    m.push(new PyTuple([a, b]));
  },
  0x87: (m: Machine) => {
    // TUPLE3
    const c = m.pop();
    const b = m.pop();
    const a = m.pop();
    m.push(new PyTuple([a, b, c]));
  },
  0x61: (m: Machine) => {
    // APPEND
    const v = m.pop();
    const l = m.top();
    if (!(l instanceof PyList)) m.fail(`APPEND to ${typeName(l)}, expected a list`);
    l.items.push(v);
  },
  0x65: (m: Machine) => {
    // APPENDS
    const items = m.popMark();
    const l = m.top();
    if (!(l instanceof PyList)) m.fail(`APPENDS to ${typeName(l)}, expected a list`);
    for (const v of items) l.items.push(v);
  },
  0x73: (m: Machine) => {
    // SETITEM
    const v = m.pop();
    const k = m.pop();
    m.setItems(m.top(), [k, v]);
  },
  0x75: (m: Machine) => {
    // SETITEMS
    const items = m.popMark();
    m.setItems(m.top(), items);
  },
  0x8f: (m: Machine) => m.push(new PySet([], false)), // EMPTY_SET
  0x90: (m: Machine) => {
    // ADDITEMS
    const items = m.popMark();
    const s = m.top();
    if (!(s instanceof PySet) || s.frozen) m.fail(`ADDITEMS to ${typeName(s)}, expected a set`);
    for (const v of items) s.items.push(v);
  },
  0x91: (m: Machine) => m.push(new PySet(m.popMark(), true)), // FROZENSET
};

/** Numbers and constants. */
const SCALAR_OPS: Readonly<Record<number, Op>> = {
  0x4a: (m: Machine) => m.push(m.i32()), // BININT
  0x4b: (m: Machine) => m.push(m.u8()), // BININT1
  0x4d: (m: Machine) => m.push(m.u16()), // BININT2
  0x8a: (m: Machine) => m.push(decodeLong(m.le(m.u8()))), // LONG1
  0x8b: (m: Machine) => {
    // LONG4
    const n = m.i32();
    if (n < 0 || n > MAX_LONG_BYTES) m.fail(`LONG4 of ${n} bytes is not supported`);
    m.push(decodeLong(m.le(n)));
  },
  0x47: (m: Machine) => {
    // BINFLOAT: big-endian float64, a float even when integral (8.0 is no int)
    const b = m.le(8);
    m.push(new PyFloat(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false)));
  },
  0x4e: (m: Machine) => m.push(null), // NONE
  0x88: (m: Machine) => m.push(true), // NEWTRUE
  0x89: (m: Machine) => m.push(false), // NEWFALSE
};

/** Text and bytes; Python 2 str (SHORT_BINSTRING, BINSTRING) is read as UTF-8, as torch.load does. */
const TEXT_OPS: Readonly<Record<number, Op>> = {
  0x8c: (m: Machine) => m.push(m.str(m.u8())), // SHORT_BINUNICODE
  0x58: (m: Machine) => m.push(m.str(m.u32())), // BINUNICODE
  0x8d: (m: Machine) => m.push(m.str(m.u64())), // BINUNICODE8
  0x55: (m: Machine) => m.push(m.str(m.u8())), // SHORT_BINSTRING
  0x54: (m: Machine) => {
    // BINSTRING
    const n = m.i32();
    if (n < 0) m.fail('BINSTRING with a negative length');
    m.push(m.str(n));
  },
  0x43: (m: Machine) => m.push(m.bytesCopy(m.u8())), // SHORT_BINBYTES
  0x42: (m: Machine) => m.push(m.bytesCopy(m.u32())), // BINBYTES
  0x8e: (m: Machine) => m.push(m.bytesCopy(m.u64())), // BINBYTES8
  0x96: (m: Machine) => m.push(m.bytesCopy(m.u64())), // BYTEARRAY8
};

/** The memo: shared references. */
const MEMO_OPS: Readonly<Record<number, Op>> = {
  0x71: (m: Machine) => void m.memo.set(m.u8(), m.top()), // BINPUT
  0x72: (m: Machine) => void m.memo.set(m.u32(), m.top()), // LONG_BINPUT
  0x94: (m: Machine) => void m.memo.set(m.memo.size, m.top()), // MEMOIZE
  0x68: (m: Machine, op: number) => memoGet(m, op), // BINGET
  0x6a: (m: Machine, op: number) => memoGet(m, op), // LONG_BINGET
};

function memoGet(m: Machine, op: number): void {
  const i = op === 0x68 ? m.u8() : m.u32();
  const v = m.memo.get(i);
  if (v === undefined) m.fail(`memo key ${i} not found`);
  m.push(v);
}

/** Globals, calls and persistent ids: everything here goes through the allowlist or a callback. */
const OBJECT_OPS: Readonly<Record<number, Op>> = {
  0x63: (m: Machine) => {
    // GLOBAL "module\nname\n"
    const module = m.readLine('GLOBAL module');
    const name = m.readLine('GLOBAL name');
    m.push(m.resolveGlobal(module, name));
  },
  0x93: (m: Machine) => {
    // STACK_GLOBAL
    const name = m.pop();
    const module = m.pop();
    if (typeof module !== 'string' || typeof name !== 'string') m.fail('STACK_GLOBAL needs two strings');
    m.push(m.resolveGlobal(module, name));
  },
  0x52: (m: Machine) => {
    // REDUCE
    const args = m.pop();
    const f = m.pop();
    if (!(f instanceof PyGlobal)) m.fail(`REDUCE on ${typeName(f)}, which is not callable`);
    const call = f.handler.call;
    if (call === undefined) m.fail(`global '${f.name}' is not callable`);
    m.push(call(m.asArgs(args, f.name), m.ctx));
  },
  0x81: (m: Machine, op: number) => newObject(m, op), // NEWOBJ
  0x92: (m: Machine, op: number) => newObject(m, op), // NEWOBJ_EX
  0x62: (m: Machine) => {
    // BUILD: the state is stored, never applied by running __setstate__.
    const state = m.pop();
    const obj = m.top();
    if (obj instanceof PyObject || obj instanceof PyDict) obj.state = state;
    else m.fail(`BUILD on ${typeName(obj)}`);
  },
  0x51: (m: Machine) => {
    // BINPERSID
    const pid = m.pop();
    const load = m.opts.persistentLoad;
    if (load === undefined) m.fail('unexpected persistent id');
    m.push(load(pid, m.ctx));
  },
};

function newObject(m: Machine, op: number): void {
  let kwargs: PyDict | null = null;
  if (op === 0x92) {
    const k = m.pop();
    if (!(k instanceof PyDict)) m.fail('NEWOBJ_EX keyword arguments must be a dict');
    kwargs = k;
  }
  const args = m.pop();
  const cls = m.pop();
  if (!(cls instanceof PyGlobal)) m.fail(`NEWOBJ on ${typeName(cls)}, which is not a class`);
  const make = cls.handler.newobj;
  if (make === undefined) m.fail(`global '${cls.name}' cannot be instantiated`);
  m.push(make(m.asArgs(args, cls.name), m.ctx, kwargs));
}

/** Opcode byte → handler; undefined for unknown and unsupported opcodes. */
const DISPATCH: readonly (Op | undefined)[] = (() => {
  const table = new Array<Op | undefined>(256).fill(undefined);
  for (const family of [STACK_OPS, CONTAINER_OPS, SCALAR_OPS, TEXT_OPS, MEMO_OPS, OBJECT_OPS]) {
    for (const [code, op] of Object.entries(family)) table[Number(code)] = op;
  }
  return table;
})();

/** The opcodes the machine implements (for tests and documentation). */
export const SUPPORTED_OPCODES: readonly number[] = [STOP, ...DISPATCH.flatMap((op, code) => (op === undefined ? [] : [code]))].sort((a, b) => a - b);

/**
 * Run one pickle from `src` up to and including its STOP opcode and return the result.
 * `src` is left just after STOP, so consecutive pickles can be read from one source.
 */
export function unpickle(src: ByteSource, opts: UnpickleOptions): PyValue {
  const m = new Machine(src, opts);
  for (;;) {
    m.opOffset = src.position;
    if (src.remaining < 1) {
      throw new CheckpointError(opts.file, `truncated ${m.label}: ended at offset ${m.opOffset - m.start} without a STOP opcode`);
    }
    const op = src.byte();
    m.charge(1);
    if (op === STOP) {
      if (m.stack.length === 0) m.fail('STOP with an empty stack');
      return m.stack.pop() as PyValue;
    }
    const handler = DISPATCH[op];
    if (handler !== undefined) {
      handler(m, op);
      continue;
    }
    const name = UNSUPPORTED[op];
    m.fail(name !== undefined ? `unsupported pickle opcode ${name} (0x${op.toString(16)})` : `unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
  }
}
