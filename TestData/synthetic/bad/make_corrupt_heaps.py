#!/usr/bin/env python3
"""Makes heap_loop_chunked.h5: a small attention dump whose token labels are variable-length strings in a
*chunked* dataset (which attninspect's own global-heap check does not follow), with the size of the heap
collection's free-space object (index 0) set to 0. libhdf5 1.10 loops forever in
H5HG__cache_heap_deserialize when it loads that collection; attninspect must end with a clear error.

Run from this directory: python3 make_corrupt_heaps.py
"""
import numpy as np
import h5py

rng = np.random.default_rng(7)
scores = rng.random((2, 2, 4, 4))
attention = (scores / scores.sum(-1, keepdims=True)).astype(np.float32)

path = "heap_loop_chunked.h5"
with h5py.File(path, "w", libver="earliest") as f:
    f.create_dataset("attentions", data=attention)
    f.create_dataset("tokens", data=["[CLS]", "a", "b", "[SEP]"], dtype=h5py.string_dtype(), chunks=(2,), maxshape=(None,))

data = bytearray(open(path, "rb").read())
at = data.find(b"GCOL")
assert at >= 0 and data.find(b"GCOL", at + 1) < 0, "expected exactly one global heap collection"
size = int.from_bytes(data[at + 8:at + 16], "little")
p = at + 16                       # header: GCOL, version, 3 reserved, size (8 bytes): 16 bytes
while p + 16 <= at + size:        # object header: index 2, refs 2, reserved 4, size 8 (16 bytes), data padded to 8
    index = int.from_bytes(data[p:p + 2], "little")
    length = int.from_bytes(data[p + 8:p + 16], "little")
    if index == 0:
        data[p + 8:p + 16] = (0).to_bytes(8, "little")   # free space of no size: libhdf5 never advances
        break
    p += 16 + (length + 7) // 8 * 8
else:
    raise SystemExit("no free-space object found")
open(path, "wb").write(bytes(data))
print("wrote", path)
