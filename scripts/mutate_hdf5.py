#!/usr/bin/env python3
"""Mutation run over HDF5 files: libhdf5 itself is not fuzzed here, so attninspect's use of it is.

Each HDF5 file in TestData is truncated at many lengths and has bytes flipped at many offsets (fixed seed);
every mutant is given to `attninspect info --quiet` and `attninspect stats --quiet`. Each run must end with status
0 or 1 (never a signal, never 64), within 20 s, and with exactly one line on stderr when it fails. Prints the counts
and exits 1 on any finding, naming the mutant (kept in the output folder).

usage: mutate_hdf5.py BINARY [--mutants N] [--out DIR]
"""
import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--mutants", type=int, default=40, help="mutants per file (half truncations, half bit flips)")
    ap.add_argument("--out", default="/tmp/attninspect-hdf5-mutants")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261128)
    files = sorted(p for p in (ROOT / "TestData").rglob("*.h5") if p.stat().st_size < 300_000)
    runs = findings = 0
    for f in files:
        data = f.read_bytes()
        for m in range(args.mutants):
            b = bytearray(data)
            if m % 2 == 0:
                kind = f"truncated at {(cut := rng.randrange(0, len(b)))}"
                b = b[:cut]
            else:
                flips = [rng.randrange(0, len(b)) for _ in range(rng.randint(1, 8))]
                for o in flips:
                    b[o] ^= 1 << rng.randrange(8)
                kind = f"bits flipped at {flips}"
            mutant = out / f"{f.stem}.m{m}.h5"
            mutant.write_bytes(bytes(b))
            found = False
            for command in (["info"], ["stats"]):
                runs += 1
                try:
                    # --quiet: only an error may reach stderr, so "one line" is exact.
                    r = subprocess.run([args.binary] + command + ["--quiet", str(mutant)], capture_output=True, timeout=20)
                except subprocess.TimeoutExpired:
                    found = True
                    print(f"HANG  {command[0]} {mutant} ({f.name} {kind})")
                    continue
                lines = r.stderr.decode("utf-8", "replace").strip().splitlines()
                if r.returncode not in (0, 1) or (r.returncode == 1 and len(lines) != 1):
                    found = True
                    print(f"BAD   {command[0]} {mutant} ({f.name} {kind}): status {r.returncode}, stderr {lines[:3]}")
            if found:
                findings += 1      # the mutant is kept for a regression test
            else:
                mutant.unlink()
    print(f"{runs} runs over {len(files)} HDF5 files x {args.mutants} mutants: {findings} findings")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
