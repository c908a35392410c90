/** weights-converter/pickle/vm.ts: the opcodes against CPython's pickles, malformed input, bounds. */
import * as fs from 'fs';
import { expect } from 'chai';
import { CheckpointError } from '../../../weights-converter/errors';
import { BASE_GLOBALS } from '../../../weights-converter/pickle/allowlist';
import { BufferSource } from '../../../weights-converter/pickle/source';
import { PyDict, PyFloat, PyList, PySet, PyTuple, PyValue } from '../../../weights-converter/pickle/values';
import { SUPPORTED_OPCODES, unpickle } from '../../../weights-converter/pickle/vm';
import { PickleBuilder, expectCheckpointError, fixture } from '../helpers';

/** The JSON form written by make_checkpoint_fixtures.py's js(). */
type J = null | boolean | number | string | J[] | { [k: string]: J };

function toJS(v: PyValue): J {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { int: v.toString() };
  if (typeof v === 'number') return v;
  if (v instanceof PyFloat) return Number.isFinite(v.value) ? v.value : { float: v.repr() };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (v instanceof PyTuple) return { tuple: v.items.map(toJS) };
  if (v instanceof PyList) return v.items.map(toJS);
  if (v instanceof PySet) return { set: v.items.map(toJS).sort() as J[] };
  if (v instanceof PyDict) return { dict: [...v.map].map(([k, x]) => [toJS(k), toJS(x)]) };
  throw new Error(`unexpected ${String(v)}`);
}

function load(bytes: Uint8Array): PyValue {
  return unpickle(new BufferSource(bytes), { file: 't.pkl', globals: BASE_GLOBALS });
}

