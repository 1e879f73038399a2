#!/usr/bin/python3
"""Behaviour snapshot: record what a binary does on a fixed list of cases, and compare two such records.

    /usr/bin/python3 scripts/behaviour_snapshot.py snapshot BINARY OUTDIR [-j N]
    /usr/bin/python3 scripts/behaviour_snapshot.py compare OLD NEW [--allow FILE]
    /usr/bin/python3 scripts/behaviour_snapshot.py list                    # print the case ids and argv

Meant for refactors that must not change behaviour: take a snapshot with the binary before, build, take one with
the binary after, compare them. Standard library only.

snapshot: runs BINARY (copied first to a scratch folder under the fixed name `attninspect`, so a rebuild during the
run cannot mix two binaries, and argv[0] is the same whatever the file is called) over every case, with -j N cases
at a time (default 2), and writes OUTDIR/<case-id>/ holding
    argv     the arguments after the program name, one per line (inputs relative to the repository root; the
             case's output folder written as $OUT)
    env      only when the case sets variables beyond the base environment below, one NAME=VALUE a line
    status   the exit status, `timeout` (over 60 s; the process group is killed), or 128+N for a signal N
    stdout, stderr
             with the output folder's path replaced by $OUT, the scratch folder's by $TMP, the repository's by $REPO
    *        every file left in the case's output folder (images, .npy, .csv, .svg, ...), byte for byte; a left-over
             temporary file's random suffix (`.tmp-AbC123`) is written as `.tmp-XXXXXX`
and OUTDIR/SNAPSHOT.txt (the binary, time taken, cases that crashed or timed out; not compared).
OUTDIR must not exist or be empty.

Every case runs with cwd = the repository root (this script's parent's parent), stdin from /dev/null, stdout and
stderr as pipes, and this environment only (nothing is inherited):
    PATH=/usr/bin:/bin  HOME=/nonexistent  LC_ALL=C  LANG=C  COLUMNS=100  TERM=dumb  ATTNINSPECT_THREADS=2
Why: `show`/`tokens` colour only when stdout is a terminal and NO_COLOR is unset (a pipe: never), and fit their
width to the terminal, else $COLUMNS, else 80; progress lines appear only when stderr is a terminal or
ATTNINSPECT_PROGRESS=1 (a pipe: never); the worker count (ATTNINSPECT_THREADS, else the cores) appears in the
time estimates of flow, rollout and heads (`estimated at 98 s on 2 threads`) and fixes how rows are shared out.
Some cases add variables (NO_COLOR, COLUMNS, ATTNINSPECT_THREADS=1, ATTNINSPECT_PORTABLE_KERNELS, ...); their id
ends in `__NAME=VALUE`.
Still machine-dependent, so compare snapshots taken on the same machine: the vector kernels chosen at run time
(AVX-512, AVX2 or portable, whose results may differ in the last float bits) and --max-memory's default (half of
this machine's memory), which appears in the messages of the few cases it refuses.

Cases (`list` prints them): the basic command set (info, stats, stats --json, stats --csv, rollout -o .npy and
.png, heads --json, entropy -o .png, grid -o .png, heatmap -o .png, show, tokens, verify, flow -o .npy) on every
.h5/.npy/.npz/.safetensors under TestData/real, TestData/synthetic and TestData/hostile (found by extension, so new
fixtures join automatically: their new cases then show as `only in NEW`), then a hand-written list of option-rich
cases. An id reads `<command><options>__<inputs>[__<env>]`: options as written, an option's value after `=`, the
output file by its name (`-o=x.png`), inputs as their path under TestData with `/` as `_`, joined by `+`, e.g.
`stats--json__real_vits14_board_small.h5`, `rollout--head-fusion=max-o=x.npy__real_minilm6_pride_LHSS_f32.npy`
(a value attached with `=` is written `==`: `stats--layer==-1__...`; cases that differ only in the order of their
arguments, or in files placed in $OUT first, end in a tag such as `__input-first` or `__existing-dump`).
Left out as too slow: `flow --view matrix` on the 257-token ViT dump (about 75 s; only its refusal is recorded).

compare: compares OLD and NEW case by case and file by file, byte for byte; prints one line per difference
(`DIFF` or `allowed`, the case id, the file, and for text files a unified diff of at most 20 lines; for .npy of the
same header, how many values differ and the largest difference), then `N cases, M identical, K differ`.
Exit status 1 when a difference is not allowed, else 0. `--allow FILE`: lines `<case-id-glob> <file-glob>  # reason`
(or `<case-id-glob> <file-glob> ~ <regex>  # reason`: allowed only when the texts are equal without the lines the
regex matches)
(fnmatch globs; `#` starts a comment; a missing case counts as file `(case)`), the differences the refactor is meant
to make; they are printed marked `allowed` and do not fail the comparison. A rule that matched nothing is reported.
"""
import argparse
import ast
import difflib
import fnmatch
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 60.0
BASE_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "LC_ALL": "C",
    "LANG": "C",
    "COLUMNS": "100",
    "TERM": "dumb",
    "ATTNINSPECT_THREADS": "2",
}
RESERVED = {"argv", "env", "status", "stdout", "stderr"}
DUMP_EXTENSIONS = (".h5", ".npy", ".npz", ".safetensors")
DUMP_FOLDERS = ("TestData/real", "TestData/synthetic", "TestData/hostile")
OUT = "$OUT"
# Options whose value is a path in TestData (so it is named in the id's options, not among the inputs).
PATH_VALUED = {"--overlay"}


def o(name):
    """An output file in the case's own folder."""
    return OUT + "/" + name


class Case:
    def __init__(self, argv, env=None, setup=None, tag=None):
        self.argv = list(argv)
        self.env = dict(env or {})
        self.setup = list(setup or [])     # [(path in the repository, name in $OUT)] copied in before the run
        self.tag = tag
        self.id = case_id(self.argv, self.env, tag)

    def key(self):
        return (tuple(self.argv), tuple(sorted(self.env.items())), tuple(self.setup))


def short_input(path):
    if path.startswith("TestData/"):
        path = path[len("TestData/"):]
    return path.replace("/", "_")


def case_id(argv, env, tag):
    left, inputs = [argv[0] if not argv[0].startswith("-") else "attninspect" + argv[0]], []
    previous = None
    for token in argv[1:]:
        is_option = re.match(r"^--?[A-Za-z]", token) is not None
        if token.startswith(OUT + "/"):
            left.append("=" + token[len(OUT) + 1:])
        elif token.startswith("TestData/") or token.startswith("/") or token.startswith("no/such"):
            if previous in PATH_VALUED:
                left.append("=" + os.path.basename(token))
            else:
                inputs.append(short_input(token))
        elif is_option:
            left.append(token.replace("=", "==", 1))       # --layer=-1 is not --layer -1
        else:
            left.append("=" + token)
        previous = token
    text = "".join(left)
    if inputs:
        text += "__" + "+".join(inputs)
    if env:
        text += "__" + "+".join("%s=%s" % kv for kv in sorted(env.items()))
    if tag:
        text += "__" + tag
    text = re.sub(r"[^A-Za-z0-9._=+:,@-]", "_", text)
    if len(text) > 200:
        raise SystemExit("case id too long: " + text)
    return text


def discover_dumps():
    found = []
    for folder in DUMP_FOLDERS:
        for root, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs.sort()
            for name in files:
                if name.endswith(DUMP_EXTENSIONS):
                    found.append(os.path.relpath(os.path.join(root, name), REPO))
    return sorted(found)


