#!/usr/bin/env python3
"""The pictures in docs/pictures, made by the commands the README shows beside them.

Every picture README.md shows (`docs/pictures/NAME`) is drawn by a command the README gives: in the picture table,
the command in the same row (`attninspect ... -o NAME`); elsewhere (the tour), the command of a code block that
writes `-o NAME`. This runs each command with the given binary in a scratch folder that holds the README's
stand-in files (TestData/readme) and a link to TestData, as scripts/check_readme.py runs every example, and then
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
SHOWN = re.compile(r"!\[[^\]]*\]\(docs/pictures/([^)]+)\)")


def scratch_folder(scratch, binary):
    """Fills `scratch` as the README's examples expect their working folder: copies of the stand-ins of
    TestData/readme (an example's output can replace them without touching the checkout), a link to TestData, and
    `attninspect` on PATH; returns the environment to run them in, without the ATTNINSPECT_ settings of this one."""
    bindir = os.path.join(scratch, ".bin")
    os.makedirs(bindir)
    os.symlink(os.path.abspath(binary), os.path.join(bindir, "attninspect"))
    standins = os.path.abspath("TestData/readme")
    for name in os.listdir(standins):
        if not name.endswith(".py"):
            shutil.copyfile(os.path.join(standins, name), os.path.join(scratch, name))
    os.symlink(os.path.abspath("TestData"), os.path.join(scratch, "TestData"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNINSPECT_") and k != "COLUMNS"}
    env.update(PATH=bindir + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1")
    return env


def writes(command):
    words = shlex.split(command, comments=True)
    return words[words.index("-o") + 1] if "-o" in words[:-1] else None


def pictures(readme):
    """(name, command) of every picture the README shows, each with the command that draws it."""
    found, commands, fenced = {}, {}, False
    for line in readme.splitlines():
        fenced ^= line.startswith("```")
        m = ROW.search(line)
        if m:
            name, command = m.group(1), m.group(2)
            if writes(command) != name:
                sys.exit(f"README.md: the picture {name} is shown beside a command writing {writes(command)}")
            found[name] = command
        elif fenced and line.startswith("attninspect ") and writes(line):
            commands.setdefault(writes(line), line.split(" #")[0].strip())
    for name in SHOWN.findall(readme):
        if name not in found:
            if name not in commands:
                sys.exit(f"README.md: no command of the README writes the picture docs/pictures/{name}")
            found[name] = commands[name]
    return sorted(found.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", choices=["check", "update"], default="check")
    ap.add_argument("--bin", default=".build/release/attninspect")
    args = ap.parse_args()
    with open("README.md", encoding="utf-8") as f:
        shown = pictures(f.read())
    if not shown:
        sys.exit("README.md: no picture found")
    kept_names = sorted(p for p in os.listdir("docs/pictures") if not p.startswith("."))
    if [n for n, _ in shown] != kept_names:
        sys.exit(f"docs/pictures holds {kept_names}, the README shows {[n for n, _ in shown]}")
    drift = []
    with tempfile.TemporaryDirectory() as scratch:
        env = scratch_folder(scratch, args.bin)
        for name, command in shown:
            r = subprocess.run(shlex.split(command), cwd=scratch, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"{name}: {command} exited {r.returncode}: {r.stderr.strip()}")
            made, kept = os.path.join(scratch, name), os.path.join("docs/pictures", name)
            if args.mode == "update":
                shutil.copyfile(made, kept)
                print(f"wrote {kept}")
            elif not filecmp.cmp(made, kept, shallow=False):
                drift.append(f"{kept} differs from what `{command}` draws now ({os.path.getsize(kept)} "
                             f"against {os.path.getsize(made)} bytes): run `make pictures` and commit the result")
    for line in drift:
        print(line, file=sys.stderr)
    if args.mode == "check" and not drift:
        print(f"docs/pictures: {len(shown)} pictures, each as its README command draws it")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
