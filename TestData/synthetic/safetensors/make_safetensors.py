#!/usr/bin/env python3
"""safetensors fixtures (TestData/synthetic/safetensors/). Needs numpy and the safetensors package.

Run from anywhere:  python3 TestData/synthetic/safetensors/make_safetensors.py

  base_f32.safetensors    attentions = base_f32 (3,2,10,10) F32, metadata model / patch_grid "[3, 3]" / prefix_tokens "1"
  base_f64.safetensors    the same values as F64 (exactly representable)
  base_f16.safetensors    base_f32 rounded to float16 (F16)
  base_bf16.safetensors   base_f32 rounded to bfloat16 (BF16, round to nearest even), written by this script
                          (numpy has no bfloat16); base_bf16_values.npy holds those values as float32
  base_bf16_void.npy      the same bfloat16 bits as an .npy of dtype |V2 (how numpy saves ml_dtypes' bfloat16)
  base_bf16_opaque.h5     the same bits as an HDF5 2-byte opaque dataset (h5py's mapping of |V2)
  qk.safetensors          q and k (3,2,10,4) F32 from ../dump_savez.npz: attention recomputed from them
  bad/truncated.safetensors     base_f32.safetensors cut in the middle of the data
  bad/offsets.safetensors       a header whose data_offsets run past the end of the file
  bad/shape.safetensors         a shape that does not match the byte range
  bad/header_length.safetensors a header length of 2^40
  bad/not_json.safetensors      a header that is not JSON
  bad/int64.safetensors         attentions stored as I64 (unsupported dtype)
"""
import json
import os
import struct

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")
os.makedirs(BAD, exist_ok=True)
base = np.load(os.path.join(HERE, "..", "base_f32.npy"))
qk = np.load(os.path.join(HERE, "..", "dump_savez.npz"))
meta = {"model": "synthetic base", "patch_grid": "[3, 3]", "prefix_tokens": "1"}


def p(*parts):
    return os.path.join(HERE, *parts)


save_file({"attentions": base}, p("base_f32.safetensors"), metadata=meta)
save_file({"attentions": base.astype(np.float64)}, p("base_f64.safetensors"), metadata=meta)
save_file({"attentions": base.astype(np.float16)}, p("base_f16.safetensors"), metadata=meta)
save_file({"q": qk["q"], "k": qk["k"]}, p("qk.safetensors"))


def handmade(path, tensors, metadata=None, header_override=None):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header_override if header_override is not None else header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


bits = base.astype(np.float32).view(np.uint32).astype(np.uint64)
rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)   # round to nearest even
np.save(p("base_bf16_values.npy"), (rounded.astype(np.uint32) << 16).view(np.float32))
handmade(p("base_bf16.safetensors"), {"attentions": ("BF16", base.shape, rounded.astype("<u2").tobytes())}, meta)
np.save(p("base_bf16_void.npy"), rounded.astype("<u2").view("V2"))
import h5py  # noqa: E402  (only for this one file)
with h5py.File(p("base_bf16_opaque.h5"), "w", libver=("earliest", "v110")) as f:
    f.create_dataset("attentions", data=rounded.astype("<u2").view("V2"))

raw = open(p("base_f32.safetensors"), "rb").read()
open(p("bad", "truncated.safetensors"), "wb").write(raw[: len(raw) - 1000])
handmade(p("bad", "offsets.safetensors"), {"attentions": ("F32", base.shape, base.tobytes())},
         header_override={"attentions": {"dtype": "F32", "shape": list(base.shape), "data_offsets": [0, base.nbytes + 64]}})
handmade(p("bad", "shape.safetensors"), {"attentions": ("F32", base.shape, base.tobytes())},
         header_override={"attentions": {"dtype": "F32", "shape": [3, 2, 10, 9], "data_offsets": [0, base.nbytes]}})
with open(p("bad", "header_length.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", 1 << 40) + b'{"a": 1}')
with open(p("bad", "not_json.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", 16) + b'{"attentions": [' + b"\x00" * 64)
handmade(p("bad", "int64.safetensors"), {"attentions": ("I64", base.shape, base.astype(np.int64).tobytes())})
print("wrote", ", ".join(sorted(os.listdir(HERE))), "and bad/:", ", ".join(sorted(os.listdir(BAD))))
