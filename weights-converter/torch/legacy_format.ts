/**
 * The legacy torch.save format (torch < 1.6; torch/serialization.py `_legacy_load`): five
 * consecutive pickles (magic number, protocol version, sys_info, the object, the storage keys),
 * then each storage as an int64 element count and its raw elements, in key order. The pickles are
 * read through a small buffer with the torch allowlist; storages are located, read later.
 */
import { CheckpointError } from '../errors';
import { TORCH_GLOBALS } from '../pickle/allowlist';
import { FileSource } from '../pickle/source';
import { StorageRef, asInt, asText, storageDType } from '../pickle/torch_rebuild';
import { HandlerContext, PyDict, PyList, PyTuple, PyValue, typeName } from '../pickle/values';
import { unpickle } from '../pickle/vm';
import { openRegularFile, readExactly } from '../source';
import { ITEM_SIZE } from '../types';
import { MAX_BLOCK_BYTES, StorageSource, TorchContents, storagePid } from './storage';

/** torch/serialization.py MAGIC_NUMBER and PROTOCOL_VERSION. */
export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
export const LEGACY_PROTOCOL = 1001;

/** Open a legacy (pre-1.6) torch checkpoint: five pickles, then the storages back to back. */
export function openTorchLegacy(path: string): TorchContents {
  const file = openRegularFile(path, 'a checkpoint');
  const { fd, size } = file;
  try {
    const src = new FileSource((pos, len) => readExactly(fd, pos, len, path, 'legacy checkpoint'), 0, size);
    const plain = { file: path, globals: TORCH_GLOBALS };
    const magic = unpickle(src, { ...plain, label: 'magic number pickle' });
    if (magic !== LEGACY_MAGIC) {
      throw new CheckpointError(path, 'not a torch checkpoint: a pickle without the torch legacy magic number');
    }
    const protocol = unpickle(src, { ...plain, label: 'protocol version pickle' });
    if (protocol !== LEGACY_PROTOCOL) throw new CheckpointError(path, `unsupported legacy protocol version ${String(protocol)}`);
    const sysInfo = unpickle(src, { ...plain, label: 'sys_info pickle' });
    if (sysInfo instanceof PyDict && sysInfo.map.get('little_endian') === false) {
      throw new CheckpointError(path, 'big-endian checkpoint (sys_info little_endian=False) is not supported');
    }

    const roots = new Map<string, StorageRef>();
    const views = new Map<string, StorageRef>();
    const persistentLoad = (pid: PyValue, ctx: HandlerContext): PyValue => {
      const [, type, keyV, locV, numelV, view] = storagePid(pid, ctx, 6);
      const key = asText(keyV);
      if (key === null) return ctx.fail(`storage key must be a string, got ${typeName(keyV)}`);
      let root = roots.get(key);
      if (root === undefined) {
        root = new StorageRef(key, storageDType(type, ctx), asInt(numelV, 'storage size', ctx), asText(locV) ?? 'cpu');
        roots.set(key, root);
      }
      if (view === null) return root;
      // Pre-1.0 storage views: (view_key, offset, size) in elements of the root storage.
      if (!(view instanceof PyTuple) || view.items.length !== 3) return ctx.fail('malformed storage view metadata');
      const viewKey = asText(view.items[0]) ?? ctx.fail('storage view key must be a string');
      const cached = views.get(viewKey);
      if (cached !== undefined) return cached;
      const off = asInt(view.items[1], 'view offset', ctx);
      const n = asInt(view.items[2], 'view size', ctx);
      if (off + n > root.numel) ctx.fail(`storage view '${viewKey}' [${off}, ${off + n}) exceeds ${root.describe()}`);
      const v = new StorageRef(key, root.dtype, n, root.location, off);
      views.set(viewKey, v);
      return v;
    };
    const root = unpickle(src, { ...plain, persistentLoad, label: 'object pickle' });
    const keys = unpickle(src, { ...plain, label: 'storage keys pickle' });
    if (!(keys instanceof PyList)) throw new CheckpointError(path, `corrupt legacy checkpoint: storage key list is ${typeName(keys)}`);

    // Each storage: int64 element count, then the raw elements.
    const offsets = new Map<string, number>();
    let pos = src.position;
    for (const k of keys.items) {
      const key = asText(k);
      const ref = key === null ? undefined : roots.get(key);
      if (key === null || ref === undefined) {
        throw new CheckpointError(path, `corrupt legacy checkpoint: storage key ${JSON.stringify(key ?? typeName(k))} is not referenced by the pickle`);
      }
      const head = readExactly(fd, pos, 8, path, `legacy storage '${key}' header`);
      const count = head.readBigInt64LE(0);
      if (count !== BigInt(ref.numel)) {
        throw new CheckpointError(path, `corrupt legacy checkpoint: storage '${key}' has ${count} elements in the file but ${ref.numel} in its persistent id`);
      }
      const bytes = ref.numel * ITEM_SIZE[ref.dtype];
      if (pos + 8 + bytes > size) {
        throw new CheckpointError(
          path,
          `truncated legacy checkpoint: storage '${key}' (${bytes} bytes at ${pos + 8}) extends past the end of the ${size}-byte file`,
        );
      }
      offsets.set(key, pos + 8);
      pos += 8 + bytes;
    }
    const dataOffset = (key: string): number => {
      const o = offsets.get(key);
      if (o === undefined) throw new CheckpointError(path, `corrupt legacy checkpoint: storage '${key}' has no data in the file`);
      return o;
    };
    const source: StorageSource = {
      readBlock(key, start, length) {
        if (length > MAX_BLOCK_BYTES) return null;
        return { bytes: readExactly(fd, dataOffset(key) + start, length, path, `storage '${key}'`), start };
      },
      readRange(key, start, length) {
        return readExactly(fd, dataOffset(key) + start, length, path, `storage '${key}'`);
      },
    };
    return { format: 'torch-legacy', root, source, close: () => file.close() };
  } catch (e) {
    file.close();
    throw e;
  }
}
