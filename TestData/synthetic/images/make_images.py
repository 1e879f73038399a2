#!/usr/bin/env python3
"""Small pictures for the overlay reader (TestData/synthetic/images/), with their RGB pixels.

Run from anywhere:  python3 TestData/synthetic/images/make_images.py   (needs numpy and Pillow)

  palette.png     6×4, palette (colour type 3, 8-bit), 5 colours
  rgba.png        5×3, RGBA 8-bit (alpha varies; the reader drops it)
  gray16.png      4×3, 16-bit greyscale (the reader rounds v·255/65535, as for 16-bit PGM/PPM)
  gray1.png       9×2, 1-bit black and white (a row of 9 pixels is 2 bytes)
  interlaced.png  rgba.png with the IHDR interlace byte set to 1 (Adam7) and its CRC fixed: refused
  comments.ppm    3×2 P6 with a comment in the header and maximum value 1000 (2-byte samples)
  board_148.ppm   the board input cropped to its 224×148 picture (the padding removed): a 16×16 grid
                  does not fit it

expected.json: for each readable file, the RGB pixels Pillow reads, row-major, as a flat list.
For comments.ppm: round(v·255/1000) per sample, big-endian 16-bit samples.
"""
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
expected = {}


def p(name):
    return os.path.join(HERE, name)


def record(name):
    expected[name] = np.asarray(Image.open(p(name)).convert("RGB")).reshape(-1).tolist()


palette = Image.new("P", (6, 4))
palette.putdata(rng.integers(0, 5, size=24).tolist())
palette.putpalette([10, 20, 30, 200, 0, 0, 0, 200, 0, 0, 0, 200, 255, 255, 255])
palette.save(p("palette.png"))
record("palette.png")

Image.fromarray(rng.integers(0, 256, size=(3, 5, 4), dtype=np.uint8)).save(p("rgba.png"))
assert Image.open(p("rgba.png")).mode == "RGBA"
expected["rgba.png"] = np.asarray(Image.open(p("rgba.png")))[:, :, :3].reshape(-1).tolist()

g16 = rng.integers(0, 65536, size=(3, 4), dtype=np.uint16)
Image.fromarray(g16).save(p("gray16.png"))
raw16 = np.asarray(Image.open(p("gray16.png")), dtype=np.uint16)
assert (raw16 == g16).all()
expected["gray16.png"] = np.repeat(((g16.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8).reshape(-1), 3).tolist()

bw = rng.integers(0, 2, size=(2, 9), dtype=np.uint8).astype(bool)
Image.fromarray(bw).convert("1").save(p("gray1.png"))
record("gray1.png")

data = bytearray(open(p("rgba.png"), "rb").read())
assert data[12:16] == b"IHDR"
data[28] = 1  # interlace method
data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
open(p("interlaced.png"), "wb").write(bytes(data))

samples = rng.integers(0, 1001, size=(2, 3, 3))
with open(p("comments.ppm"), "wb") as f:
    f.write(b"P6\n# made by make_images.py\n3 2\n1000\n")
    f.write(b"".join(struct.pack(">H", int(v)) for v in samples.reshape(-1)))
expected["comments.ppm"] = [int((int(v) * 255 + 500) // 1000) for v in samples.reshape(-1)]

board = np.asarray(Image.open(os.path.join(HERE, "..", "..", "real", "vits14_board_input.ppm")))
rows = np.where(board.reshape(board.shape[0], -1).any(axis=1))[0]
Image.fromarray(board[rows.min():rows.max() + 1]).save(p("board_148.ppm"))
assert Image.open(p("board_148.ppm")).size == (224, 148), Image.open(p("board_148.ppm")).size

with open(p("expected.json"), "w") as f:
    json.dump(expected, f)
print("wrote", ", ".join(sorted(os.listdir(HERE))))
