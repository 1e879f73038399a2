#!/usr/bin/env python3
"""Fixtures for unusual but legal layouts and for corrupt archives (TestData/synthetic/layouts/).

Run from anywhere:  python3 TestData/synthetic/layouts/make_layout_cases.py
Needs numpy and h5py, and ../base_f32.npy (written by ../make_synthetic.py). Every file holds
base_f32 (3 layers x 2 heads x 10 x 10, float32) in some layout, so the reader must return
exactly base_f32's values from each one (the tests compare with base_f32.npy).

  nested_single.h5   one dataset at /vit_b16/attentions (digits in the path, not per-layer)
  blocks.h5          per-layer datasets /blocks.0.attn, /blocks.1.attn, /blocks.2.attn (timm names),
                     written in the order 2, 0, 1
  links.h5           /layer_0/attn ... /layer_2/attn, plus /layer_1/loop (hard link to /layer_1:
                     a cycle), /layer_0/alias (soft link to /layer_2/attn) and /layer_2/outside
                     (external link to a missing file): the reader must follow only hard links,
                     visit each group once, and find exactly 3 layers
  userblock.h5       /attentions in a file with a 512-byte user block (HDF5 signature at 512)
  crc_stored.npz     np.savez of attentions, with one byte of the member's data changed after
                     writing (a value 0.0 becomes a small subnormal): the zip CRC-32 no longer matches
  crc_deflated.npz   np.savez_compressed of attentions, with the CRC-32 recorded in the central
                     directory and the local header changed: inflating succeeds, the CRC check fails
  chunks_shuffle.h5  /attentions float16 (base_f32 rounded), chunks (1, 2, 4, 3) through shuffle + gzip:
                     a chunk spans both heads, rows and keys are split, edge chunks are partial
  chunks_layers.h5   /attentions float32, chunks (2, 1, 10, 10) gzip level 1: a chunk spans two layers
  chunks_plain.h5    /attentions float32, chunks (1, 1, 5, 10), no filter
  big_endian.h5      /attentions as big-endian float32, contiguous
  userblock_gzip.h5  /attentions float32, chunks (1, 1, 10, 10) gzip, after a 1024-byte user block
                     (chunk addresses are relative to the superblock; attninspect reads them itself)
  fletcher.h5        /attentions float32, chunks (1, 1, 10, 10), gzip + fletcher32 (read through libhdf5)
  fill.h5            /attentions float32 (3, 2, 10, 10), chunks (1, 1, 5, 10) gzip, fill value 0.125, only layer 0
                     written: the other chunks were never written and read as 0.125 (libhdf5 handles them)
  partial_nofilter.h5  base_f32 in chunks (1, 2, 4, 4) with shuffle + gzip and H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS
                     (set through ctypes on h5py's own libhdf5): edge chunks are stored unfiltered
  qk_nan.npz         q, k (1, 1, 12, 4) with one NaN in k and +inf in q: every recomputed row is NaN
  huge_attention.h5  /attentions claims (1, 1, 300000, 300000) float16 (180 GB), chunked, no chunk
                     written (the file is tiny): one layer does not fit in memory and must be refused
  huge_qk.h5         /q and /k (1, 1, 1048576, 1) float16, gzip-compressed zeros: the recomputed
                     attention of one layer would be 4 TiB and must be refused
"""
import os
import struct
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIBVER = ("earliest", "v110")
base = np.load(os.path.join(HERE, "..", "base_f32.npy"))
assert base.shape == (3, 2, 10, 10) and base.dtype == np.float32


def p(name):
    return os.path.join(HERE, name)


def h5(name, **kw):
    return h5py.File(p(name), "w", libver=LIBVER, **kw)


with h5("nested_single.h5") as f:
    f.create_group("vit_b16").create_dataset("attentions", data=base)

with h5("blocks.h5") as f:
    for l in (2, 0, 1):
        f.create_dataset(f"blocks.{l}.attn", data=base[l])

with h5("links.h5") as f:
    for l in range(3):
        f.create_group(f"layer_{l}").create_dataset("attn", data=base[l])
    f["layer_1/loop"] = f["layer_1"]                      # hard link to its own group
    f["layer_0/alias"] = h5py.SoftLink("/layer_2/attn")
    f["layer_2/outside"] = h5py.ExternalLink("missing_file.h5", "/attn")

with h5("userblock.h5", userblock_size=512) as f:
    f.create_dataset("attentions", data=base)
with open(p("userblock.h5"), "r+b") as f:
    f.write(b"attninspect test user block\n")
with open(p("userblock.h5"), "rb") as f:
    assert f.read(8) != b"\x89HDF\r\n\x1a\n"
    f.seek(512)
    assert f.read(8) == b"\x89HDF\r\n\x1a\n"

