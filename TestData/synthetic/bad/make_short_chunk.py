#!/usr/bin/env python3
"""Makes short_chunk_gzip.h5: a 2x2x6x6 float32 attention dump, chunked (1,1,6,6) with gzip, whose chunk
(1,0,0,0) is a valid zlib stream of 40 bytes instead of the chunk's 144 (written raw with write_direct_chunk,
no user block). libhdf5 1.10's deflate filter accepts the short output and the read goes on past it;
attninspect inflates chunks itself, checks each against its size, and must end every command with a clear
error naming the chunk. Layer 0 is intact.

Run from this directory: python3 make_short_chunk.py
"""
import zlib
import numpy as np
import h5py

rng = np.random.default_rng(11)
scores = rng.random((2, 2, 6, 6))
attention = (scores / scores.sum(-1, keepdims=True)).astype(np.float32)

path = "short_chunk_gzip.h5"
with h5py.File(path, "w", libver="earliest") as f:
    d = f.create_dataset("attentions", data=attention, chunks=(1, 1, 6, 6), compression="gzip", compression_opts=4)
    d.id.write_direct_chunk((1, 0, 0, 0), zlib.compress(attention[1, 0].tobytes()[:40], 4), 0)
print("wrote", path)
