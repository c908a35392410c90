/**
 * The values the restricted unpickler builds (see ./vm.ts), as plain TypeScript objects: Python's
 * containers, references to allowlisted globals, opaque objects that are kept but never run, and
 * the contract between the VM and the handlers of the allowlist (./allowlist.ts).
 * Mirrors the types Lib/pickle.py produces for a tensor state dict; nothing here can execute code.
 */

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
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyTuple | PyList | PyDict | PySet | PyGlobal | PyObject | PyCustom;

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
