/** weights-converter/pickle/allowlist.ts: the one allowlist; every other global is refused by name. */
import { expect } from 'chai';
import { UnsafePickleError } from '../../../weights-converter/errors';
import { BASE_GLOBALS, TORCH_GLOBALS, normaliseGlobalName } from '../../../weights-converter/pickle/allowlist';
import { BufferSource } from '../../../weights-converter/pickle/source';
import { PyDict, PyGlobal, PyObject, PyValue } from '../../../weights-converter/pickle/values';
import { unpickle } from '../../../weights-converter/pickle/vm';
import { PickleBuilder, expectCheckpointError } from '../helpers';

function load(bytes: Uint8Array, globals = BASE_GLOBALS): PyValue {
  return unpickle(new BufferSource(bytes), { file: 't.pkl', globals });
}

describe('weights-converter/pickle/allowlist', () => {
  it('is exactly this list of names: adding one is a deliberate, reviewed change', () => {
    const storages = ['Float', 'Half', 'BFloat16', 'Double', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].map((t) => `${t}Storage`);
    const dtypes = [
      'float32',
      'float',
      'float16',
      'half',
      'bfloat16',
      'float64',
      'double',
      'int64',
      'long',
      'int32',
      'int',
      'int16',
      'short',
      'int8',
      'uint8',
      'bool',
    ];
    const base = ['collections.OrderedDict', 'builtins.set', 'builtins.frozenset', 'builtins.bytes', 'builtins.bytearray', '_codecs.encode'];
    const expected = [
      ...base,
      'torch._utils._rebuild_tensor',
      'torch._utils._rebuild_tensor_v2',
      'torch._utils._rebuild_tensor_v3',
      'torch._utils._rebuild_parameter',
      'torch._utils._rebuild_parameter_with_state',
      'torch._tensor._rebuild_from_type_v2',
      'torch._tensor._rebuild_from_type',
      'torch.Tensor',
      'torch._tensor.Tensor',
      'torch.nn.parameter.Parameter',
      ...storages.map((s) => `torch.${s}`),
      ...storages.map((s) => `torch.cuda.${s}`),
      'torch.UntypedStorage',
      'torch.storage.UntypedStorage',
      ...dtypes.map((d) => `torch.${d}`),
      'torch.Size',
      // Opaque metadata; numpy 2 renamed numpy.core to numpy._core.
      ...['torch.device', 'argparse.Namespace', 'numpy.dtype', 'numpy.ndarray'],
      ...['numpy.core', 'numpy._core'].flatMap((m) => [`${m}.multiarray.scalar`, `${m}.multiarray._reconstruct`]),
    ];
    expect([...BASE_GLOBALS.keys()].sort()).to.deep.equal([...base].sort());
    expect([...TORCH_GLOBALS.keys()].sort()).to.deep.equal([...expected].sort());
  });

  it('names are normalised from Python 2 and old torch modules before the lookup', () => {
    expect(normaliseGlobalName('__builtin__', 'set')).to.equal('builtins.set');
    expect(normaliseGlobalName('copy_reg', '_reconstructor')).to.equal('copyreg._reconstructor');
    expect(normaliseGlobalName('torch.tensor', '_rebuild_from_type_v2')).to.equal('torch._tensor._rebuild_from_type_v2');
    expect(normaliseGlobalName('os', 'system')).to.equal('os.system');
    const p = new PickleBuilder().proto().global('__builtin__', 'set').emptyTuple().reduce().stop().bytes();
    expect(() => load(p)).to.not.throw();
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
    // module.name; the module is everything before the last dot.
    const globals =
      'os.system posix.system nt.system builtins.eval __builtin__.getattr builtins.__import__ subprocess.Popen torch.load torch._utils._rebuild_qtensor numpy.load __main__.Net collections.defaultdict';
    for (const full of globals.split(' ')) {
      const module = full.slice(0, full.lastIndexOf('.'));
      const name = full.slice(full.lastIndexOf('.') + 1);
      it(full, () => {
        const p = new PickleBuilder().proto().global(module, name).str('touch /tmp/x').raw(0x85).reduce().stop().bytes();
        const err = expectCheckpointError(
          () => load(p, TORCH_GLOBALS),
          new RegExp(`refusing to load global '${full.replace(/\./g, '\\.')}' \\(not in the allowlist of tensor state-dict types\\)`),
        );
        expect(err).to.be.instanceOf(UnsafePickleError);
        expect((err as UnsafePickleError).globalName).to.equal(full);
      });
    }
    it('STACK_GLOBAL too', () => {
      const p = new PickleBuilder().proto(4).str('builtins').str('exec').raw(0x93).stop().bytes();
      expectCheckpointError(() => load(p, TORCH_GLOBALS), /refusing to load global 'builtins\.exec'/);
    });
    it('torch names are not in the base allowlist', () => {
      const p = new PickleBuilder().proto().global('torch', 'FloatStorage').stop().bytes();
      expectCheckpointError(() => load(p), /refusing to load global 'torch\.FloatStorage'/);
    });
    it('an allowlisted type is not callable unless its handler says so', () => {
      const p = new PickleBuilder().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes();
      expectCheckpointError(() => load(p, TORCH_GLOBALS), /global 'torch\.FloatStorage' is not callable/);
      const n = new PickleBuilder().proto().global('torch', 'float32').emptyTuple().raw(0x81).stop().bytes();
      expectCheckpointError(() => load(n, TORCH_GLOBALS), /global 'torch\.float32' cannot be instantiated/);
      const q = new PickleBuilder().proto().global('torch', 'FloatStorage').bytes();
      expect(() => load(Buffer.concat([q, Buffer.from([0x2e])]), TORCH_GLOBALS)).to.not.throw();
      expect(load(Buffer.concat([q, Buffer.from([0x2e])]), TORCH_GLOBALS)).to.be.instanceOf(PyGlobal);
    });
  });
});
