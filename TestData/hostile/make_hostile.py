#!/usr/bin/env python3
"""Hostile inputs (TestData/hostile/): the smallest file for each way a stranger's dump attacked attninspect.

Run from anywhere with Debian's python3-numpy and python3-h5py (HDF5 1.10.8, what attninspect links):
    /usr/bin/python3 TestData/hostile/make_hostile.py
Fixed seed (HDF5 object headers may carry the time they were written, so a rerun can change bytes, never what the
files mean); every file is described in TestData/README.md (section hostile/), and HostileInputCLITests say what
each must produce. The numbers in the names of the sections are the items of the untrusted-dumps issue.

  1. external_tokens.h5      attentions (2,2,4,4) + tokens stored externally in /etc/passwd (h5py external=)
     external_attention.h5   attentions stored externally in /etc/passwd
     external_relative.h5    attentions stored externally in 'secret.bin', a name relative to the current folder
     external_fifo.h5        attentions stored externally in 'fifo' (the test makes a FIFO of that name)
     virtual.h5              a virtual dataset mapping virtual_source.h5's /attentions (a valid dump)
     virtual_source.h5       the dump it maps
     virtual_unlimited.h5    a virtual dataset with an unlimited mapping of 'virtual_unlimited_source.h5' (which the
                             test makes a FIFO): libhdf5 opens the source to find the extent, unless asked nothing but
                             the mapping
     slash_link.h5           an external link 'e' to slash_link_target.h5:/ and a dataset whose link name was patched
                             from 'eXattentions' to 'e/attentions' (HDF5 never writes a '/' in a name): opened by that
                             name, libhdf5 would follow 'e' into the other file
     slash_link_target.h5    the file it reaches
  2. lzf.h5                  attentions compressed with LZF (filter 32000, h5py's own; not in libhdf5)
     unknown_filter.h5       attentions with filter 32001 (blosc's number), optional, never applied, no name stored
  3. escapes.h5              dataset and attribute names and values holding ESC [2J, OSC 52, C1 CSI, a newline,
                             RLO (U+202E); tokens with ESC
     escapes_candidates.h5   two square tensors with such names and no conventional name (the error lists them)
     escapes.npz             members named with ESC [2J and OSC 52
     escapes.safetensors     a tensor and metadata keys and values with ESC, OSC 52 and RLO
  4. surrogate_high_then_ascii.safetensors  metadata "\\ud800\\u0041" (a high surrogate, then 'A')
     surrogate_high_alone.safetensors        "\\ud800" at the end of a string
     surrogate_low_alone.safetensors         "\\udc00"
     surrogate_high_high.safetensors         "\\ud800\\udbff"
     surrogate_pair.safetensors              "\\ud83d\\ude00" (a valid pair: U+1F600), must read
  5. sparse_4tib.h5          (1024,1024,1024,1024) float32 in 1-element chunks, fill 0.5, none written (1.4 KB)
     sparse_512mib.h5        (4,8,2048,2048) float32 in 1-element chunks, fill 0, none written
     partial_chunks.h5       (4,2,8,8) in (1,2,8,8) chunks, only layer 0 written (an interrupted export)
     never_written.h5        (4,2,8,8) contiguous, never written (storage never allocated)
     tiny_chunks.h5          (2,2,32,32) valid attention in 1-element chunks, all 4096 written;
     tiny_chunks.npy         the same values, for comparison
  6. attrs_2000.h5           2000 variable-length string attributes on the root, plus patch_grid [1, 3], prefix_tokens 1
     attrs_over_limit.h5     4100 integer attributes on the root (over attninspect's 4096)
  7. zip_ratio.npz           a deflated member whose headers claim 4 GiB from about a hundred compressed bytes
     backwards.npz           np.savez_compressed of valid attention (12,2,50,50) with a 7x7 patch grid after CLS;
     backwards.npy           the same array uncompressed
     fortran.npz             np.savez_compressed of ../synthetic/base_f32.npy in Fortran order
 10. (../synthetic/verify/logits.npy is the logits dump)
 14. one_token.npy           (2,2,1,1) ones: a one-token dump with no attributes
     patch_grid_negative.h5  valid attention (1,1,10,10) with patch_grid [-3, -3]
     patch_grid_fraction.h5  ... patch_grid [2.5, 3.6]
     patch_grid_text.h5      ... patch_grid "3x3"
     object_tokens.npz       attentions (1,1,4,4) and tokens as an object array (pickled)
     uint64_attribute.h5     valid attention and a root attribute big = 2^64 - 1 (uint64)
     qk_overflow.npz         q and k (1,1,4,2) finite, 1e20: Q·Kᵀ overflows float32
"""
import io
import json
import os
import struct
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTHETIC = os.path.join(HERE, "..", "synthetic")
rng = np.random.default_rng(20261205)


