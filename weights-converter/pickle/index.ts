/**
 * The restricted unpickler for checkpoints: values (./values.ts), byte sources (./source.ts), the
 * VM (./vm.ts) and the one allowlist of globals (./allowlist.ts, with the security invariants).
 */
export { BASE_GLOBALS, MAX_NAME, TORCH_GLOBALS, normaliseGlobalName } from './allowlist';
export { opaqueClass } from './builtins';
export { ByteSource, BufferSource, FileSource } from './source';
export { StorageRef, TensorRef } from './torch_rebuild';
export { SUPPORTED_OPCODES, UnpickleOptions, unpickle } from './vm';
export { GlobalHandler, HandlerContext, PyCustom, PyDict, PyFloat, PyGlobal, PyList, PyObject, PySet, PyTuple, PyValue, typeName } from './values';
