/**
 * The torch.save zip format (torch >= 1.6; torch/serialization.py `_load`): `<archive>/data.pkl`,
 * an optional `<archive>/byteorder`, and one `<archive>/data/<key>` entry per storage. data.pkl is
 * unpickled with the torch allowlist; storages are only located here and read later, entry by
 * entry, with their CRC checked.
 */
import { CheckpointError } from '../errors';
import { TORCH_GLOBALS } from '../pickle/allowlist';
import { BufferSource } from '../pickle/source';
import { StorageRef, asInt, asText, storageDType } from '../pickle/torch_rebuild';
import { HandlerContext, PyValue, typeName } from '../pickle/values';
import { unpickle } from '../pickle/vm';
import { ITEM_SIZE, ReadCheckpointOptions } from '../types';
import { ZipReader } from '../zip';
import { MAX_BLOCK_BYTES, StorageSource, TorchContents, storagePid } from './storage';

/** Open a torch zip checkpoint and unpickle its data.pkl (storages are read later). */
export function openTorchZip(path: string, opts: ReadCheckpointOptions = {}): TorchContents {
  const zip = ZipReader.open(path);
  try {
    const verifyCrc = opts.verifyCrc !== false;
    const names = zip.names();
    if (names.length === 0) throw new CheckpointError(path, 'empty zip archive (not a torch.save checkpoint)');
    const first = names[0];
    const prefix = first.includes('/') ? first.slice(0, first.indexOf('/') + 1) : '';
    const pklName = `${prefix}data.pkl`;
    if (zip.get(`${prefix}constants.pkl`) !== undefined || names.some((n) => n.startsWith(`${prefix}code/`))) {
      throw new CheckpointError(path, 'this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save model.state_dict() with torch.save');
    }
    if (zip.get(pklName) === undefined) {
      throw new CheckpointError(path, `zip archive has no '${pklName}' entry (not a torch.save checkpoint)`);
    }
    const order = zip.get(`${prefix}byteorder`);
    if (order !== undefined) {
      const text = zip.read(order, { verifyCrc, maxBytes: 64 }).toString('latin1').trim();
      if (text === 'big') throw new CheckpointError(path, "big-endian checkpoint (byteorder 'big') is not supported");
      if (text !== 'little') throw new CheckpointError(path, `unknown byteorder '${text.slice(0, 16)}'`);
    }
    const pkl = zip.read(pklName, { verifyCrc, maxBytes: MAX_BLOCK_BYTES });

    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: PyValue, ctx: HandlerContext): PyValue => {
      const [, type, keyV, locV, numelV] = storagePid(pid, ctx, 5);
      const key = asText(keyV);
      if (key === null) return ctx.fail(`storage key must be a string, got ${typeName(keyV)}`);
      const cached = storages.get(key);
      if (cached !== undefined) return cached;
      const dtype = storageDType(type, ctx);
      const numel = asInt(numelV, 'storage size', ctx);
      const entry = zip.get(`${prefix}data/${key}`);
      if (entry === undefined) ctx.fail(`storage '${key}' is missing from the archive (no entry '${prefix}data/${key}')`);
      const need = numel * ITEM_SIZE[dtype];
      if (entry!.uncompressedSize < need) {
        ctx.fail(`storage '${key}' holds ${entry!.uncompressedSize} bytes but its persistent id declares ${numel} ${dtype} elements (${need} bytes)`);
      }
      // Inflation is bounded by what the tensor needs: a compressed entry claiming more is refused before it is inflated.
      if (entry!.method !== 0 && entry!.uncompressedSize > need) {
        ctx.fail(`storage '${key}' inflates to ${entry!.uncompressedSize} bytes but its ${numel} ${dtype} elements need ${need}`);
      }
      const ref = new StorageRef(key, dtype, numel, asText(locV) ?? 'cpu');
      storages.set(key, ref);
      return ref;
    };
    const root = unpickle(new BufferSource(pkl), { file: path, globals: TORCH_GLOBALS, persistentLoad, label: pklName });

    const entryOf = (key: string) => zip.get(`${prefix}data/${key}`)!;
    const source: StorageSource = {
      readBlock(key) {
        const entry = entryOf(key);
        if (entry.uncompressedSize > MAX_BLOCK_BYTES) return null;
        return { bytes: zip.read(entry, { verifyCrc }), start: 0 };
      },
      readRange(key, start, length) {
        return zip.readRange(entryOf(key), start, length);
      },
    };
    return { format: 'torch-zip', root, source, close: () => zip.close() };
  } catch (e) {
    zip.close();
    throw e;
  }
}