def p(name):
    return os.path.join(HERE, name)


def attention(*shape):
    """Softmax rows of normal logits, float32, rows summing to 1 within float32 rounding."""
    logits = rng.normal(size=shape) * 1.5
    a = np.exp(logits - logits.max(-1, keepdims=True))
    return (a / a.sum(-1, keepdims=True)).astype(np.float32)


def h5(name):
    return h5py.File(p(name), "w", libver="earliest")


small = attention(2, 2, 4, 4)

# 1. Data in other files.
with h5("external_tokens.h5") as f:
    f["attentions"] = small
    f.create_dataset("tokens", shape=(4,), dtype="S8", external=[("/etc/passwd", 0, h5py.h5f.UNLIMITED)])
with h5("external_attention.h5") as f:
    f.create_dataset("attentions", shape=small.shape, dtype="f4", external=[("/etc/passwd", 0, h5py.h5f.UNLIMITED)])
with h5("external_relative.h5") as f:
    f.create_dataset("attentions", shape=small.shape, dtype="f4", external=[("secret.bin", 0, small.nbytes)])
with h5("external_fifo.h5") as f:
    f.create_dataset("attentions", shape=small.shape, dtype="f4", external=[("fifo", 0, small.nbytes)])
with h5("virtual_source.h5") as f:
    f["attentions"] = small
layout = h5py.VirtualLayout(shape=small.shape, dtype="f4")
layout[...] = h5py.VirtualSource("virtual_source.h5", "attentions", shape=small.shape)
with h5py.File(p("virtual.h5"), "w", libver="latest") as f:
    f.create_virtual_dataset("attentions", layout)

unlimited = h5py.VirtualLayout(shape=small.shape, maxshape=(None,) + small.shape[1:], dtype="f4")
unlimited[0:h5py.h5s.UNLIMITED] = h5py.VirtualSource("virtual_unlimited_source.h5", "attentions", shape=small.shape,
                                                     maxshape=(None,) + small.shape[1:])[0:h5py.h5s.UNLIMITED]
with h5py.File(p("virtual_unlimited.h5"), "w", libver="latest") as f:
    f.create_virtual_dataset("attentions", unlimited)
with h5("slash_link_target.h5") as f:
    f["attentions"] = np.full(small.shape, 0.25, np.float32)
with h5("slash_link.h5") as f:
    f["e"] = h5py.ExternalLink("slash_link_target.h5", "/")
    f["eXattentions"] = small
data = bytearray(open(p("slash_link.h5"), "rb").read())
assert data.count(b"eXattentions") == 1
data[data.index(b"eXattentions") + 1] = ord("/")
open(p("slash_link.h5"), "wb").write(bytes(data))

# 2. Filters libhdf5 does not have.
with h5("lzf.h5") as f:
    f.create_dataset("attentions", data=small, compression="lzf")
with h5("unknown_filter.h5") as f:
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk(small.shape)
    plist.set_filter(32001, h5py.h5z.FLAG_OPTIONAL, ())
    space = h5py.h5s.create_simple(small.shape)
    dset = h5py.h5d.create(f.id, b"attentions", h5py.h5t.NATIVE_FLOAT, space, plist)
    dset.write(h5py.h5s.ALL, h5py.h5s.ALL, small)

# 3. Strings a terminal would act on.
ESC_CLEAR = "\x1b[2J"
OSC52 = "\x1b]52;c;SGVsbG8=\x07"
with h5("escapes.h5") as f:
    f["attentions"] = small
    f["x" + ESC_CLEAR + "q"] = np.zeros(3, np.float32)
    f.attrs["model\u202e"] = "evil" + ESC_CLEAR + "\nnext line" + OSC52
    f.attrs["csi"] = "\u009b31m red"
    f["tokens"] = np.array(["[CLS]", "a" + ESC_CLEAR, "b\u202e", "c" + OSC52], dtype=h5py.string_dtype())
with h5("escapes_candidates.h5") as f:
    f["x" + ESC_CLEAR] = small
    f["y" + OSC52] = small
np.savez(p("escapes.npz"), **{"attentions": small, "m" + ESC_CLEAR: np.zeros(2, np.float32), "n" + OSC52: np.zeros(2, np.float32)})


