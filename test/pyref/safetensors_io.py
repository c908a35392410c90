"""The safetensors file layout, written and read by hand (the safetensors package is not needed).

Layout (huggingface/safetensors README): u64 little-endian header length N, N bytes of JSON
header padded with spaces to a multiple of 8, then the tensors' raw little-endian bytes; the
header maps each name to {dtype, shape, data_offsets [begin, end)} into that data block, and may
hold "__metadata__" (a str -> str map).
"""

import json
import struct
from collections import OrderedDict

import numpy as np
import torch

DTYPE_CODES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
               torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL", torch.uint8: "U8"}
NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "BOOL": "|b1", "U8": "|u1"}


def tensor_bytes(t):
    """C-order little-endian bytes of a tensor (bfloat16 through its int16 view: numpy has none)."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None, metadata_last=False):
    """Writes `tensors` (name -> tensor) in their given order. `metadata` (or none) goes first in
    the header, or last with metadata_last: the format allows either, and the committed fixtures
    have both, so that readers are tested on both."""
    header, blobs, offset = OrderedDict(), [], 0
    if metadata is not None and not metadata_last:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        raw = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None and metadata_last:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> tensor, in header order (without __metadata__). No BF16 (numpy has no bfloat16)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = OrderedDict()
    for k, info in header.items():
        if k == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + e], dtype=NUMPY_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out
