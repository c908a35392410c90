/**
 * A restricted unpickler (Python pickle protocols 2-5, the opcodes of Lib/pickle.py that a tensor
 * state dict needs). It never imports or calls anything: GLOBAL / STACK_GLOBAL resolve "module.name"
 * only through an allowlist of pure TypeScript handlers, and any other name is refused with an
 * UnsafePickleError before an object is built. Persistent ids (torch storages) go to a callback.
 *
 * The VM is a loop, not a recursion. Every length is checked against the bytes left before anything
 * is allocated, and the work done (items moved, built or copied) is bounded by a multiple of the
 * bytes consumed, so a hostile pickle can neither hang the reader nor make it allocate absurdly.
 */
import { CheckpointError, UnsafePickleError } from './errors';

/** A Python tuple. */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python list. */
export class PyList {
  constructor(readonly items: PyValue[]) {}
}

/** A Python dict or OrderedDict, in insertion order. */
export class PyDict {
  readonly map = new Map<PyValue, PyValue>();
  /** State given by BUILD (an OrderedDict state dict carries {'_metadata': ...} here). */
  state: PyValue | undefined = undefined;
  constructor(readonly className: string = 'dict') {}
}

/** A Python set or frozenset (items only; no hashing semantics). */
export class PySet {
  constructor(
    readonly items: PyValue[],
    readonly frozen: boolean,
  ) {}
}

/** A reference to an allowlisted global (a class, function or constant), by normalised name. */
export class PyGlobal {
  constructor(
    readonly name: string,
    readonly handler: GlobalHandler,
  ) {}
}

/** An opaque object of an allowlisted class (argparse.Namespace, numpy scalars...): kept, never run. */
export class PyObject {
  /** State given by BUILD, if any. */
  state: PyValue | undefined = undefined;
  constructor(
    readonly className: string,
    readonly args: PyValue[],
  ) {}
}

/** Base class of values produced by handlers (torch storages and tensors). */
export abstract class PyCustom {
  /** A short description for error messages, e.g. "tensor float32[2, 3]". */
  abstract describe(): string;
}

/** Any value the unpickler can produce. Python int and float are both `number` (bigint beyond 2^53). */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyTuple
  | PyList
  | PyDict
  | PySet
  | PyGlobal
  | PyObject
  | PyCustom;

/** What a handler may use: the file (for errors), the opcode offset, and the work budget. */
export interface HandlerContext {
  readonly file: string;
  readonly offset: number;
  /** Throw a CheckpointError mentioning the pickle offset. */
  fail(reason: string): never;
  /** Account for `n` units of work (items copied); throws when the budget is exceeded. */
  charge(n: number): void;
}

/** How an allowlisted global behaves. A global with neither function is an inert constant or type. */
export interface GlobalHandler {
  /** REDUCE: the global called with positional args. */
  call?: (args: PyValue[], ctx: HandlerContext) => PyValue;
  /** NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args, **kwargs). */
  newobj?: (args: PyValue[], ctx: HandlerContext, kwargs: PyDict | null) => PyValue;
}

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

/** A short Python-like type name for messages. */
export function typeName(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'bigint':
      return 'int';
    case 'string':
      return 'str';
  }
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyList) return 'list';
  if (v instanceof PyDict) return v.className;
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set';
  if (v instanceof PyGlobal) return `global '${v.name}'`;
  if (v instanceof PyObject) return `'${v.className}' object`;
  return v.describe();
}

/** Module renames applied before the allowlist lookup (Python 2 names, torch's own rename). */
const MODULE_ALIASES: Readonly<Record<string, string>> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  'torch.tensor': 'torch._tensor',
};

const MAX_NAME = 256;
const MAX_LONG_BYTES = 1024;
const utf8 = new TextDecoder('utf-8');
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

const OPNAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4c: 'LONG', 0x50: 'PERSID', 0x53: 'STRING', 0x56: 'UNICODE', 0x67: 'GET', 0x69: 'INST',
  0x6f: 'OBJ', 0x70: 'PUT', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