def safetensors(path, tensors, metadata=None, raw_header=None):
    """tensors: name -> float32 array. raw_header: the JSON header text as written, instead of json.dumps."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = array.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = (raw_header if raw_header is not None else json.dumps(header)).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


safetensors(p("escapes.safetensors"), {"attentions": small, "z" + ESC_CLEAR: np.zeros(2, np.float32)},
            metadata={"model" + ESC_CLEAR: "m" + OSC52, "note": "\u202egnirts"})

# 4. JSON strings with surrogates: the header is written by hand, json.dumps would escape differently.
raw = small.astype("<f4").tobytes()
tensor = '"attentions": {"dtype": "F32", "shape": [2, 2, 4, 4], "data_offsets": [0, %d]}' % len(raw)
for name, text in [("surrogate_high_then_ascii", r"\ud800\u0041"), ("surrogate_high_alone", r"\ud800"),
                   ("surrogate_low_alone", r"\udc00"), ("surrogate_high_high", r"\ud800\udbff"),
                   ("surrogate_pair", r"\ud83d\ude00")]:
    safetensors(p(name + ".safetensors"), {"attentions": small}, raw_header='{"__metadata__": {"model": "x%sy"}, %s}' % (text, tensor))

# 5. Data never written, and tiny chunks.
with h5("sparse_4tib.h5") as f:
    f.create_dataset("attentions", shape=(1024, 1024, 1024, 1024), dtype="f4", chunks=(1, 1, 1, 1), fillvalue=0.5)
with h5("sparse_512mib.h5") as f:
    f.create_dataset("attentions", shape=(4, 8, 2048, 2048), dtype="f4", chunks=(1, 1, 1, 1))
with h5("partial_chunks.h5") as f:
    d = f.create_dataset("attentions", shape=(4, 2, 8, 8), dtype="f4", chunks=(1, 2, 8, 8))
    d[0] = attention(2, 8, 8)
with h5("never_written.h5") as f:
    f.create_dataset("attentions", shape=(4, 2, 8, 8), dtype="f4")
tiny = attention(2, 2, 32, 32)
with h5("tiny_chunks.h5") as f:
    f.create_dataset("attentions", data=tiny, chunks=(1, 1, 1, 1))
np.save(p("tiny_chunks.npy"), tiny)

# 6. Attributes by the thousand.
with h5("attrs_2000.h5") as f:
    f["attentions"] = attention(1, 2, 4, 4)
    for i in range(2000):
        f.attrs["note_%04d" % i] = "value %d" % i
    f.attrs["patch_grid"] = np.array([1, 3], dtype=np.int64)
    f.attrs["prefix_tokens"] = np.int64(1)
with h5("attrs_over_limit.h5") as f:
    f["attentions"] = small
    for i in range(4100):
        f.attrs["n%04d" % i] = np.int8(i % 100)

# 7. Compressed members: a claim deflate cannot make, and members read out of order.
stream = io.BytesIO()
np.lib.format.write_array(stream, small)
with zipfile.ZipFile(p("zip_ratio.npz"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(zipfile.ZipInfo("attentions.npy", date_time=(2026, 12, 5, 0, 0, 0)), stream.getvalue(), zipfile.ZIP_DEFLATED)
data = bytearray(open(p("zip_ratio.npz"), "rb").read())
# The uncompressed size, in the local header (offset 22) and in the central directory's entry (offset 24 of it):
# 4 GiB - 2 from about a hundred compressed bytes, far beyond deflate's 1032:1.
central = data.rfind(b"PK\x01\x02")
struct.pack_into("<I", data, 22, 0xFFFFFFFE)
struct.pack_into("<I", data, central + 24, 0xFFFFFFFE)
open(p("zip_ratio.npz"), "wb").write(bytes(data))

backwards = attention(12, 2, 50, 50)
np.savez_compressed(p("backwards.npz"), attentions=backwards)
np.save(p("backwards.npy"), backwards)
base = np.load(os.path.join(SYNTHETIC, "base_f32.npy"))
np.savez_compressed(p("fortran.npz"), attentions=np.asfortranarray(base))

# 14. Messages.
np.save(p("one_token.npy"), np.ones((2, 2, 1, 1), np.float32))
grid_attention = attention(1, 1, 10, 10)
for name, value in [("negative", np.array([-3, -3], dtype=np.int64)), ("fraction", np.array([2.5, 3.6])), ("text", "3x3")]:
    with h5("patch_grid_%s.h5" % name) as f:
        f["attentions"] = grid_attention
        f.attrs["patch_grid"] = value
np.savez(p("object_tokens.npz"), attentions=attention(1, 1, 4, 4), tokens=np.array(["[CLS]", "a", "b", "c"], dtype=object))
with h5("uint64_attribute.h5") as f:
    f["attentions"] = small
    f.attrs["big"] = np.uint64(2 ** 64 - 1)
np.savez(p("qk_overflow.npz"), q=np.full((1, 1, 4, 2), 1e20, np.float32), k=np.full((1, 1, 4, 2), 1e20, np.float32))
print("wrote", len([n for n in os.listdir(HERE) if not n.endswith(".py")]), "files in", HERE)
