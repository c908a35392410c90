import * as fs from 'fs';
import { expect } from 'chai';
import { CheckpointError, UnsafePickleError } from '../../weights-converter/errors';
import {
  BASE_GLOBALS,
  BufferSource,
  PyDict,
  PyGlobal,
  PyList,
  PyObject,
  PySet,
  PyTuple,
  PyValue,
  unpickle,
} from '../../weights-converter/pickle';
import { TORCH_GLOBALS } from '../../weights-converter/torch';
import { PickleBuilder, expectCheckpointError, fixture } from './helpers';

/** The JSON form written by make_checkpoint_fixtures.py's js(). */
type J = null | boolean | number | string | J[] | { [k: string]: J };

function toJS(v: PyValue): J {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { int: v.toString() };
  if (typeof v === 'number') return Number.isFinite(v) ? v : { float: v > 0 ? 'inf' : '-inf' };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (v instanceof PyTuple) return { tuple: v.items.map(toJS) };
  if (v instanceof PyList) return v.items.map(toJS);
  if (v instanceof PySet) return { set: v.items.map(toJS).sort() as J[] };
  if (v instanceof PyDict) return { dict: [...v.map].map(([k, x]) => [toJS(k), toJS(x)]) };
  throw new Error(`unexpected ${String(v)}`);
}

function load(bytes: Uint8Array, globals = BASE_GLOBALS): PyValue {
  return unpickle(new BufferSource(bytes), { file: 't.pkl', globals });
}

describe('weights-converter/pickle', () => {
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

  it('keeps argparse.Namespace and numpy scalars as opaque objects', () => {
    const p = new PickleBuilder()
      .proto()
      .global('argparse', 'Namespace')
      .emptyTuple()
      .raw(0x81) // NEWOBJ
      .emptyDict()
      .str('lr')
      .int(3)
      .setitem()
      .raw(0x62) // BUILD
      .stop()
      .bytes();
    const ns = load(p, TORCH_GLOBALS) as PyObject;
    expect(ns).to.be.instanceOf(PyObject);
    expect(ns.className).to.equal('argparse.Namespace');
    expect((ns.state as PyDict).map.get('lr')).to.equal(3);
  });

  describe('refuses globals outside the allowlist, naming them', () => {
    const cases: [string, string, string][] = [
      ['os', 'system', 'os.system'],
      ['posix', 'system', 'posix.system'],
      ['nt', 'system', 'nt.system'],
      ['builtins', 'eval', 'builtins.eval'],
      ['__builtin__', 'getattr', '__builtin__.getattr'],
      ['builtins', '__import__', 'builtins.__import__'],
      ['subprocess', 'Popen', 'subprocess.Popen'],
      ['torch', 'load', 'torch.load'],
      ['torch._utils', '_rebuild_qtensor', 'torch._utils._rebuild_qtensor'],
      ['numpy', 'load', 'numpy.load'],
      ['__main__', 'Net', '__main__.Net'],
      ['collections', 'defaultdict', 'collections.defaultdict'],
    ];
    for (const [module, name, full] of cases) {
      it(full, () => {
        const p = new PickleBuilder().proto().global(module, name).str('touch /tmp/x').raw(0x85).reduce().stop().bytes();
        const err = expectCheckpointError(() => load(p, TORCH_GLOBALS), new RegExp(
          `refusing to load global '${full.replace(/\./g, '\\.')}' \\(not in the allowlist of tensor state-dict types\\)`,
        ));
        expect(err).to.be.instanceOf(UnsafePickleError);
        expect((err as UnsafePickleError).globalName).to.equal(full);
      });
    }
    it('STACK_GLOBAL too', () => {
      const p = new PickleBuilder().proto(4).str('builtins').str('exec').raw(0x93).stop().bytes();
      expectCheckpointError(() => load(p, TORCH_GLOBALS), /refusing to load global 'builtins\.exec'/);
    });
    it('an allowlisted type is not callable unless its handler says so', () => {
      const p = new PickleBuilder().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes();
      expectCheckpointError(() => load(p, TORCH_GLOBALS), /global 'torch\.FloatStorage' is not callable/);
      const q = new PickleBuilder().proto().global('torch', 'FloatStorage').bytes();
      expect(() => load(Buffer.concat([q, Buffer.from([0x2e])]), TORCH_GLOBALS)).to.not.throw();
      expect(load(Buffer.concat([q, Buffer.from([0x2e])]), TORCH_GLOBALS)).to.be.instanceOf(PyGlobal);
    });
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