/**
 * Run one pickle from `src` up to and including its STOP opcode and return the result.
 * `src` is left just after STOP, so consecutive pickles can be read from one source.
 */
export function unpickle(src: ByteSource, opts: UnpickleOptions): PyValue {
  const { file } = opts;
  const label = opts.label ?? 'pickle';
  const start = src.position;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let opOffset = start;
  let work = 0;

  const fail = (reason: string): never => {
    throw new CheckpointError(file, `corrupt ${label}: ${reason} at offset ${opOffset - start}`);
  };
  const charge = (n: number): void => {
    work += n;
    if (work > 64 * (src.position - start) + 100000) fail('too much work for the pickle size (hostile input?)');
  };
  const ctx: HandlerContext = {
    file,
    get offset() {
      return opOffset - start;
    },
    fail,
    charge,
  };

  const need = (n: number, what: string): void => {
    if (!(n <= src.remaining)) {
      throw new CheckpointError(
        file,
        `truncated ${label}: ${what} needs ${n} bytes but only ${src.remaining} remain at offset ${src.position - start}`,
      );
    }
  };
  const u8 = (): number => {
    need(1, 'argument');
    return src.byte();
  };
  const le = (n: number): Uint8Array => {
    need(n, 'argument');
    return src.bytes(n);
  };
  const u16 = (): number => {
    const b = le(2);
    return b[0] | (b[1] << 8);
  };
  const u32 = (): number => {
    const b = le(4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  };
  const i32 = (): number => u32() | 0;
  const u64 = (): number => {
    const lo = u32();
    const hi = u32();
    // Anything past 2^53 is more than any file holds: let the length check reject it.
    return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
  };
  const str = (n: number): string => {
    need(n, 'string');
    return utf8.decode(src.bytes(n));
  };
  const bytesCopy = (n: number): Uint8Array => {
    need(n, 'bytes');
    return src.bytes(n).slice();
  };
  const readLine = (what: string): string => {
    const chars: number[] = [];
    for (;;) {
      if (src.remaining < 1) need(1, what);
      const c = src.byte();
      if (c === 0x0a) break;
      if (chars.length >= MAX_NAME || c < 0x20 || c > 0x7e) fail(`malformed ${what}`);
      chars.push(c);
    }
    return String.fromCharCode(...chars);
  };

  const floor = (): number => (marks.length > 0 ? marks[marks.length - 1] : 0);
  const push = (v: PyValue): void => {
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('MARK not found');
    const items = stack.splice(m as number);
    charge(items.length);
    return items;
  };
  const checkKey = (k: PyValue): void => {
    if (k instanceof PyList || k instanceof PyDict || (k instanceof PySet && !k.frozen)) {
      fail(`unhashable dict key of type ${typeName(k)}`);
    }
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on ${typeName(d)}, expected a dict`);
    const dict = d as PyDict;
    if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) {
      checkKey(items[i]);
      dict.map.set(items[i], items[i + 1]);
    }
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    if (module.length === 0 || name.length === 0 || module.length > MAX_NAME || name.length > MAX_NAME) {
      fail('malformed global name');
    }
    const full = `${module}.${name}`;
    const normalised = `${MODULE_ALIASES[module] ?? module}.${name}`;
    const handler = opts.globals.get(normalised);
    if (handler === undefined) throw new UnsafePickleError(file, full, opOffset - start);
    return new PyGlobal(normalised, handler);
  };
  const asArgs = (v: PyValue, what: string): PyValue[] => {
    if (!(v instanceof PyTuple)) fail(`${what} arguments must be a tuple, got ${typeName(v)}`);
    return (v as PyTuple).items;
  };

  for (;;) {
    opOffset = src.position;
    if (src.remaining < 1) {
      throw new CheckpointError(file, `truncated ${label}: ended at offset ${opOffset - start} without a STOP opcode`);
    }
    const op = src.byte();
    charge(1);
    switch (op) {
      case 0x80: {
        // PROTO
        const p = u8();
        if (p > 5) fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case 0x95: {
        // FRAME: a length hint; the frame must fit in what is left.
        const n = u64();
        need(n, 'FRAME');
        break;
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x2e: {
        // STOP
        if (stack.length === 0) fail('STOP with an empty stack');
        return stack.pop() as PyValue;
      }
      case 0x30: // POP
        if (stack.length > floor()) stack.pop();
        else if (marks.length > 0) marks.pop();
        else fail('stack underflow');
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(new PyList([]));
        break;
      case 0x6c: // LIST
        push(new PyList(popMark()));
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b, c]));
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!(l instanceof PyList)) fail(`APPEND to ${typeName(l)}, expected a list`);
        (l as PyList).items.push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!(l instanceof PyList)) fail(`APPENDS to ${typeName(l)}, expected a list`);
        for (const v of items) (l as PyList).items.push(v);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new PySet([], false));
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet) || s.frozen) fail(`ADDITEMS to ${typeName(s)}, expected a set`);
        for (const v of items) (s as PySet).items.push(v);
        break;
      }
      case 0x91: // FROZENSET
        push(new PySet(popMark(), true));
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: {
        // LONG1
        const n = u8();
        push(decodeLong(le(n)));
        break;
      }
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0 || n > MAX_LONG_BYTES) fail(`LONG4 of ${n} bytes is not supported`);
        push(decodeLong(le(n)));
        break;
      }
      case 0x47: {
        // BINFLOAT: big-endian float64
        const b = le(8);
        push(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false));
        break;
      }
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(str(u8()));
        break;
      case 0x58: // BINUNICODE
        push(str(u32()));
        break;
      case 0x8d: // BINUNICODE8
        push(str(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str, read as UTF-8 as torch.load does)
        push(str(u8()));
        break;
      case 0x54: {
        // BINSTRING
        const n = i32();
        if (n < 0) fail('BINSTRING with a negative length');
        push(str(n));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        push(bytesCopy(u8()));
        break;
      case 0x42: // BINBYTES
        push(bytesCopy(u32()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(bytesCopy(u64()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        const v = memo.get(i);
        if (v === undefined) fail(`memo key ${i} not found`);
        push(v as PyValue);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = readLine('GLOBAL module');
        const name = readLine('GLOBAL name');
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const f = pop();
        if (!(f instanceof PyGlobal)) fail(`REDUCE on ${typeName(f)}, which is not callable`);
        const g = f as PyGlobal;
        if (g.handler.call === undefined) fail(`global '${g.name}' is not callable`);
        push(g.handler.call!(asArgs(args, g.name), ctx));
        break;
      }
      case 0x81: // NEWOBJ
      case 0x92: {
        // NEWOBJ_EX
        let kwargs: PyDict | null = null;
        if (op === 0x92) {
          const k = pop();
          if (!(k instanceof PyDict)) fail('NEWOBJ_EX keyword arguments must be a dict');
          kwargs = k as PyDict;
        }
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal)) fail(`NEWOBJ on ${typeName(cls)}, which is not a class`);
        const g = cls as PyGlobal;
        if (g.handler.newobj === undefined) fail(`global '${g.name}' cannot be instantiated`);
        push(g.handler.newobj!(asArgs(args, g.name), ctx, kwargs));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject || obj instanceof PyDict) obj.state = state;
        else fail(`BUILD on ${typeName(obj)}`);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (opts.persistentLoad === undefined) fail('unexpected persistent id');
        push(opts.persistentLoad!(pid, ctx));
        break;
      }
      default: {
        const name = OPNAMES[op];
        fail(
          name !== undefined
            ? `unsupported pickle opcode ${name} (0x${op.toString(16)})`
            : `unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`,
        );
      }
    }
  }
}

/** A handler building an opaque PyObject for both REDUCE and NEWOBJ (the class is never run). */
export function opaqueClass(className: string): GlobalHandler {
  const make = (args: PyValue[], ctx: HandlerContext): PyValue => {
    ctx.charge(args.length);
    return new PyObject(className, args);
  };
  return { call: make, newobj: make };
}

function iterableItems(v: PyValue, ctx: HandlerContext, what: string): PyValue[] {
  if (v instanceof PyList || v instanceof PyTuple) {
    ctx.charge(v.items.length);
    return v.items;
  }
  if (v instanceof PySet) {
    ctx.charge(v.items.length);
    return v.items;
  }
  return ctx.fail(`${what} expects a list or tuple, got ${typeName(v)}`);
}

function orderedDict(args: PyValue[], ctx: HandlerContext): PyValue {
  const d = new PyDict('collections.OrderedDict');
  if (args.length > 1) ctx.fail('OrderedDict takes at most one argument');
  if (args.length === 1 && args[0] !== null) {
    for (const pair of iterableItems(args[0], ctx, 'OrderedDict')) {
      if (!(pair instanceof PyTuple || pair instanceof PyList) || pair.items.length !== 2) {
        ctx.fail('OrderedDict items must be (key, value) pairs');
      }
      const [k, v] = (pair as PyTuple).items;
      d.map.set(k, v);
    }
  }
  return d;
}

function makeBytes(args: PyValue[], ctx: HandlerContext): PyValue {
  if (args.length === 0) return new Uint8Array(0);
  if (args.length === 1 && args[0] instanceof Uint8Array) {
    ctx.charge(args[0].length);
    return args[0].slice();
  }
  if (args.length === 1 && (args[0] instanceof PyList || args[0] instanceof PyTuple)) {
    const items = iterableItems(args[0], ctx, 'bytes');
    const out = new Uint8Array(items.length);
    items.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) ctx.fail('bytes() item out of range');
      out[i] = v as number;
    });
    return out;
  }
  if (args.length === 2) return codecsEncode(args, ctx);
  return ctx.fail('unsupported bytes() arguments');
}

/** _codecs.encode(text, 'latin1'): how protocol 2 stores Python 3 bytes. */
function codecsEncode(args: PyValue[], ctx: HandlerContext): PyValue {
  const [text, encoding] = args;
  if (args.length !== 2 || typeof text !== 'string' || typeof encoding !== 'string') {
    ctx.fail('_codecs.encode expects (str, encoding)');
  }
  const t = text as string;
  ctx.charge(t.length);
  const enc = (encoding as string).toLowerCase().replace('_', '-');
  if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') {
    const out = new Uint8Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c > 255) ctx.fail('_codecs.encode: character outside latin-1');
      out[i] = c;
    }
    return out;
  }
  if (enc === 'utf-8' || enc === 'utf8' || enc === 'ascii') return new Uint8Array(Buffer.from(t, 'utf8'));
  return ctx.fail(`_codecs.encode: unsupported encoding '${encoding as string}'`);
}

function makeSet(frozen: boolean) {
  return (args: PyValue[], ctx: HandlerContext): PyValue => {
    if (args.length === 0) return new PySet([], frozen);
    if (args.length !== 1) return ctx.fail('set() takes at most one argument');
    return new PySet([...iterableItems(args[0], ctx, 'set')], frozen);
  };
}

/**
 * Plain-Python globals that protocol 2 pickles of ordinary containers use; none can run code.
 * (Names are normalised: __builtin__ → builtins, copy_reg → copyreg.)
 */
export const BASE_GLOBALS: ReadonlyMap<string, GlobalHandler> = new Map<string, GlobalHandler>([
  ['collections.OrderedDict', { call: orderedDict, newobj: (_a, ctx) => orderedDict([], ctx) }],
  ['builtins.set', { call: makeSet(false) }],
  ['builtins.frozenset', { call: makeSet(true) }],
  ['builtins.bytes', { call: makeBytes }],
  ['builtins.bytearray', { call: makeBytes }],
  ['_codecs.encode', { call: codecsEncode }],
]);
