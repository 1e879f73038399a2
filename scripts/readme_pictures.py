#!/usr/bin/env python3
"""The pictures in docs/pictures, made by the commands the README shows beside them.

Every row of README.md's picture table names a picture (`docs/pictures/NAME`) and the command that draws it
(`attninspect ... -o NAME`). This runs each command with the given binary, writing into a scratch folder, and then
either compares the result with docs/pictures/NAME byte for byte (`check`, the default: CI fails on any drift,
naming the picture) or copies it there (`update`).

Usage: readme_pictures.py [check|update] [--bin PATH]   (run from the repository root)
"""
import argparse
import filecmp
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROW = re.compile(r"!\[[^\]]*\]\(docs/pictures/([^)]+)\).*?<br>`(attninspect [^`]+)`")


def rows(readme):
    found = []
    for line in readme.splitlines():
        m = ROW.search(line)
        if m:
            name, command = m.group(1), shlex.split(m.group(2))
            output = command[command.index("-o") + 1]
            if output != name:
                sys.exit(f"README.md: the picture {name} is shown beside a command writing {output}")
            found.append((name, command))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", choices=["check", "update"], default="check")
    ap.add_argument("--bin", default=".build/release/attninspect")
    args = ap.parse_args()
    with open("README.md", encoding="utf-8") as f:
        pictures = rows(f.read())
    if not pictures:
        sys.exit("README.md: no picture table found")
    shown = sorted(p for p in os.listdir("docs/pictures") if not p.startswith("."))
    if sorted(n for n, _ in pictures) != shown:
        sys.exit(f"docs/pictures holds {shown}, the README shows {sorted(n for n, _ in pictures)}")
    drift = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, command in pictures:
            argv = [args.bin] + command[1:]
            argv[argv.index("-o") + 1] = os.path.join(scratch, name)
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"{name}: {' '.join(command)} exited {r.returncode}: {r.stderr.strip()}")
            made, kept = os.path.join(scratch, name), os.path.join("docs/pictures", name)
            if args.mode == "update":
                shutil.copyfile(made, kept)
                print(f"wrote {kept}")
            elif not filecmp.cmp(made, kept, shallow=False):
                drift.append(f"{kept} differs from what `{' '.join(command)}` draws now ({os.path.getsize(kept)} "
                             f"against {os.path.getsize(made)} bytes): run `make pictures` and commit the result")
    for line in drift:
        print(line, file=sys.stderr)
    if args.mode == "check" and not drift:
        print(f"docs/pictures: {len(pictures)} pictures, each as its README command draws it")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
