/**
 * The values the restricted unpickler builds (see ./vm.ts), as plain TypeScript objects: Python's
 * containers, references to allowlisted globals, opaque objects that are kept but never run, and
 * the contract between the VM and the handlers of the allowlist (./allowlist.ts).
 * Mirrors the types Lib/pickle.py produces for a tensor state dict; nothing here can execute code.
 */

/**
 * A Python float (BINFLOAT), kept apart from int as Python keeps them: int is a plain `number`, so a
 * pickled `8.0` in a tensor's size stays a float, which torch refuses, instead of becoming the int 8.
 */
export class PyFloat {
  constructor(readonly value: number) {}
  /** Python's repr: 8.0, 1.5, 1e-07, 1e+16, inf, nan (JavaScript's `8` would pass for an int). */
  repr(): string {
    const x = this.value;
    if (Number.isNaN(x)) return 'nan';
    if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
    // Both languages print the shortest round-trip digits; Python goes exponential below 1e-4 and from 1e16.
    const [digits, exp] = x.toExponential().split('e');
    const e = Number(exp);
    if (x !== 0 && (e < -4 || e >= 16)) return `${digits}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
    const fixed = Object.is(x, -0) ? '-0' : String(x);
    return Number.isInteger(x) ? `${fixed}.0` : fixed;
  }
}

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

/** Any value the unpickler can produce. A Python int is a `number` (bigint beyond 2^53), a float a PyFloat. */
export type PyValue = null | boolean | number | bigint | PyFloat | string | Uint8Array | PyTuple | PyList | PyDict | PySet | PyGlobal | PyObject | PyCustom;

/** What a handler may use: the file (for errors), the opcode offset, and the work budget. */
export interface HandlerContext {
  readonly file: string;
  readonly offset: number;
  /** Throw a CheckpointError mentioning the pickle offset. */
  fail(reason: string): never;
  /** Account for `n` units of work (items copied); throws when the budget is exceeded. */
  charge(n: number): void;
  /**
   * The state-dict key the value being built will most likely be stored under (torch.save's
   * layout: the nearest str below it on the stack, past globals), for messages only; a guess.
   */
  pendingKey(): string | undefined;
}

/** How an allowlisted global behaves. A global with neither function is an inert constant or type. */
export interface GlobalHandler {
  /** REDUCE: the global called with positional args. */
  call?: (args: PyValue[], ctx: HandlerContext) => PyValue;
  /** NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args, **kwargs). */
  newobj?: (args: PyValue[], ctx: HandlerContext, kwargs: PyDict | null) => PyValue;
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
  if (v instanceof PyFloat) return 'float';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyList) return 'list';
  if (v instanceof PyDict) return v.className;
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set';
  if (v instanceof PyGlobal) return `global '${v.name}'`;
  if (v instanceof PyObject) return `'${v.className}' object`;
  return v.describe();
}