describe('weights-converter/pickle/vm', () => {
  const fx = JSON.parse(fs.readFileSync(fixture('pickles.json'), 'utf8')) as { expected: J; pickles: Record<string, string> };

  for (const proto of ['2', '3', '4', '5']) {
    it(`decodes a CPython protocol ${proto} pickle to the same values`, () => {
      const v = load(Buffer.from(fx.pickles[proto], 'hex'));
      expect(toJS(v)).to.deep.equal(fx.expected);
    });
  }

  it('keeps shared references shared (memo) and OrderedDict order', () => {
    const v = load(Buffer.from(fx.pickles['4'], 'hex')) as PyDict;
    const shared = v.map.get('shared') as PyList;
    expect(shared.items[0]).to.equal(shared.items[1]);
    const od = v.map.get('od') as PyDict;
    expect(od.className).to.equal('collections.OrderedDict');
    expect([...od.map.keys()]).to.deep.equal(['z', 'a']);
  });

  it('reads consecutive pickles from one source', () => {
    const a = new PickleBuilder().proto().int(1).stop().bytes();
    const b = new PickleBuilder().proto().str('two').stop().bytes();
    const src = new BufferSource(Buffer.concat([a, b]));
    expect(unpickle(src, { file: 'f', globals: BASE_GLOBALS })).to.equal(1);
    expect(unpickle(src, { file: 'f', globals: BASE_GLOBALS })).to.equal('two');
    expect(src.remaining).to.equal(0);
  });

  it('reads Python 2 strings (SHORT_BINSTRING, BINSTRING) as text', () => {
    const p = new PickleBuilder().proto().raw(0x55, 2, 0x68, 0x69).raw(0x54, 1, 0, 0, 0, 0x21).raw(0x86).stop().bytes();
    expect(toJS(load(p))).to.deep.equal({ tuple: ['hi', '!'] });
  });

  it('BINFLOAT is a float even when integral (8.0 is not the int 8); ints stay numbers', () => {
    const t = load(new PickleBuilder().proto().mark().float(8).float(-2.5).int(8).tuple().stop().bytes()) as PyTuple;
    expect(t.items[0]).to.be.instanceOf(PyFloat);
    expect((t.items[0] as PyFloat).repr()).to.equal('8.0');
    expect((t.items[1] as PyFloat).value).to.equal(-2.5);
    expect(t.items[2]).to.equal(8);
  });

  it("integers: BININT1/2/4 and LONG1 beyond 2^53 become bigint, negatives in two's complement", () => {
    // (255, 65535, -2, 2**64 + 1, -1)
    const p = new PickleBuilder()
      .proto()
      .mark()
      .raw(0x4b, 0xff)
      .raw(0x4d, 0xff, 0xff)
      .raw(0x4a, 0xfe, 0xff, 0xff, 0xff)
      .raw(0x8a, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1)
      .raw(0x8a, 1, 0xff)
      .tuple()
      .stop()
      .bytes();
    const t = load(p) as PyTuple;
    expect(t.items).to.deep.equal([255, 65535, -2, 2n ** 64n + 1n, -1]);
  });

  it('POP removes an empty MARK; DUP and memo copies are the same object', () => {
    const p = new PickleBuilder().proto().emptyList().mark().raw(0x30).raw(0x32).raw(0x86).stop().bytes();
    const t = load(p) as PyTuple;
    expect(t.items).to.have.length(2);
    expect(t.items[0]).to.equal(t.items[1]);
  });

  it('dispatches exactly the opcodes a protocol 2-5 state dict needs', () => {
    // Lib/pickle.py names; the text protocol 0 forms (INT, STRING, GET...), the extension registry
    // (EXT1-4) and out-of-band buffers are refused as unsupported.
    const expected = {
      MARK: 0x28,
      EMPTY_TUPLE: 0x29,
      STOP: 0x2e,
      POP: 0x30,
      POP_MARK: 0x31,
      DUP: 0x32,
      BINBYTES: 0x42,
      SHORT_BINBYTES: 0x43,
      BINFLOAT: 0x47,
      BININT: 0x4a,
      BININT1: 0x4b,
      BININT2: 0x4d,
      NONE: 0x4e,
      BINPERSID: 0x51,
      REDUCE: 0x52,
      BINSTRING: 0x54,
      SHORT_BINSTRING: 0x55,
      BINUNICODE: 0x58,
      EMPTY_LIST: 0x5d,
      APPEND: 0x61,
      BUILD: 0x62,
      GLOBAL: 0x63,
      DICT: 0x64,
      APPENDS: 0x65,
      BINGET: 0x68,
      LONG_BINGET: 0x6a,
      LIST: 0x6c,
      BINPUT: 0x71,
      LONG_BINPUT: 0x72,
      SETITEM: 0x73,
      TUPLE: 0x74,
      SETITEMS: 0x75,
      EMPTY_DICT: 0x7d,
      PROTO: 0x80,
      NEWOBJ: 0x81,
      TUPLE1: 0x85,
      TUPLE2: 0x86,
      TUPLE3: 0x87,
      NEWTRUE: 0x88,
      NEWFALSE: 0x89,
      LONG1: 0x8a,
      LONG4: 0x8b,
      SHORT_BINUNICODE: 0x8c,
      BINUNICODE8: 0x8d,
      BINBYTES8: 0x8e,
      EMPTY_SET: 0x8f,
      ADDITEMS: 0x90,
      FROZENSET: 0x91,
      NEWOBJ_EX: 0x92,
      STACK_GLOBAL: 0x93,
      MEMOIZE: 0x94,
      FRAME: 0x95,
      BYTEARRAY8: 0x96,
    };
    expect(SUPPORTED_OPCODES).to.deep.equal(Object.values(expected).sort((a, b) => a - b));
  });

  describe('malformed pickles are CheckpointErrors with the offset', () => {
    const cases: [string, number[], RegExp][] = [
      ['empty input', [], /truncated t\.pkl|truncated pickle: ended at offset 0 without a STOP opcode/],
      ['unknown opcode', [0x80, 2, 0xff], /unknown pickle opcode 0xff at offset 2/],
      ['unsupported opcode', [0x80, 2, 0x69], /unsupported pickle opcode INST \(0x69\) at offset 2/],
      ['protocol 6', [0x80, 6, 0x4e, 0x2e], /unsupported pickle protocol 6/],
      ['stack underflow', [0x80, 2, 0x85], /stack underflow at offset 2/],
      ['underflow across a MARK', [0x80, 2, 0x4e, 0x28, 0x85], /stack underflow at offset 4/],
      ['no STOP', [0x80, 2, 0x4e], /ended at offset 3 without a STOP opcode/],
      ['STOP on empty stack', [0x80, 2, 0x2e], /STOP with an empty stack/],
      ['memo miss', [0x80, 2, 0x68, 9, 0x2e], /memo key 9 not found/],
      ['truncated BININT', [0x80, 2, 0x4a, 1, 2], /BININT|argument needs 4 bytes but only 2 remain/],
      ['string longer than the input', [0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41], /string needs 2147483647 bytes but only 1 remain/],
      ['BINUNICODE8 of 2^60 bytes', [0x80, 4, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x10], /needs \d+ bytes but only 0 remain/],
      ['BINBYTES8 of 2^63 bytes', [0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80], /needs \d+ bytes but only 0 remain/],
      ['FRAME past the end', [0x80, 4, 0x95, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0x2e], /FRAME needs 255 bytes/],
      ['LONG4 too long', [0x80, 2, 0x8b, 0xff, 0xff, 0, 0], /LONG4 of 65535 bytes is not supported/],
      ['APPEND to a dict', [0x80, 2, 0x7d, 0x4e, 0x61, 0x2e], /APPEND to dict, expected a list/],
      ['SETITEM on a list', [0x80, 2, 0x5d, 0x4e, 0x4e, 0x73, 0x2e], /SETITEM\(S\) on list, expected a dict/],
      ['odd SETITEMS', [0x80, 2, 0x7d, 0x28, 0x4e, 0x75, 0x2e], /odd number of items/],
      ['unhashable key', [0x80, 2, 0x7d, 0x5d, 0x4e, 0x73, 0x2e], /unhashable dict key of type list/],
      ['REDUCE on a string', [0x80, 2, 0x58, 1, 0, 0, 0, 0x41, 0x29, 0x52, 0x2e], /REDUCE on str, which is not callable/],
      ['BUILD on an int', [0x80, 2, 0x4b, 1, 0x4e, 0x62, 0x2e], /BUILD on int/],
      ['persistent id without a loader', [0x80, 2, 0x4e, 0x51, 0x2e], /unexpected persistent id/],
      ['unterminated GLOBAL', [0x80, 2, 0x63, 0x6f, 0x73], /GLOBAL module needs 1 bytes/],
      ['binary GLOBAL name', [0x80, 2, 0x63, 0x01, 0x0a], /malformed GLOBAL module/],
      ['POP_MARK without MARK', [0x80, 2, 0x31], /MARK not found/],
      ['ADDITEMS to a frozenset', [0x80, 4, 0x28, 0x91, 0x28, 0x4e, 0x90, 0x2e], /ADDITEMS to frozenset, expected a set/],
      ['NEWOBJ_EX without a kwargs dict', [0x80, 4, 0x4e, 0x29, 0x4e, 0x92, 0x2e], /NEWOBJ_EX keyword arguments must be a dict/],
      ['BINSTRING with a negative length', [0x80, 2, 0x54, 0xff, 0xff, 0xff, 0xff], /BINSTRING with a negative length/],
    ];
    for (const [what, bytes, re] of cases) {
      it(what, () => {
        expectCheckpointError(() => load(Buffer.from(bytes)), re);
      });
    }
  });

  it('bounds the work a small hostile pickle can cause', () => {
    // One 20000-item list, then set(list) thousands of times: quadratic without a budget.
    const b = new PickleBuilder().proto().emptyList().put(0).mark();
    for (let i = 0; i < 20000; i++) b.none();
    b.raw(0x65).global('builtins', 'set').put(1);
    for (let i = 0; i < 5000; i++) b.get(1).get(0).raw(0x85).reduce().raw(0x30);
    b.none().stop();
    const t0 = Date.now();
    expectCheckpointError(() => load(b.bytes()), /too much work for the pickle size/);
    expect(Date.now() - t0).to.be.below(2000);
  });

  it('a deeply nested pickle does not recurse', () => {
    const b = new PickleBuilder().proto();
    for (let i = 0; i < 100000; i++) b.emptyList();
    for (let i = 0; i < 99999; i++) b.raw(0x61);
    b.stop();
    let v = load(b.bytes());
    let depth = 0;
    while (v instanceof PyList && v.items.length > 0) {
      v = v.items[0];
      depth++;
    }
    expect(depth).to.equal(99999);
  });

  it('errors are CheckpointErrors naming the file', () => {
    try {
      load(Buffer.from([0x80, 2, 0xff]));
      expect.fail('no error');
    } catch (e) {
      expect(e).to.be.instanceOf(CheckpointError);
      expect((e as CheckpointError).file).to.equal('t.pkl');
      expect((e as Error).message).to.match(/^checkpoint t\.pkl: corrupt pickle: unknown pickle opcode 0xff at offset 2$/);
    }
  });
});