# crc_stored.npz: change a byte inside the data of the stored member.
np.savez(p("crc_stored.npz"), attentions=base)
with zipfile.ZipFile(p("crc_stored.npz")) as z:
    info = z.getinfo("attentions.npy")
    assert info.compress_type == zipfile.ZIP_STORED
raw = bytearray(open(p("crc_stored.npz"), "rb").read())
name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
data = info.header_offset + 30 + name_len + extra_len
member = bytes(raw[data:data + info.file_size])
assert member[:6] == b"\x93NUMPY"
# The last byte of the last float32: flipping its low bit changes one value slightly.
raw[data + info.file_size - 4] ^= 0x01
open(p("crc_stored.npz"), "wb").write(raw)

# crc_deflated.npz: keep the data, change the recorded CRC-32 (local header and central directory).
np.savez_compressed(p("crc_deflated.npz"), attentions=base)
with zipfile.ZipFile(p("crc_deflated.npz")) as z:
    info = z.getinfo("attentions.npy")
    assert info.compress_type == zipfile.ZIP_DEFLATED
raw = bytearray(open(p("crc_deflated.npz"), "rb").read())
wrong = struct.pack("<I", info.CRC ^ 0xDEADBEEF)
assert struct.unpack_from("<I", raw, info.header_offset + 14)[0] == info.CRC
raw[info.header_offset + 14:info.header_offset + 18] = wrong
cd = raw.find(b"PK\x01\x02")
assert struct.unpack_from("<I", raw, cd + 16)[0] == info.CRC
raw[cd + 16:cd + 20] = wrong
open(p("crc_deflated.npz"), "wb").write(raw)

with h5("chunks_shuffle.h5") as f:
    f.create_dataset("attentions", data=base.astype(np.float16), chunks=(1, 2, 4, 3), shuffle=True, compression="gzip")
with h5("chunks_layers.h5") as f:
    f.create_dataset("attentions", data=base, chunks=(2, 1, 10, 10), compression="gzip", compression_opts=1)
with h5("chunks_plain.h5") as f:
    f.create_dataset("attentions", data=base, chunks=(1, 1, 5, 10))
with h5("big_endian.h5") as f:
    f.create_dataset("attentions", data=base.astype(">f4"))
with h5("userblock_gzip.h5", userblock_size=1024) as f:
    f.create_dataset("attentions", data=base, chunks=(1, 1, 10, 10), compression="gzip")
with h5("fletcher.h5") as f:
    f.create_dataset("attentions", data=base, chunks=(1, 1, 10, 10), compression="gzip", fletcher32=True)

with h5("fill.h5") as f:
    d = f.create_dataset("attentions", shape=base.shape, dtype=np.float32, chunks=(1, 1, 5, 10), compression="gzip", fillvalue=0.125)
    d[0] = base[0]

import ctypes  # noqa: E402
import glob  # noqa: E402
libs = glob.glob(os.path.join(os.path.dirname(h5py.__file__), "..", "h5py.libs", "libhdf5-*.so*")) + \
    glob.glob(os.path.join(os.path.dirname(h5py.__file__), ".libs", "libhdf5*.so*"))
hdf5 = ctypes.CDLL(libs[0])
with h5("partial_nofilter.h5") as f:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1, 2, 4, 4))
    dcpl.set_shuffle()
    dcpl.set_deflate(4)
    assert hdf5.H5Pset_chunk_opts(ctypes.c_int64(dcpl.id), ctypes.c_uint(2)) >= 0   # H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS
    space = h5py.h5s.create_simple(base.shape)
    dset = h5py.h5d.create(f.id, b"attentions", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    dset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(base))

# qk_nan.npz: q, k (1, 1, 12, 4) with k[3, 0] = NaN (every row meets it) and q[5, 1] = +inf.
rng = np.random.default_rng(3)
q = rng.normal(size=(1, 1, 12, 4)).astype(np.float32)
k = rng.normal(size=(1, 1, 12, 4)).astype(np.float32)
k[0, 0, 3, 0] = np.nan
q[0, 0, 5, 1] = np.inf
np.savez(p("qk_nan.npz"), q=q, k=k)

with h5("huge_attention.h5") as f:
    f.create_dataset("attentions", shape=(1, 1, 300000, 300000), dtype=np.float16, chunks=(1, 1, 1024, 1024))

with h5("huge_qk.h5") as f:
    for name in ("q", "k"):
        f.create_dataset(name, data=np.zeros((1, 1, 1 << 20, 1), np.float16), chunks=(1, 1, 1 << 16, 1),
                         compression="gzip", compression_opts=9)

for name in ("crc_stored.npz", "crc_deflated.npz"):
    with zipfile.ZipFile(p(name)) as z:
        try:
            z.read("attentions.npy")
            raise SystemExit(f"{name}: Python's zipfile accepted it")
        except zipfile.BadZipFile as e:
            print(f"{name}: Python's zipfile also rejects it: {e}")
print("wrote", ", ".join(sorted(n for n in os.listdir(HERE) if not n.endswith(".py"))))
