/** weights-converter/pickle/values.ts: the Python values and their names in messages. */
import { expect } from 'chai';
import { opaqueClass } from '../../../weights-converter/pickle/builtins';
import { PyCustom, PyDict, PyFloat, PyGlobal, PyList, PyObject, PySet, PyTuple, typeName } from '../../../weights-converter/pickle/values';

class Thing extends PyCustom {
  describe(): string {
    return 'tensor float32[2, 3]';
  }
}

describe('weights-converter/pickle/values', () => {
  it('typeName speaks Python', () => {
    const cases: [Parameters<typeof typeName>[0], string][] = [
      [undefined, 'nothing'],
      [null, 'None'],
      [true, 'bool'],
      [3, 'int'],
      [2.5, 'float'],
      [new PyFloat(8), 'float'],
      [2n ** 70n, 'int'],
      ['s', 'str'],
      [new Uint8Array(2), 'bytes'],
      [new PyTuple([]), 'tuple'],
      [new PyList([]), 'list'],
      [new PyDict(), 'dict'],
      [new PyDict('collections.OrderedDict'), 'collections.OrderedDict'],
      [new PySet([], false), 'set'],
      [new PySet([], true), 'frozenset'],
      [new PyGlobal('torch.FloatStorage', {}), "global 'torch.FloatStorage'"],
      [new PyObject('argparse.Namespace', []), "'argparse.Namespace' object"],
      [new Thing(), 'tensor float32[2, 3]'],
    ];
    for (const [v, name] of cases) expect(typeName(v)).to.equal(name);
  });

  it("PyFloat's repr is Python's: an integral float keeps its '.0'", () => {
    const cases: [number, string][] = [
      [8, '8.0'],
      [-0.5, '-0.5'],
      [-0, '-0.0'],
      [1e-7, '1e-07'],
      [0.0001, '0.0001'],
      [123456789012345680, '1.2345678901234568e+17'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [NaN, 'nan'],
    ];
    for (const [x, repr] of cases) expect(new PyFloat(x).repr()).to.equal(repr);
  });

  it('a dict keeps insertion order and identity keys; BUILD state starts empty', () => {
    const d = new PyDict();
    d.map.set('z', 1);
    d.map.set('a', 2);
    d.map.set('z', 3);
    expect([...d.map]).to.deep.equal([
      ['z', 3],
      ['a', 2],
    ]);
    expect(d.state).to.equal(undefined);
    expect(new PyObject('x', []).state).to.equal(undefined);
  });

  it('a global carries its handler, an opaque object its arguments', () => {
    const h = opaqueClass('numpy.dtype');
    const g = new PyGlobal('numpy.dtype', h);
    expect(g.handler).to.equal(h);
    expect(new PyObject('numpy.dtype', ['f4', false]).args).to.deep.equal(['f4', false]);
  });
});
