/** weights-converter/pickle/builtins.ts: OrderedDict, set, bytes, _codecs.encode and opaque classes. */
import { expect } from 'chai';
import { codecsEncode, makeBytes, makeSet, opaqueClass, orderedDict } from '../../../weights-converter/pickle/builtins';
import { PyDict, PyList, PyObject, PySet, PyTuple } from '../../../weights-converter/pickle/values';
import { expectCheckpointError, handlerContext } from '../helpers';

describe('weights-converter/pickle/builtins', () => {
  it('OrderedDict from (key, value) pairs keeps their order; OrderedDict() and OrderedDict(None) are empty', () => {
    const ctx = handlerContext();
    const d = orderedDict([new PyList([new PyTuple(['z', 1]), new PyList(['a', 2])])], ctx) as PyDict;
    expect(d.className).to.equal('collections.OrderedDict');
    expect([...d.map]).to.deep.equal([
      ['z', 1],
      ['a', 2],
    ]);
    expect(ctx.charged).to.equal(2);
    expect((orderedDict([], ctx) as PyDict).map.size).to.equal(0);
    expect((orderedDict([null], ctx) as PyDict).map.size).to.equal(0);
    expectCheckpointError(() => orderedDict([new PyList([new PyTuple(['k'])])], ctx), /OrderedDict items must be \(key, value\) pairs/);
    expectCheckpointError(() => orderedDict([null, null], ctx), /OrderedDict takes at most one argument/);
    expectCheckpointError(() => orderedDict(['abc'], ctx), /OrderedDict expects a list or tuple, got str/);
  });

  it('set and frozenset copy their items', () => {
    const ctx = handlerContext();
    const items = new PyList([1, 2, 3]);
    const s = makeSet(false)([items], ctx) as PySet;
    expect(s.frozen).to.equal(false);
    expect(s.items).to.deep.equal([1, 2, 3]);
    expect(s.items).to.not.equal(items.items);
    expect((makeSet(true)([], ctx) as PySet).frozen).to.equal(true);
    expectCheckpointError(() => makeSet(false)([1, 2], ctx), /set\(\) takes at most one argument/);
  });

  it('bytes(): empty, a copy of bytes, a list of ints in range, or (str, encoding)', () => {
    const ctx = handlerContext();
    expect(makeBytes([], ctx)).to.deep.equal(new Uint8Array(0));
    const src = Uint8Array.from([1, 2]);
    const copy = makeBytes([src], ctx) as Uint8Array;
    expect([...copy]).to.deep.equal([1, 2]);
    expect(copy.buffer).to.not.equal(src.buffer);
    expect([...(makeBytes([new PyList([0, 255, 7])], ctx) as Uint8Array)]).to.deep.equal([0, 255, 7]);
    expect([...(makeBytes(['\u00e9A', 'latin1'], ctx) as Uint8Array)]).to.deep.equal([0xe9, 0x41]);
    expectCheckpointError(() => makeBytes([new PyList([256])], ctx), /bytes\(\) item out of range/);
    expectCheckpointError(() => makeBytes([new PyList([1.5])], ctx), /bytes\(\) item out of range/);
    expectCheckpointError(() => makeBytes([3], ctx), /unsupported bytes\(\) arguments/);
  });

  it('_codecs.encode: latin-1 as protocol 2 writes bytes, utf-8 and ascii, nothing else', () => {
    const ctx = handlerContext();
    for (const enc of ['latin1', 'latin-1', 'iso-8859-1', 'LATIN_1']) {
      expect([...(codecsEncode(['\u00ff\u0000a', enc], ctx) as Uint8Array)], enc).to.deep.equal([0xff, 0, 0x61]);
    }
    expect([...(codecsEncode(['\u00e9', 'utf-8'], ctx) as Uint8Array)]).to.deep.equal([0xc3, 0xa9]);
    expectCheckpointError(() => codecsEncode(['\u0100', 'latin1'], ctx), /character outside latin-1/);
    expectCheckpointError(() => codecsEncode(['a', 'rot13'], ctx), /unsupported encoding 'rot13'/);
    expectCheckpointError(() => codecsEncode([1, 'latin1'], ctx), /_codecs\.encode expects \(str, encoding\)/);
  });

  it('an opaque class builds an inert object for REDUCE and NEWOBJ alike, charging its arguments', () => {
    const ctx = handlerContext();
    const h = opaqueClass('torch.device');
    const a = h.call!(['cuda', 0], ctx) as PyObject;
    const b = h.newobj!(['cpu'], ctx, null) as PyObject;
    expect([a.className, a.args]).to.deep.equal(['torch.device', ['cuda', 0]]);
    expect([b.className, b.args]).to.deep.equal(['torch.device', ['cpu']]);
    expect(ctx.charged).to.equal(3);
  });
});
