/**
 * Handlers for the plain-Python globals that protocol 2 pickles of ordinary containers name
 * (collections.OrderedDict, set, frozenset, bytes, bytearray, _codecs.encode), and for opaque
 * classes kept as inert objects. Each rebuilds a value as CPython's constructor would for the
 * arguments a pickler writes; none runs code, and each charges the work it does to the budget.
 */
import { GlobalHandler, HandlerContext, PyDict, PyList, PyObject, PySet, PyTuple, PyValue, typeName } from './values';

/** A handler building an opaque PyObject for both REDUCE and NEWOBJ (the class is never run). */
export function opaqueClass(className: string): GlobalHandler {
  const make = (args: PyValue[], ctx: HandlerContext): PyValue => {
    ctx.charge(args.length);
    return new PyObject(className, args);
  };
  return { call: make, newobj: make };
}

function iterableItems(v: PyValue, ctx: HandlerContext, what: string): PyValue[] {
  if (v instanceof PyList || v instanceof PyTuple || v instanceof PySet) {
    ctx.charge(v.items.length);
    return v.items;
  }
  return ctx.fail(`${what} expects a list or tuple, got ${typeName(v)}`);
}

/** collections.OrderedDict([(key, value), ...]) or OrderedDict(). */
export function orderedDict(args: PyValue[], ctx: HandlerContext): PyValue {
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

/** bytes() / bytearray(): empty, from bytes, from a list of ints, or (str, encoding). */
export function makeBytes(args: PyValue[], ctx: HandlerContext): PyValue {
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
export function codecsEncode(args: PyValue[], ctx: HandlerContext): PyValue {
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

/** set(iterable) / frozenset(iterable). */
export function makeSet(frozen: boolean): (args: PyValue[], ctx: HandlerContext) => PyValue {
  return (args, ctx) => {
    if (args.length === 0) return new PySet([], frozen);
    if (args.length !== 1) return ctx.fail('set() takes at most one argument');
    return new PySet([...iterableItems(args[0], ctx, 'set')], frozen);
  };
}