# The basic command set, run on every dump: (argv before the dump, argv after it).
BASIC = [
    (["info"], []),
    (["stats"], []),
    (["stats", "--json"], []),
    (["stats", "--csv"], []),
    (["rollout"], ["-o", o("x.npy")]),
    (["rollout"], ["-o", o("x.png")]),
    (["heads", "--json"], []),
    (["entropy"], ["-o", o("x.png")]),
    (["grid"], ["-o", o("x.png")]),
    (["heatmap"], ["-o", o("x.png")]),
    (["show"], []),
    (["tokens"], []),
    (["verify"], []),
    (["flow"], ["-o", o("x.npy")]),
]


def basic_cases():
    cases = []
    for dump in discover_dumps():
        for before, after in BASIC:
            cases.append(Case(before + [dump] + after))
    return cases


def hand_cases():
    cases = []

    def add(*argv, env=None, setup=None, tag=None):
        cases.append(Case(argv, env, setup, tag))

    R, S, H = "TestData/real/", "TestData/synthetic/", "TestData/hostile/"
    V = R + "vits14_board_small.h5"             # ViT-S/14, 3 layers × 6 heads × 257 tokens, patch_grid 16×16, f16 gzip, q/k
    Z = R + "minilm6_zen_layers_f16.h5"         # MiniLM, 6 × 12 × 26, per-layer groups, tokens, q/k
    P = R + "minilm6_pride_LHSS_f32.npy"        # MiniLM, 6 × 12 × 28, no tokens
    PPM = R + "vits14_board_input.ppm"
    BASE = S + "base_f32.npy"
    SINGLE = S + "single_f32.h5"                # base with tokens, patch_grid 3×3
    BATCH = S + "batch_LBHQK.npy"
    BATCH64 = S + "single_f64_batch.h5"
    PADDED = S + "padding/padded_mask.npz"
    HFB = S + "exporters/hf_text_batch.h5"
    CROSS_T, CROSS_V = S + "cross/cross_text.npz", S + "cross/cross_vision.h5"
    DA, DB = S + "diff/a.npy", S + "diff/b.npy"
    HVIT, HTEXT = S + "heads/vit.h5", S + "heads/text.npz"
    COLORMAPS = ["viridis", "inferno", "magma", "plasma", "turbo", "jet", "gray", "coolwarm"]

    # --- top level: version, help, usage errors
    add("--version")
    add("--help")
    add("help")
    add("help", "stats")
    add("nosuchcommand")
    for cmd in ["info", "stats", "rollout", "flow", "heads", "heatmap", "grid", "entropy", "show", "tokens", "diff", "verify"]:
        add(cmd, "--help")
    add("stats")                                                    # missing file: usage error
    add("rollout", V)                                               # missing -o
    add("stats", "--nosuchoption", V)
    add("stats", "--json", "--csv", V)                              # exclusive
    add("rollout", V, "-o", o("x.jpg"))                             # unknown extension
    add("rollout", V, "-o", o("nodir/x.png"))                       # unwritable
    add("info", "--json", V)                                        # info has no --json: usage error
    add("info", "--json", BASE)
    add("stats", "no/such/file.npy")
    add("info", S + "bad/not_a_dump.txt")
    add("stats", S + "bad/not_a_dump.txt")
    add("info", S + "bad/BAD_FILES.txt")

    # --- how command lines are spelled (the plain ones go through a fast path of their own, the rest through
    # swift-argument-parser)
    add("stats", "--layer=-1", V)
    add("stats", V, "--layer", "-1", tag="input-first")
    add("stats", V, "--json", "--layer", "0", tag="input-first")
    add("stats", "--layer", "-1", "--layer", "0", V)
    add("stats", "--layer", "1.0", V)
    add("stats", "--layer", "+1", V)
    add("stats", "--layer", "", V)
    add("stats", "--batch=all", "--json", BATCH)
    add("stats", "--json", "-q", V)
    add("stats", "-q", "--csv", "--", V)
    add("stats", "--json=true", V)
    add("stats", "-h")
    add("stats", "--version")
    add("info", V, V)
    add("rollout", V, "--output", o("x.npy"))
    add("rollout", V, "--output=" + o("x.npy"))
    add("rollout", V, "-o" + o("x.npy"))
    add("rollout", "-o", o("x.npy"), V, tag="output-first")
    add("rollout", P, "--discard-ratio", ".5", "-o", o("x.npy"))
    add("rollout", P, "--discard-ratio", "5e-1", "-o", o("x.npy"))
    add("rollout", P, "--discard-ratio=0.5", "--head-fusion=max", "-o", o("x.npy"))
    add("rollout", P, "--head-fusion", "MEAN", "-o", o("x.npy"))
    add("heatmap", V, "--head=all", "--layer=all", "-o", o("x.npy"))
    add("heatmap", V, "--head", "-1", "-o", o("x.npy"))
    add("heatmap", V, "--head", "Mean", "-o", o("x.npy"))
    add("heatmap", V, "--layer", "-1", "--head", "0", "--head", "1", "-o", o("x.npy"))
    add("grid", V, "--head", "-1", "-o", o("x.npy"))
    add("flow", P, "--layer=-2", "-o", o("x.npy"))
    add("show", V, "--color=never", "--width=50")
    add("tokens", Z, "--query=3", "--layer=2")
    add("entropy", P, "--normalized", "--normalized")
    add("diff", DA, DB, "--json", "--layer", "0")
    add("diff", "--csv", DA, DB, tag="option-first")
    add("diff", DA)
    add("verify", V, "--tolerance=0.02", "--qk-tolerance=0.01")

    # --- info
    for f in [V, Z, P]:
        add("info", "-q", f)
        add("info", "--from-qk", f)
        add("info", "--max-memory", "1K", f)
    add("info", "--dataset", "/attentions", V)
    add("info", "--dataset", "/q", V)
    add("info", "--dataset", "nosuch", V)
    add("info", "--batch", "1", BATCH)
    add("info", "--batch", "2", BATCH)
    add("info", "--batch", "3", BATCH)
    add("info", "--batch", "all", BATCH)
    add("info", "--heads", "2", S + "qk_LShd.h5")
    add("info", "--heads", "4", S + "qk_LShd.h5")
    add("info", "--dtype", "bfloat16", S + "safetensors/base_bf16_void.npy")
    add("info", "--dtype", "bfloat16", S + "safetensors/base_bf16_opaque.h5")
    add("info", "--length", "3", S + "padding/padded_lengths.h5")
    add("info", "--keep-padding", PADDED)
    add("info", "--batch", "1", PADDED)
    add("info", "--causal", S + "qk_only.npz")
    add("info", "--no-causal", S + "qk_attributes/qk_causal_meta.safetensors")
    add("info", "--scale", "0.5", S + "qk_only.npz")

    # --- stats
    for f in [V, Z, P]:
        for layer in ["0", "-1", "2", "-7", "99"]:
            add("stats", "--layer", layer, f)
        add("stats", "--layer", "1", "--json", f)
        add("stats", "--layer", "-2", "--csv", f)
        add("stats", "--outliers", f)
        add("stats", "--outliers", "--json", f)
        add("stats", "--quiet", f)
        add("stats", "--from-qk", f)
        add("stats", "--from-qk", "--json", f)
        add("stats", "--max-memory", "1K", f)
        add("stats", "--max-memory", "512M", "--json", f)
    add("stats", "--from-qk", "--causal", "--json", V)
    add("stats", "--from-qk", "--scale", "0.5", "--json", Z)
    for f in [BATCH, BATCH64, PADDED, HFB, S + "padding/padded_mask_bool.h5", S + "qk_LBHSd.h5"]:
        add("stats", "--batch", "all", f)
        add("stats", "--batch", "all", "--json", f)
        add("stats", "--batch", "all", "--csv", f)
        add("stats", "--batch", "1", "--json", f)
    add("stats", "--batch", "all", "--outliers", "--json", BATCH)
    add("stats", "--batch", "2", "--json", BATCH)
    add("stats", "--batch", "5", BATCH)
    add("stats", "--batch", "-1", BATCH)
    add("stats", "--batch", "x", BATCH)
    add("stats", "--batch", "all", "--keep-padding", "--json", PADDED)
    add("stats", "--keep-padding", "--json", PADDED)
    add("stats", "--length", "3", "--json", S + "padding/padded_lengths.h5")
    add("stats", "--length", "99", S + "padding/padded_lengths.h5")
    add("stats", "--length", "0", S + "padding/padded_lengths.h5")
    add("stats", "--json", S + "padding/padded_qk.npz")
    add("stats", "--json", S + "padding/padded_mask_sample1.safetensors")
    add("stats", "--json", "--batch", "1", S + "padding/mask_be_fortran.npy")
    # several files
    add("stats", Z, P)
    add("stats", "--json", Z, P)
    add("stats", "--csv", Z, P)
    add("stats", BASE, S + "base_f16.npy", S + "base_f64.npy", SINGLE)
    add("stats", "--json", BASE, S + "base_f16.npy", S + "base_f64.npy", SINGLE)
    add("stats", "--csv", BASE, S + "base_f16.npy", S + "base_f64.npy", SINGLE)
    add("stats", BASE, S + "bad/truncated.npy", S + "one_layer_HQK.npy")
    add("stats", "--json", BASE, S + "bad/truncated.npy", "no/such/file.npy")
    add("stats", "--csv", BASE, S + "bad/truncated.npy")
    add("stats", "--batch", "all", "--json", BATCH, BATCH64, BASE)
    add("stats", "--batch", "all", "--csv", BATCH, PADDED)
    add("stats", "--layer", "0", "--json", BASE, S + "layers12_reference.npy")
    add("stats", "--outliers", "--json", BASE, S + "base_f16.npy")
    # input options
    for f in [S + "both_attn_and_qk.h5", S + "dump_savez.npz", S + "dump_savez_compressed.npz",
              S + "per_layer_groups_f16.h5", S + "safetensors/qk.safetensors"]:
        add("stats", "--from-qk", "--json", f)
    add("stats", "--json", S + "qk_only.npz")
    add("stats", "--causal", "--json", S + "qk_only.npz")
    add("stats", "--scale", "0.25", "--json", S + "qk_only.npz")
    add("stats", "--scale", "-1", S + "qk_only.npz")
    add("stats", "--heads", "2", "--json", S + "qk_LShd.h5")
    add("stats", "--heads", "3", S + "qk_LShd.h5")
    add("stats", "--heads", "2", "--json", S + "qk_LHSd.h5")
    add("stats", "--dataset", "attentions", "--json", S + "dump_savez.npz")
    add("stats", "--dataset", "q", S + "dump_savez.npz")
    add("stats", "--dataset", "/layers", "--json", S + "layers_numbered.h5")
    add("stats", "--dataset", "/vit_b16/attentions", S + "layouts/nested_single.h5")
    add("stats", "--dataset", "/attn", "--batch", "1", BATCH64)
    add("stats", "--dtype", "bfloat16", "--json", S + "safetensors/base_bf16_void.npy")
    add("stats", "--dtype", "bfloat16", "--json", S + "safetensors/base_bf16_opaque.h5")
    add("stats", "--json", S + "safetensors/base_bf16.safetensors")
    for f in ["qk_bad_causal.h5", "qk_bad_scale.h5", "qk_causal_int.h5", "qk_causal_meta.safetensors", "qk_causal_scale.h5"]:
        add("stats", "--no-causal", "--json", S + "qk_attributes/" + f)
        add("stats", "--scale", "1", "--json", S + "qk_attributes/" + f)
    for f in ["tl_qk.h5", "tl_pattern.h5", "hf_text.h5"]:
        add("stats", "--from-qk", "--json", S + "exporters/" + f)
    add("stats", "--batch", "1", "--from-qk", "--json", S + "exporters/tl_pattern.h5")

    # --- rollout
    for f, ext in [(V, "npy"), (Z, "npy"), (P, "npy"), (V, "png"), (Z, "png"), (Z, "svg"), (P, "pgm"), (V, "ppm")]:
        add("rollout", f, "--view", "matrix", "-o", o("x." + ext))
    for f in [V, SINGLE, P]:
        add("rollout", f, "--view", "grid", "-o", o("x.npy"))
    for fusion in ["mean", "max", "min", "0", "5", "11", "12", "-1"]:
        add("rollout", P, "--head-fusion", fusion, "-o", o("x.npy"))
    add("rollout", V, "--head-fusion", "max", "-o", o("x.npy"))
    for ratio in ["0", "0.5", "0.9", "0.99", "1", "-0.1"]:
        add("rollout", P, "--discard-ratio", ratio, "-o", o("x.npy"))
    add("rollout", V, "--discard-ratio", "0.9", "--head-fusion", "max", "-o", o("x.npy"))
    add("rollout", V, "--discard-ratio", "0.9", "--view", "matrix", "-o", o("x.npy"))
    for start, end in [("1", "-1"), ("0", "0"), ("2", "4"), ("3", "1"), ("-2", "-1"), ("0", "9")]:
        add("rollout", P, "--start-layer", start, "--end-layer", end, "-o", o("x.npy"))
    add("rollout", V, "--start-layer", "1", "-o", o("x.npy"))
    add("rollout", V, "--end-layer", "1", "-o", o("x.npy"))
    for compat in ["abnar", "vit-explain", "chefer", "vit-keras"]:
        add("rollout", P, "--compat", compat, "-o", o("x.npy"))
        add("rollout", V, "--compat", compat, "-o", o("x.npy"))
        add("rollout", Z, "--compat", compat, "--view", "matrix", "-o", o("x.npy"))
    add("rollout", P, "--compat", "vit-keras", "--discard-ratio", "0.5", "-o", o("x.npy"))
    add("rollout", P, "--compat", "vit-explain", "--discard-ratio", "0", "-o", o("x.npy"))
    add("rollout", P, "--compat", "vit-explain", "--head-fusion", "mean", "-o", o("x.npy"))
    add("rollout", P, "--compat", "chefer", "--start-layer", "0", "-o", o("x.npy"))
    add("rollout", P, "--compat", "nosuch", "-o", o("x.npy"))
    for token in ["0", "5", "256", "257"]:
        add("rollout", V, "--token", token, "-o", o("x.npy"))
    add("rollout", V, "--prefix", "0", "-o", o("x.npy"))
    add("rollout", V, "--prefix", "1", "--grid", "8x32", "-o", o("x.npy"))
    add("rollout", V, "--grid", "15x15", "-o", o("x.npy"))
    add("rollout", V, "--grid", "abc", "-o", o("x.npy"))
    add("rollout", BASE, "--view", "grid", "--grid", "3x3", "-o", o("x.npy"))
    add("rollout", P, "--view", "grid", "--prefix", "3", "-o", o("x.npy"))
    add("rollout", V, "--overlay", PPM, "--legend", "-o", o("x.png"))              # README's picture
    add("rollout", V, "--overlay", PPM, "-o", o("x.ppm"))
    for alpha in ["0", "0.6", "1", "1.5"]:
        add("rollout", V, "--overlay", PPM, "--alpha", alpha, "-o", o("x.png"))
    add("rollout", V, "--overlay", PPM, "--resample", "nearest", "-o", o("x.png"))
    add("rollout", V, "--overlay", PPM, "--colormap", "inferno", "--legend", "-o", o("x.png"))
    add("rollout", V, "--overlay", S + "images/board_148.ppm", "-o", o("x.png"))
    add("rollout", V, "--overlay", S + "images/board_148.ppm", "--fit", "stretch", "-o", o("x.png"))
    add("rollout", V, "--overlay", PPM, "-o", o("x.npy"))
    add("rollout", V, "--overlay", PPM, "--view", "matrix", "-o", o("x.png"))
    add("rollout", V, "--overlay", "TestData/real/nosuch.ppm", "-o", o("x.png"))
    for img in ["gray1.png", "gray16.png", "interlaced.png", "palette.png", "rgba.png", "comments.ppm"]:
        add("rollout", SINGLE, "--overlay", S + "images/" + img, "--fit", "stretch", "-o", o("x.png"))
    add("rollout", SINGLE, "--overlay", S + "images/rgba.png", "-o", o("x.png"))
    for cmap in COLORMAPS:
        add("rollout", V, "--colormap", cmap, "-o", o("x.png"))
    add("rollout", V, "--colormap", "gray", "-o", o("x.pgm"))
    add("rollout", V, "--legend", "-o", o("x.png"))
    add("rollout", P, "--legend", "-o", o("x.png"))
    add("rollout", V, "--range", "0:0.01", "--legend", "-o", o("x.png"))
    add("rollout", V, "--range", "shared", "-o", o("x.png"))
    add("rollout", V, "--range", "0.5:0.1", "-o", o("x.png"))
    add("rollout", V, "--zoom", "1", "-o", o("x.png"))
    add("rollout", V, "--zoom", "4", "-o", o("x.ppm"))
    add("rollout", V, "--zoom", "0", "-o", o("x.png"))
    add("rollout", P, "--zoom", "3", "-o", o("x.png"))
    add("rollout", V, "--from-qk", "-o", o("x.npy"))
    add("rollout", Z, "--from-qk", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", S + "qk_only.npz", "--causal", "-o", o("x.npy"))
    add("rollout", BATCH, "--batch", "1", "-o", o("x.npy"))
    add("rollout", BATCH, "--batch", "2", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", BATCH, "--batch", "all", "-o", o("x.npy"))
    add("rollout", PADDED, "--batch", "1", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", PADDED, "--keep-padding", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", S + "padding/padded_lengths.h5", "--length", "3", "-o", o("x.npy"))
    add("rollout", S + "padding/padded_lengths.h5", "--length", "3", "--allow-unnormalised", "-o", o("x.npy"))
    add("rollout", HFB, "--batch", "1", "-o", o("x.svg"))
    add("rollout", S + "nan_inf.npy", "-o", o("x.npy"))
    add("rollout", S + "verify/logits.npy", "-o", o("x.npy"))
    add("rollout", S + "verify/logits.npy", "--allow-unnormalised", "-o", o("x.npy"))
    add("rollout", S + "verify/transposed.npy", "-o", o("x.npy"))
    add("rollout", S + "verify/transposed.npy", "--allow-unnormalised", "-o", o("x.npy"))
    add("rollout", CROSS_T, "-o", o("x.npy"))
    add("rollout", CROSS_V, "-o", o("x.npy"))
    add("rollout", V, "--max-memory", "1K", "-o", o("x.npy"))
    add("rollout", V, "--view", "matrix", "--max-seconds", "0.000001", "-o", o("x.npy"))
    add("rollout", V, "-q", "-o", o("x.png"))
    add("rollout", Z, "--quiet", "--view", "matrix", "-o", o("x.svg"))
    # gradient-weighted rollout
    for f in ["attn_grad.npz", "per_layer_grads.h5", "custom_name.npz", "no_grads.npz", "wrong_shape.npz"]:
        add("rollout", S + "gradients/" + f, "--gradients", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", S + "gradients/custom_name.npz", "--gradient-dataset", "relevance_grads", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", S + "gradients/custom_name.npz", "--gradient-dataset", "nosuch", "-o", o("x.npy"))
    add("rollout", S + "gradients/attn_grad.npz", "--gradients", "--start-layer", "1", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", S + "gradients/attn_grad.npz", "--gradients", "--end-layer", "1", "--view", "matrix", "-o", o("x.npy"))
    add("rollout", S + "gradients/attn_grad.npz", "--gradients", "--view", "grid", "--grid", "3x3", "-o", o("x.npy"))
    add("rollout", S + "gradients/attn_grad.npz", "--gradients", "--head-fusion", "max", "-o", o("x.npy"))
    add("rollout", S + "gradients/attn_grad.npz", "--gradients", "--discard-ratio", "0.5", "-o", o("x.npy"))
    add("rollout", S + "gradients/per_layer_grads.h5", "--gradients", "--view", "matrix", "-o", o("x.png"))
    add("rollout", S + "gradients/attn_grad.npz", "--gradients", "-o", o("x.png"))
    # outputs that already exist
    add("rollout", P, "-o", o("x.npy"), setup=[(BASE, "x.npy")], tag="existing-dump")
    add("rollout", P, "--force", "-o", o("x.npy"), setup=[(BASE, "x.npy")], tag="existing-dump")
    add("rollout", P, "-o", o("x.png"), setup=[(BASE, "x.png")], tag="existing-dump")
    add("rollout", P, "-o", o("x.png"), setup=[(S + "images/rgba.png", "x.png")], tag="existing-png")
    add("rollout", P, "-o", o("x.npy"), setup=[(S + "images/rgba.png", "x.npy")], tag="existing-png")
    add("rollout", o("in.npy"), "-o", o("in.npy"), setup=[(P, "in.npy")], tag="output-is-input")
    add("rollout", o("in.npy"), "-o", o("x.npy"), setup=[(P, "in.npy")], tag="input-in-out")

    # --- flow
    for f in [Z, P, S + "flow/random_L3H2S6.npy", S + "flow/sparse_L2H2S5.npy", BASE]:
        add("flow", f, "--view", "matrix", "-o", o("x.npy"))
    add("flow", Z, "-o", o("x.svg"))
    add("flow", Z, "-o", o("x.png"))
    add("flow", P, "--legend", "--colormap", "magma", "-o", o("x.png"))
    for layer in ["0", "1", "-2", "-6", "6"]:
        add("flow", P, "--layer", layer, "-o", o("x.npy"))
    add("flow", V, "-o", o("x.png"))
    add("flow", V, "--overlay", PPM, "-o", o("x.png"))
    add("flow", V, "--overlay", PPM, "--alpha", "0.7", "--resample", "nearest", "-o", o("x.png"))
    add("flow", V, "--token", "5", "-o", o("x.npy"))
    add("flow", V, "--layer", "0", "-o", o("x.npy"))
    # refused: estimated at 98 s (it takes about 75 s on 2 cores with --max-seconds 100: too slow for the snapshot)
    add("flow", V, "--view", "matrix", "-o", o("x.npy"))
    add("flow", V, "--view", "matrix", "--max-seconds", "0.5", "-o", o("x.npy"))
    add("flow", P, "--view", "matrix", "--max-seconds", "0.0001", "-o", o("x.npy"))
    add("flow", P, "--view", "grid", "--prefix", "3", "-o", o("x.npy"))
    add("flow", SINGLE, "--view", "grid", "-o", o("x.npy"))
    add("flow", SINGLE, "--view", "grid", "--token", "4", "-o", o("x.png"))
    add("flow", CROSS_T, "-o", o("x.npy"))
    add("flow", S + "nan_inf.npy", "-o", o("x.npy"))
    add("flow", S + "verify/logits.npy", "--allow-unnormalised", "-o", o("x.npy"))
    add("flow", S + "verify/transposed.npy", "--allow-unnormalised", "-o", o("x.npy"))
    add("flow", PADDED, "--batch", "1", "-o", o("x.npy"))
    add("flow", BATCH, "--batch", "2", "-o", o("x.npy"))
    add("flow", S + "qk_only.npz", "--causal", "-o", o("x.npy"))
    add("flow", Z, "--from-qk", "-o", o("x.npy"))
    add("flow", Z, "--max-memory", "1K", "-o", o("x.npy"))
    add("flow", Z, "-q", "-o", o("x.npy"))

    # --- heads
    for f in [V, Z, P]:
        add("heads", f)
        add("heads", "--csv", f)
        add("heads", "--similarity", "none", "--json", f)
        add("heads", "--similarity-out", o("sim.csv"), f)
    add("heads", "--patch-size", "14", "--json", V)                       # README
    add("heads", "--patch-size", "14", V)
    add("heads", "--similarity", "all", "--json", Z)
    add("heads", "--similarity", "all", "--similarity-out", o("sim.npy"), Z)
    add("heads", "--similarity", "all", "--similarity-out", o("sim.png"), P)
    add("heads", "--similarity", "all", "--max-seconds", "0.0001", Z)
    add("heads", "--similarity", "layer", "--similarity-out", o("sim.npy"), V)
    add("heads", "--similarity", "layer", "--similarity-out", o("sim.ppm"), V)
    add("heads", "--similarity", "layer", "--similarity-out", o("sim.pgm"), Z)
    add("heads", "--similarity", "nosuch", Z)
    add("heads", "--similarity-out", o("sim.txt"), Z)
    for k in ["0", "1", "30"]:
        add("heads", "--sink-tokens", k, "--json", Z)
    add("heads", "--exclude-bos", "--json", Z)
    add("heads", "--exclude-current-token", "--json", Z)
    add("heads", "--exclude-bos", "--exclude-current-token", "--csv", HTEXT)
    add("heads", "--grid", "16x16", "--prefix", "1", "--json", V)
    add("heads", "--grid", "4x4", "--json", HVIT)
    add("heads", "--grid", "4x4", "--prefix", "1", "--patch-size", "16", "--csv", HVIT)
    add("heads", "--grid", "5x5", HVIT)
    add("heads", "--prefix", "2", "--json", P)
    add("heads", "--outlier-z", "2", "--outlier-ratio", "2", "--json", V)
    add("heads", "--outlier-z", "1", "--outlier-ratio", "1", Z)
    add("heads", "--cls-token", "<s>", "--sep-token", "</s>", "--json", HFB)
    add("heads", "--cls-token", "[SEP]", "--sep-token", "[CLS]", "--csv", Z)
    add("heads", "--from-qk", "--json", V)
    add("heads", "--batch", "1", "--json", HFB)
    add("heads", "--batch", "1", "--json", PADDED)
    add("heads", "--keep-padding", "--json", PADDED)
    add("heads", "-q", Z)
    for f in sorted(os.listdir(os.path.join(REPO, S, "heads"))):
        if f.endswith(DUMP_EXTENSIONS):
            add("heads", S + "heads/" + f)
            add("heads", "--csv", S + "heads/" + f)
    add("heads", "--json", CROSS_T)
    add("heads", "--json", CROSS_V)

    # --- heatmap
    for f in [V, Z, P]:
        for layer, head in [("0", "0"), ("-1", "mean"), ("1", "max"), ("2", "min"), ("all", "mean"), ("0", "all"),
                            ("all", "all"), ("-1", "5"), ("99", "mean"), ("0", "99")]:
            add("heatmap", f, "--layer", layer, "--head", head, "-o", o("x.png"))
        add("heatmap", f, "--layer", "all", "--head", "all", "--range", "shared", "--legend", "-o", o("x.png"))
        add("heatmap", f, "--head", "0", "-o", o("x.npy"))
        add("heatmap", f, "--layer", "all", "--head", "all", "-o", o("x.npy"))
    add("heatmap", Z, "--layer", "2", "--head", "all", "-o", o("x.png"))                  # README
    add("heatmap", Z, "--layer", "2", "-o", o("x.svg"))                                     # README
    add("heatmap", Z, "--layer", "2", "--head", "3", "-o", o("x.svg"))
    add("heatmap", Z, "--layer", "all", "-o", o("x.svg"))
    add("heatmap", P, "--head", "all", "-o", o("x.png"))                                     # README
    add("heatmap", P, "-o", o("x.svg"))
    for cmap in COLORMAPS:
        add("heatmap", Z, "--colormap", cmap, "-o", o("x.png"))
    add("heatmap", Z, "--colormap", "gray", "-o", o("x.pgm"))
    add("heatmap", Z, "--colormap", "jet", "-o", o("x.ppm"))
    add("heatmap", Z, "--colormap", "nosuch", "-o", o("x.png"))
    for rng in ["0:0.5", "0:1", "-0.1:0.1", "0.2:0.2", "shared", "x"]:
        add("heatmap", Z, "--range", rng, "--legend", "-o", o("x.png"))
    for zoom in ["1", "3", "16"]:
        add("heatmap", Z, "--zoom", zoom, "-o", o("x.png"))
    add("heatmap", Z, "--legend", "--zoom", "2", "--head", "all", "-o", o("x.png"))
    add("heatmap", Z, "--legend", "--head", "all", "-o", o("x.png"))
    add("heatmap", Z, "--overlay", PPM, "-o", o("x.png"))
    add("heatmap", CROSS_T, "-o", o("x.svg"))                                            # README
    add("heatmap", CROSS_T, "--layer", "all", "--head", "all", "-o", o("x.png"))
    add("heatmap", CROSS_V, "--head", "1", "-o", o("x.npy"))
    add("heatmap", PADDED, "--batch", "1", "-o", o("x.svg"))
    add("heatmap", PADDED, "--keep-padding", "-o", o("x.npy"))
    add("heatmap", HFB, "--batch", "1", "--layer", "0", "-o", o("x.svg"))
    add("heatmap", S + "heads/text_strings.npz", "-o", o("x.svg"))
    add("heatmap", S + "nan_inf.npy", "--layer", "all", "--head", "all", "-o", o("x.png"))
    add("heatmap", S + "verify/logits.npy", "--legend", "-o", o("x.png"))
    add("heatmap", V, "--from-qk", "--layer", "0", "--head", "0", "-o", o("x.npy"))
    add("heatmap", S + "qk_only.npz", "--causal", "-o", o("x.npy"))
    add("heatmap", V, "--layer", "all", "--head", "all", "--max-memory", "1M", "-o", o("x.png"))
    add("heatmap", Z, "-q", "-o", o("x.png"))

    # --- grid
    for head in ["0", "2", "5", "mean", "max", "min", "all", "6"]:
        add("grid", V, "--head", head, "-o", o("x.png"))
    add("grid", V, "--layer", "all", "--head", "all", "--range", "shared", "--legend", "-o", o("x.png"))   # README
    add("grid", V, "--layer", "all", "--head", "all", "-o", o("x.npy"))
    add("grid", V, "--layer", "all", "-o", o("x.png"))
    add("grid", V, "--layer", "all", "--range", "0:0.05", "--legend", "-o", o("x.png"))
    for layer in ["0", "1", "-1", "-3", "3"]:
        add("grid", V, "--layer", layer, "-o", o("x.npy"))
    for token in ["0", "7", "256", "300"]:
        add("grid", V, "--token", token, "-o", o("x.npy"))
    for threshold in ["0.6", "0.9", "0", "1", "1.5"]:
        add("grid", V, "--head", "2", "--threshold", threshold, "-o", o("x.png"))
    add("grid", V, "--head", "2", "--threshold", "0.6", "-o", o("x.npy"))
    add("grid", V, "--threshold", "0.6", "-o", o("x.npy"))
    add("grid", V, "--head", "2", "--threshold", "0.6", "--overlay", PPM, "-o", o("x.png"))      # README
    add("grid", V, "--head", "2", "--threshold", "0.6", "--overlay", PPM, "--alpha", "0", "-o", o("x.png"))
    add("grid", V, "--head", "3", "--overlay", PPM, "--alpha", "0.6", "-o", o("x.png"))             # README
    add("grid", V, "--overlay", PPM, "--resample", "nearest", "-o", o("x.ppm"))
    add("grid", V, "--overlay", PPM, "--legend", "--colormap", "turbo", "-o", o("x.png"))
    add("grid", V, "--overlay", S + "images/board_148.ppm", "-o", o("x.png"))
    add("grid", V, "--overlay", S + "images/board_148.ppm", "--fit", "stretch", "-o", o("x.png"))
    add("grid", V, "--head", "all", "--overlay", PPM, "-o", o("x.png"))
    add("grid", V, "--prefix", "0", "-o", o("x.npy"))
    add("grid", V, "--prefix", "1", "--grid", "8x32", "-o", o("x.npy"))
    add("grid", V, "--prefix", "5", "-o", o("x.npy"))
    add("grid", V, "--grid", "16x15", "-o", o("x.npy"))
    for cmap in COLORMAPS:
        add("grid", V, "--colormap", cmap, "-o", o("x.png"))
    add("grid", V, "--zoom", "2", "-o", o("x.png"))
    add("grid", V, "--from-qk", "-o", o("x.npy"))
    add("grid", SINGLE, "--grid", "3x3", "-o", o("x.png"))
    add("grid", SINGLE, "--token", "4", "-o", o("x.npy"))
    add("grid", BASE, "-o", o("x.npy"))
    add("grid", P, "-o", o("x.npy"))
    add("grid", P, "--prefix", "3", "-o", o("x.npy"))
    add("grid", P, "--prefix", "0", "--grid", "4x7", "-o", o("x.npy"))
    add("grid", CROSS_V, "--token", "2", "-o", o("x.png"))                                         # README
    add("grid", CROSS_V, "--token", "2", "-o", o("x.npy"))
    add("grid", CROSS_V, "--layer", "all", "--head", "all", "-o", o("x.png"))
    add("grid", CROSS_V, "--token", "4", "-o", o("x.npy"))
    add("grid", HVIT, "--head", "all", "--layer", "all", "-o", o("x.npy"))
    add("grid", S + "exporters/hf_vit.h5", "-o", o("x.npy"))
    add("grid", S + "exporters/hf_deit.h5", "-o", o("x.npy"))
    add("grid", S + "verify/logits.npy", "--grid", "3x3", "-o", o("x.npy"))
    add("grid", S + "verify/logits.npy", "--grid", "3x3", "--allow-unnormalised", "-o", o("x.npy"))
    add("grid", V, "-q", "-o", o("x.png"))

    # --- entropy
    for f in [V, Z, P]:
        add("entropy", f)
        add("entropy", "--normalized", f)
        add("entropy", f, "-o", o("x.npy"))
        add("entropy", f, "--legend", "-o", o("x.png"))
    add("entropy", P, "--normalized", "-o", o("x.npy"))
    add("entropy", P, "--colormap", "magma", "--zoom", "10", "-o", o("x.png"))
    add("entropy", P, "--range", "0:3", "--legend", "-o", o("x.png"))
    add("entropy", P, "-o", o("x.pgm"))
    add("entropy", P, "-o", o("x.ppm"))
    add("entropy", P, "-o", o("x.svg"))
    add("entropy", PADDED, "--batch", "1")
    add("entropy", CROSS_T, "--normalized")
    add("entropy", S + "nan_inf.npy", "-o", o("x.png"))
    add("entropy", S + "qk_only.npz", "--causal")
    add("entropy", P, "-q", "-o", o("x.png"))

    # --- show
    add("show", V, "--rollout", "--width", "64")                                                  # make demo
    for f in [V, Z, P]:
        add("show", f, "--width", "40")
        add("show", f, "--rollout")
        add("show", f, "--color", "always", "--width", "48")
        add("show", f, "--color", "never")
        add("show", f, "--view", "matrix", "--width", "60")
    for w in ["8", "20", "200", "7", "0"]:
        add("show", V, "--width", w)
    add("show", V, "--rollout", "--head", "max", "--width", "64")
    add("show", V, "--rollout", "--color", "always", "--width", "32")
    add("show", V, "--layer", "0", "--head", "2")
    add("show", V, "--token", "5", "--view", "grid")
    add("show", V, "--prefix", "0", "--grid", "1x257")
    add("show", V, "--colormap", "gray", "--color", "always", "--width", "32")
    add("show", V, "--range", "0:0.01", "--color", "always", "--width", "32")
    add("show", Z, "--layer", "2", "--head", "all")
    add("show", Z, "--layer", "2", "--head", "3", "--view", "matrix")
    add("show", CROSS_T)
    add("show", CROSS_V, "--token", "2")
    add("show", S + "verify/logits.npy", "--rollout")
    add("show", S + "verify/logits.npy", "--rollout", "--allow-unnormalised")
    add("show", V, env={"NO_COLOR": "1"})
    add("show", V, "--color", "always", "--width", "32", env={"NO_COLOR": "1"})
    add("show", V, env={"COLUMNS": "60"})
    add("show", V, env={"COLUMNS": "5"})
    add("show", Z, "--view", "matrix", env={"COLUMNS": "abc"})

    # --- tokens
    add("tokens", Z, "--layer", "2", "--query", "3")                                              # README
    for q in ["0", "25", "26", "-1"]:
        add("tokens", Z, "--query", q)
    add("tokens", Z, "--layer", "2", "--query", "3", "--color", "always")
    add("tokens", Z, "--layer", "2", "--query", "3", "--color", "never")
    add("tokens", Z, "--layer", "0", "--head", "0", "--query", "1")
    add("tokens", Z, "--head", "max", "--query", "1", "--width", "40")
    add("tokens", Z, "--head", "min", "--query", "1", "--color", "always", "--colormap", "gray")
    add("tokens", Z, "--query", "1", "--range", "0:1", "--color", "always")
    add("tokens", Z, "--query", "3", "--from-qk")
    add("tokens", Z, "--query", "3", "--layer", "2", env={"NO_COLOR": "1"})
    add("tokens", Z, "--query", "3", "--layer", "2", "--width", "30", env={"COLUMNS": "40"})
    add("tokens", CROSS_T, "--query", "1")
    add("tokens", S + "exporters/hf_cross.h5", "--query", "1")
    add("tokens", PADDED, "--batch", "1", "--query", "2")
    add("tokens", HFB, "--batch", "1", "--query", "3")
    add("tokens", S + "heads/text_strings.npz", "--query", "2")
    add("tokens", S + "dump_savez_compressed.npz", "--query", "1", "--color", "always")

    # --- diff
    add("diff", DA, DB)
    add("diff", DA, DB, "--json")
    add("diff", DA, DB, "--csv")
    add("diff", DA, DB, "-o", o("x.png"))
    add("diff", DA, DB, "--json", "-o", o("x.png"))
    add("diff", DA, DB, "-o", o("x.npy"))
    add("diff", DA, DB, "-o", o("x.svg"))
    add("diff", DA, DB, "-o", o("x.ppm"))
    add("diff", DA, DB, "--layer", "0", "--head", "1", "-o", o("x.npy"))
    add("diff", DA, DB, "--layer", "1", "--head", "max", "-o", o("x.npy"))
    add("diff", DA, DB, "--head", "min", "-o", o("x.npy"))
    add("diff", DA, DB, "--layer", "5", "-o", o("x.npy"))
    add("diff", DA, DB, "-q", "-o", o("x.png"))
    add("diff", DB, DA, "--csv")
    add("diff", DA, DA, "--json")
    add("diff", DA, P)
    add("diff", DA, "no/such/file.npy")
    add("diff", DA, DB, "--json", "--csv")
    add("diff", BASE, S + "base_f16.npy", "--json")
    add("diff", BASE, SINGLE, "--json")
    add("diff", BASE, S + "dump_savez_compressed.npz", "--csv")
    add("diff", Z, P)
    add("diff", Z, Z, "--json")
    add("diff", V, V, "--csv")
    add("diff", CROSS_T, CROSS_T, "--json", "-o", o("x.svg"))
    add("diff", S + "nan_inf.npy", BASE, "--json")
    add("diff", S + "verify/logits.npy", BASE, "--csv")

    # --- verify
    for f in ["causal.npy", "logits.npy", "transposed.npy"]:
        add("verify", S + "verify/" + f)
        add("verify", "--causal", S + "verify/" + f)
        add("verify", "--tolerance", "0.5", S + "verify/" + f)
    add("verify", "--tolerance", "0", BASE)
    add("verify", "--tolerance", "1e-9", S + "base_f16.npy")
    add("verify", "--causal", BASE)
    add("verify", "--qk-tolerance", "0.001", V)
    add("verify", "--qk-tolerance", "0.5", V)
    add("verify", S + "both_attn_and_qk.h5")
    add("verify", "--qk-tolerance", "10", S + "both_attn_and_qk.h5")
    add("verify", "--from-qk", S + "both_attn_and_qk.h5")
    add("verify", "--batch", "1", HFB)
    add("verify", "--batch", "1", PADDED)
    add("verify", "--keep-padding", PADDED)
    add("verify", "--causal", S + "exporters/tl_qk.h5")
    add("verify", "-q", S + "verify/logits.npy")

    # --- environment
    for argv in [["stats", "--json", V], ["rollout", V, "--view", "matrix", "-o", o("x.npy")],
                 ["rollout", P, "-o", o("x.npy")], ["heads", "--json", Z], ["flow", V, "-o", o("x.npy")],
                 ["stats", "--from-qk", "--json", V], ["verify", V], ["grid", V, "--layer", "all", "--head", "all", "-o", o("x.npy")]]:
        for env in [{"ATTNINSPECT_THREADS": "1"}, {"ATTNINSPECT_PORTABLE_KERNELS": "1"}, {"ATTNINSPECT_NO_AVX512": "1"}]:
            add(*argv, env=env)
    add("flow", V, "--view", "matrix", "-o", o("x.npy"), env={"ATTNINSPECT_THREADS": "1"})
    add("stats", V, env={"ATTNINSPECT_PROGRESS": "0"})
    add("stats", Z, P, "--json", env={"ATTNINSPECT_PROGRESS": "0"})

    # --- hostile, beyond the basic set
    add("info", "--max-memory", "512M", H + "sparse_512mib.h5")
    add("stats", "--max-memory", "512M", H + "sparse_512mib.h5")
    add("info", H + "escapes.h5", env={"NO_COLOR": "1"})
    add("stats", "--csv", H + "escapes.npz")
    add("heatmap", H + "escapes.npz", "-o", o("x.svg"))
    add("diff", H + "escapes.npz", H + "escapes.npz", "--csv")
    return cases


def all_cases():
    cases, seen = [], {}
    for case in basic_cases() + hand_cases():
        other = seen.get(case.id)
        if other is not None:
            if other.key() == case.key():
                continue                  # the same case written twice
            raise SystemExit("two different cases have the id %s:\n  %s\n  %s" % (case.id, other.argv, case.argv))
        for _, name in case.setup:
            assert name not in RESERVED
        for token in case.argv:
            if token.startswith(OUT + "/"):
                assert token[len(OUT) + 1:].split("/")[0] not in RESERVED, case.id
        seen[case.id] = case
        cases.append(case)
    return cases


# ---------------------------------------------------------------------------------------------------- snapshot

TMP_NAME = re.compile(r"\.tmp-[A-Za-z0-9]{6}")


def run_case(case, binary, scratch, outdir):
    folder = tempfile.mkdtemp(prefix="o-", dir=scratch)       # a fixed-length name: o-XXXXXXXX
    try:
        for source, name in case.setup:
            shutil.copyfile(os.path.join(REPO, source), os.path.join(folder, name))
        argv = [t.replace(OUT, folder) for t in case.argv]
        env = dict(BASE_ENV)
        env.update(case.env)
        started = time.monotonic()
        process = subprocess.Popen(["attninspect"] + argv, executable=binary, cwd=REPO, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            status = str(process.returncode if process.returncode >= 0 else 128 - process.returncode)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = process.communicate()
            status = "timeout"
        elapsed = time.monotonic() - started

        def clean(data):
            data = data.replace(folder.encode(), OUT.encode())
            data = data.replace(scratch.encode(), b"$TMP")
            return data.replace(REPO.encode(), b"$REPO")

        target = os.path.join(outdir, case.id)
        os.mkdir(target)
        with open(os.path.join(target, "argv"), "w") as f:
            f.write("".join(t + "\n" for t in case.argv))
        if case.env:
            with open(os.path.join(target, "env"), "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in sorted(case.env.items())))
        with open(os.path.join(target, "status"), "w") as f:
            f.write(status + "\n")
        with open(os.path.join(target, "stdout"), "wb") as f:
            f.write(clean(stdout))
        with open(os.path.join(target, "stderr"), "wb") as f:
            f.write(clean(stderr))
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                relative = os.path.relpath(path, folder)
                stored = TMP_NAME.sub(".tmp-XXXXXX", relative).replace("/", "_")
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                shutil.copyfile(path, os.path.join(target, stored))
        return status, elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def snapshot(args):
    cases = all_cases()
    outdir = os.path.abspath(args.outdir)
    if os.path.exists(outdir) and os.listdir(outdir):
        raise SystemExit("behaviour_snapshot: %s exists and is not empty" % outdir)
    os.makedirs(outdir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="behaviour-snapshot-")
    binary = os.path.join(scratch, "attninspect")
    shutil.copy2(args.binary, binary)
    lock = threading.Lock()
    results = {}
    done = [0]
    started = time.monotonic()

    def work(case):
        status, elapsed = run_case(case, binary, scratch, outdir)
        with lock:
            results[case.id] = (status, elapsed)
            done[0] += 1
            if sys.stderr.isatty():
                sys.stderr.write("\r%d/%d cases" % (done[0], len(cases)))
                sys.stderr.flush()

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for future in [pool.submit(work, case) for case in cases]:
                future.result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    total = time.monotonic() - started
    crashed = [(cid, s) for cid, (s, _) in sorted(results.items()) if s != "timeout" and int(s) >= 128]
    timeouts = [cid for cid, (s, _) in sorted(results.items()) if s == "timeout"]
    statuses = {}
    for s, _ in results.values():
        statuses[s] = statuses.get(s, 0) + 1
    slowest = sorted(results.items(), key=lambda kv: -kv[1][1])[:10]
    lines = ["binary: %s" % os.path.abspath(args.binary),
             "cases: %d, -j %d, %.1f s" % (len(cases), args.jobs, total),
             "statuses: " + ", ".join("%s: %d" % kv for kv in sorted(statuses.items())),
             "crashed (status >= 128): %d" % len(crashed)] + ["  %s %s" % c for c in crashed] + \
            ["timed out (over %g s): %d" % (TIMEOUT, len(timeouts))] + ["  " + c for c in timeouts] + \
            ["slowest:"] + ["  %.2f s %s" % (e, cid) for cid, (_, e) in slowest]
    with open(os.path.join(outdir, "SNAPSHOT.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------------------------------------- compare

TEXT_NAMES = {"argv", "env", "status", "stdout", "stderr"}
TEXT_EXTENSIONS = (".csv", ".json", ".svg", ".txt")


def is_text(name, data):
    if name in TEXT_NAMES or name.endswith(TEXT_EXTENSIONS):
        return True
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
        return not name.endswith((".png", ".ppm", ".pgm", ".npy"))
    except UnicodeDecodeError:
        return False


def npy_summary(a, b):
    """For two .npy files with the same header: how many values differ, and by how much at most."""
    def parse(data):
        if data[:6] != b"\x93NUMPY":
            return None
        if data[6] == 1:
            length, start = struct.unpack("<H", data[8:10])[0], 10
        else:
            length, start = struct.unpack("<I", data[8:12])[0], 12
        try:
            header = ast.literal_eval(data[start:start + length].decode("latin-1"))
        except (ValueError, SyntaxError):
            return None
        return header, data[start + length:]
    pa, pb = parse(a), parse(b)
    if pa is None or pb is None:
        return None
    if pa[0] != pb[0]:
        return "npy headers differ: %r vs %r" % (pa[0], pb[0])
    code = {"<f4": "f", "<f8": "d"}.get(pa[0].get("descr"))
    if code is None or len(pa[1]) != len(pb[1]) or len(pa[1]) % array(code).itemsize:
        return None
    va, vb = array(code, pa[1]), array(code, pb[1])
    differing, largest = 0, 0.0
    for x, y in zip(va, vb):
        if x != y and not (x != x and y != y):
            differing += 1
            d = abs(x - y)
            if d == d and d > largest:
                largest = d
    return "npy %s %s: %d of %d values differ, largest |difference| %.3g" % (
        pa[0]["descr"], pa[0].get("shape"), differing, len(va), largest)


def read_allow(path):
    rules = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[2] == "~":
                # `<case-glob> <file-glob> ~ <regex>`: only lines matching the regex were added or removed.
                rules.append([parts[0], parts[1], 0, number, re.compile(parts[3])])
                continue
            if len(parts) != 2:
                raise SystemExit("%s:%d: expected `<case-id-glob> <file-glob> [~ <line-regex>]  # reason`"
                                 % (path, number))
            rules.append([parts[0], parts[1], 0, number, None])
    return rules


def compare(args):
    rules = read_allow(args.allow) if args.allow else []

    def allowed(case, name, a=None, b=None):
        hit = False
        for rule in rules:
            if not (fnmatch.fnmatchcase(case, rule[0]) and fnmatch.fnmatchcase(name, rule[1])):
                continue
            if rule[4] is not None:
                if a is None or b is None:
                    continue
                kept = [[line for line in t.decode("utf-8", "replace").splitlines() if not rule[4].search(line)]
                        for t in (a, b)]
                if kept[0] != kept[1]:
                    continue
            rule[2] += 1
            hit = True
        return hit

    def cases_in(folder):
        return {n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))}

    old_cases, new_cases = cases_in(args.old), cases_in(args.new)
    identical = differ = differ_allowed = 0
    for case in sorted(old_cases | new_cases):
        notes = []                                            # (allowed, text)
        if case not in old_cases or case not in new_cases:
            where = "OLD" if case in old_cases else "NEW"
            notes.append((allowed(case, "(case)"), "(case): only in %s" % where))
        else:
            old_dir, new_dir = os.path.join(args.old, case), os.path.join(args.new, case)
            old_files, new_files = set(os.listdir(old_dir)), set(os.listdir(new_dir))
            for name in sorted(old_files | new_files):
                if name not in old_files or name not in new_files:
                    notes.append((allowed(case, name), "%s: only in %s" % (name, "OLD" if name in old_files else "NEW")))
                    continue
                with open(os.path.join(old_dir, name), "rb") as f:
                    a = f.read()
                with open(os.path.join(new_dir, name), "rb") as f:
                    b = f.read()
                if a == b:
                    continue
                if is_text(name, a) and is_text(name, b):
                    lines = list(difflib.unified_diff(a.decode("utf-8", "replace").splitlines(),
                                                      b.decode("utf-8", "replace").splitlines(),
                                                      "OLD/" + name, "NEW/" + name, n=1, lineterm=""))
                    shown = ["    " + line for line in lines[:20]]
                    if len(lines) > 20:
                        shown.append("    ... %d more diff lines" % (len(lines) - 20))
                    text = "%s: text differs\n%s" % (name, "\n".join(shown))
                else:
                    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                    text = "%s: binary differs (%d vs %d bytes, first difference at byte %d)" % (name, len(a), len(b), first)
                    if name.endswith(".npy"):
                        summary = npy_summary(a, b)
                        if summary:
                            text += "; " + summary
                notes.append((allowed(case, name, a, b), text))
        if not notes:
            identical += 1
            continue
        if all(ok for ok, _ in notes):
            differ_allowed += 1
        differ += 1
        for ok, text in notes:
            print("%s %s %s" % ("allowed" if ok else "DIFF", case, text))
    total = len(old_cases | new_cases)
    print("%d cases, %d identical, %d differ" % (total, identical, differ))
    if rules:
        print("%d of the %d that differ differ only in allowed ways" % (differ_allowed, differ))
        for rule in rules:
            if rule[2] == 0:
                print("note: allow rule on line %d (%s %s) matched nothing" % (rule[3], rule[0], rule[1]))
    return 1 if differ > differ_allowed else 0


def list_cases(args):
    for case in all_cases():
        env = "".join("%s=%s " % kv for kv in sorted(case.env.items()))
        print("%s\t%sattninspect %s" % (case.id, env, " ".join(case.argv)))
    return 0


def main():
    parser = argparse.ArgumentParser(description="Record a binary's behaviour on fixed cases, or compare two records.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("snapshot", help="run BINARY over every case and write OUTDIR")
    p.add_argument("binary")
    p.add_argument("outdir")
    p.add_argument("-j", "--jobs", type=int, default=2, help="cases run at a time (default 2)")
    p.set_defaults(func=snapshot)
    p = sub.add_parser("compare", help="compare two snapshots; exit 1 on a difference not allowed")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--allow", metavar="FILE", help="lines `<case-id-glob> <file-glob>  # reason`")
    p.set_defaults(func=compare)
    p = sub.add_parser("list", help="print every case id and its command")
    p.set_defaults(func=list_cases)
    args = parser.parse_args()
    try:
        status = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:                   # `... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
