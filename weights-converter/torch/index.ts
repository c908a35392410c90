/**
 * torch.save checkpoints, read without Python: the zip format (./zip_format.ts) and the legacy
 * format (./legacy_format.ts) unpickle lazily with the one allowlist (../pickle/allowlist.ts);
 * ./state_dict.ts chooses the state dict; ./materialise.ts reads only its tensors.
 */
export { TORCH_GLOBALS } from '../pickle/allowlist';
export { StorageRef, TensorRef } from '../pickle/torch_rebuild';
export { LEGACY_MAGIC, LEGACY_PROTOCOL, openTorchLegacy } from './legacy_format';
export { materializeTensors } from './materialise';
export { SelectedStateDict, WRAPPER_KEYS, selectStateDict } from './state_dict';
export { MAX_BLOCK_BYTES, StorageSource, TorchContents, storagePid } from './storage';
export { openTorchZip } from './zip_format';
