/**
 * The one allowlist of globals a checkpoint's pickle may name. Security invariants of the reader
 * (enforced by ./vm.ts, relied on by every handler named here):
 *
 * 1. Allowlist only: GLOBAL / STACK_GLOBAL resolve a normalised "module.name" in one of the maps
 *    below; any other name (`os.system`, `builtins.eval`, `__main__.Net`...) is refused by name with
 *    an UnsafePickleError before any object is built.
 * 2. Nothing is called: a name maps to a pure TypeScript handler that builds a plain value (a
 *    container, an opaque PyObject, a lazy tensor reference) or to nothing at all (an inert type or
 *    constant, which REDUCE and NEWOBJ then refuse). No Python, no `eval`, no module loading.
 * 3. Work is bounded by bytes consumed: handlers charge the items they copy to the VM's budget
 *    (a multiple of the pickle's size), so no pickle can make the reader hang or allocate absurdly.
 *
 * Adding a name here is a security decision: it must satisfy 2 and 3.
 */
import { codecsEncode, makeBytes, makeSet, opaqueClass, orderedDict } from './builtins';
import {
  STORAGE_DTYPES,
  TENSOR_TYPES,
  TORCH_DTYPES,
  UNTYPED_STORAGES,
  rebuildFromType,
  rebuildParameter,
  rebuildParameterWithState,
  rebuildTensorV1,
  rebuildTensorV2,
  rebuildTensorV3,
  torchSize,
} from './torch_rebuild';
import { GlobalHandler } from './values';

/** Longest module or name accepted in a global reference. */
export const MAX_NAME = 256;

/** Module renames applied before the allowlist lookup (Python 2 names, torch's own rename). */
const MODULE_ALIASES: Readonly<Record<string, string>> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  'torch.tensor': 'torch._tensor',
};

/** The key a global is looked up by: "module.name" with the module renamed as Python 3 / torch do. */
export function normaliseGlobalName(module: string, name: string): string {
  return `${MODULE_ALIASES[module] ?? module}.${name}`;
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

/** A global that may be named (as a type or constant) but not called. */
const inert: GlobalHandler = {};

/** Training metadata found next to state dicts: kept as opaque values, never run. */
const OPAQUE_CLASSES: readonly string[] = [
  'torch.device',
  'argparse.Namespace',
  'numpy.dtype',
  'numpy.ndarray',
  'numpy.core.multiarray.scalar',
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray.scalar',
  'numpy._core.multiarray._reconstruct',
];

function buildTorchGlobals(): Map<string, GlobalHandler> {
  const g = new Map<string, GlobalHandler>(BASE_GLOBALS);
  g.set('torch._utils._rebuild_tensor', { call: rebuildTensorV1 });
  g.set('torch._utils._rebuild_tensor_v2', { call: rebuildTensorV2 });
  g.set('torch._utils._rebuild_tensor_v3', { call: rebuildTensorV3 });
  g.set('torch._utils._rebuild_parameter', { call: rebuildParameter });
  g.set('torch._utils._rebuild_parameter_with_state', { call: rebuildParameterWithState });
  g.set('torch._tensor._rebuild_from_type_v2', { call: rebuildFromType });
  g.set('torch._tensor._rebuild_from_type', { call: rebuildFromType });
  for (const t of TENSOR_TYPES) g.set(t, inert);
  for (const cls of Object.keys(STORAGE_DTYPES)) {
    g.set(`torch.${cls}`, inert);
    g.set(`torch.cuda.${cls}`, inert);
  }
  for (const s of UNTYPED_STORAGES) g.set(s, inert);
  for (const d of Object.keys(TORCH_DTYPES)) g.set(`torch.${d}`, inert);
  g.set('torch.Size', { call: torchSize });
  for (const name of OPAQUE_CLASSES) g.set(name, opaqueClass(name));
  return g;
}

/** The allowlist used for torch checkpoints: containers, tensor rebuilders, storage and dtype names. */
export const TORCH_GLOBALS: ReadonlyMap<string, GlobalHandler> = buildTorchGlobals();
