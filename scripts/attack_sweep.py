#!/usr/bin/python3
"""Attack sweep: run attninspect on many hostile dumps, options and environments, and classify each outcome.

    /usr/bin/python3 scripts/attack_sweep.py BINARY [--out DIR] [--seed N] [--quick] [--jobs N] [--only CAT] [--verbose]

Needs only Debian's python3-numpy and python3-h5py (and `cc`, optionally, for the plugin check). Every input is made
here, in --out (default /tmp/attack-sweep, emptied first), from the seed; TestData/ is read for two fixtures only.
BINARY is copied into --out first, so a rebuild during the run does not mix two binaries.

Prints `FAIL <category> <case id>: <why>` for each failing case (in the order of the table), then per category the
cases tried, failed and skipped (a case is skipped when it cannot be set up here, e.g. the signal never found the
temporary file). Exit status 1 when a case failed, 0 otherwise.

A case fails when any of these hold (the generic checks, in `judge`), plus the checks of the case itself:
  - the process died from a signal (crash), ran over the timeout (hang, 20 s), or its peak RSS exceeded 1 GiB for
    inputs under 2 MB (VmHWM, polled every 10 ms at most: wait4's ru_maxrss would count the pages of the Python that
    forked it; a child over 4 GiB is killed and counted);
  - its exit status is not 0, 1 or 64;
  - with --quiet and a non-zero status, stderr is not one line (exit 64 may have three: the error and the usage);
  - stdout or stderr holds a character a terminal acts on (C0 but \\n and \\t, DEL, C1, bidi overrides U+202A-202E
    and U+2066-2069) or bytes that are not UTF-8;
  - the secret marker (planted in files that external storage, virtual datasets and links point at, and in the
    environment) appears in stdout, stderr or any file the run wrote; or a filter plugin's constructor ran;
  - after a non-zero status a file was created (or an existing one changed) in the case's folder; at any status a
    temporary file (`.NAME.tmp-XXXXXX`, `.attninspect.tmp-XXXXXX`) is left;
  - an output written with status 0 is not well-formed (.npy loads with numpy, .png has its signature and IEND,
    .svg parses as XML).
"""
import argparse
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

MARKER = "AtTnSeCrEt9c1e57"            # 16 bytes: every 31-byte window of the secret holds it whole
TIMEOUT = 20.0
MEMORY_LIMIT_KB = 1 << 20              # 1 GiB, for inputs under SMALL_INPUT
MEMORY_KILL_KB = 4 << 20               # a child over 4 GiB is killed (protects the machine)
SMALL_INPUT = 2 << 20
SETPRIV = shutil.which("setpriv")
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "TestData")
F = object()                           # placeholder for the dump in a command template

# The commands every category is parametrised by: output names are relative to the case's own folder (its cwd).
COMMANDS = {
    "info": ["info", F],
    "stats": ["stats", F],
    "stats-json": ["stats", "--json", F],
    "stats-csv": ["stats", "--csv", F],
    "heads": ["heads", F],
    "heads-json": ["heads", "--json", F],
    "rollout-npy": ["rollout", F, "-o", "x.npy"],
    "rollout-grid-png": ["rollout", "--view", "grid", F, "-o", "x.png"],
    "flow-npy": ["flow", F, "-o", "x.npy"],
    "grid-png": ["grid", F, "-o", "x.png"],
    "heatmap-svg": ["heatmap", F, "-o", "x.svg"],
    "heatmap-png": ["heatmap", F, "-o", "x.png"],
    "heatmap-npy": ["heatmap", "--head", "0", F, "-o", "x.npy"],   # one head: the stored values, copied
    "show": ["show", F],
    "tokens": ["tokens", "--query", "0", F],
    "verify": ["verify", F],
    "entropy-png": ["entropy", F, "-o", "x.png"],
    "diff": ["diff", F, F],
}
ALL = list(COMMANDS)
READERS = ["info", "stats", "heatmap-npy", "rollout-npy", "show", "tokens", "diff"]


def command(name, path, *extra, quiet=True):
    argv = [path if a is F else a for a in COMMANDS[name]] + list(extra)
    return argv + (["--quiet"] if quiet else [])


# ---------------------------------------------------------------------------------------------------------------
# The table: a case is an argv (after the binary), its environment and folder, and its own checks.

@dataclasses.dataclass
class Case:
    cat: str
    id: str
    argv: list                                  # str or bytes; relative names are in the case's folder
    setup: object = None                        # callable(folder): files the run needs beside it
    teardown: object = None                     # callable(folder), after the run (e.g. chattr -i)
    env: dict = dataclasses.field(default_factory=dict)
    stdout: str = "file"                        # file | devfull | devnull | closed | head (piped into head -c 1)
    checks: list = dataclasses.field(default_factory=list)   # callable(Result) -> reason or None
    serial: bool = False                        # timing-sensitive: run alone, after the others
    max_seconds: float = None                   # slower than this is a failure ("slow")
    signal: int = 0                             # category 9: send it once a temporary file exists
    ok_status: tuple = (0, 1, 64)
    retry_status: int = None                    # this status means "try again" (up to 5 runs), then skip
    timeout: float = TIMEOUT
    index: int = 0


@dataclasses.dataclass
class Result:
    status: int = None                          # exit status, or None when killed by a signal
    signal: int = None
    timed_out: bool = False
    memory_killed: bool = False
    stdout: bytes = b""
    stderr: bytes = b""
    maxrss_kb: int = 0
    seconds: float = 0.0
    folder: str = ""
    before: dict = dataclasses.field(default_factory=dict)
    after: dict = dataclasses.field(default_factory=dict)
    input_bytes: int = 0
    plugin_ran: bool = False
    signal_sent: bool = False
    skip: str = None


class Context:
    def __init__(self, out, seed, quick):
        self.out, self.seed, self.quick = out, seed, quick
        self.rng = np.random.default_rng(seed)
        self.inputs = os.path.join(out, "inputs")
        self.secret_dir = os.path.join(out, "secret")
        self.plugins = os.path.join(out, "plugins")
        for d in (self.inputs, self.secret_dir, self.plugins):
            os.makedirs(d, exist_ok=True)
        self.secret_txt = os.path.join(self.secret_dir, "secret.txt")
        with open(self.secret_txt, "w") as f:
            f.write(MARKER * 4096)
        self.small = self.attention(2, 2, 4, 4)
        self.base = os.path.join(TESTDATA, "synthetic", "base_f32.npy")
        self.base_npy = self.npy("base.npy", np.load(self.base) if os.path.exists(self.base) else self.attention(3, 2, 10, 10))
        self.small_npy = self.npy("small.npy", self.small)
        # A vision dump with token labels and a 3x3 grid: every command can run on it.
        self.labelled = self.path("labelled.h5")
        with h5py.File(self.labelled, "w", libver="earliest") as f:
            f["attentions"] = np.load(self.base_npy)
            f["tokens"] = np.array(["[CLS]"] + ["p%d" % i for i in range(9)], dtype=h5py.string_dtype())
            f.attrs["patch_grid"] = np.array([3, 3], np.int64)
            f.attrs["prefix_tokens"] = np.int64(1)
        # secret.h5: a valid dump whose token labels are the marker, the target of virtual datasets and links.
        self.secret_h5 = os.path.join(self.secret_dir, "secret.h5")
        with h5py.File(self.secret_h5, "w", libver="earliest") as f:
            f["attentions"] = self.small
            f["tokens"] = np.array([MARKER * 2] * 4, dtype="S32")
            f.attrs["model"] = MARKER
        self.plugin_ok = self.compile_plugin()

    def pick(self, items, quick_count):
        """All of `items`, or with --quick only the first `quick_count`."""
        return list(items)[:quick_count] if self.quick else list(items)

    def attention(self, *shape, dtype=np.float32):
        logits = self.rng.normal(size=shape) * 1.5
        a = np.exp(logits - logits.max(-1, keepdims=True))
        return (a / a.sum(-1, keepdims=True)).astype(dtype)

    def path(self, name):
        return os.path.join(self.inputs, name)

    def npy(self, name, array):
        np.save(self.path(name), array, allow_pickle=True)
        return self.path(name)

    def h5(self, name, libver="earliest"):
        return h5py.File(self.path(name), "w", libver=libver)

    def compile_plugin(self):
        source = os.path.join(self.plugins, "evil.c")
        with open(source, "w") as f:
            f.write('#include <stdio.h>\n#include <stdlib.h>\n__attribute__((constructor)) static void ran(void) {\n'
                    '  const char *p = getenv("ATTACK_PLUGIN_MARKER");\n'
                    '  if (p) { FILE *f = fopen(p, "w"); if (f) { fputs("ran\\n", f); fclose(f); } }\n}\n')
        for cc in ("cc", "gcc", "clang"):
            if shutil.which(cc) and subprocess.run([cc, "-shared", "-fPIC", "-o", os.path.join(self.plugins, "libevil.so"), source],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                return True
        return False


# Checks a case adds to the generic ones. Each returns a reason, or None.
def refused(r):
    return "exit 0: expected a refusal" if r.status == 0 else None


def succeeded(r):
    return None if r.status == 0 else "exit %s: expected success: %s" % (r.status, first_line(r.stderr))


def stdout_has(text):
    return lambda r: None if text.encode() in r.stdout else "stdout lacks %r" % text


def stderr_has(text):
    return lambda r: None if text.encode() in r.stderr.lower() else "stderr lacks %r: %s" % (text, first_line(r.stderr))


def not_in_output(text):
    return lambda r: "output says %r" % text if text.encode() in r.stdout + r.stderr else None


def file_exists(name):
    return lambda r: None if os.path.lexists(os.path.join(r.folder, os.fsdecode(name))) else "output %r not written" % name


def unchanged(name):
    return lambda r: "%r changed" % name if r.before.get(name) != r.after.get(name) else None


def same_npy(name, reference):
    def check(r):
        if r.status != 0:
            return None
        try:
            got = np.load(os.path.join(r.folder, name))
        except Exception as e:
            return "%s unreadable: %s" % (name, e)
        ref = np.load(reference)
        return None if got.shape == ref.shape and np.allclose(got, ref, rtol=1e-5, atol=1e-7, equal_nan=True) else \
            "%s differs from the uncompressed reference" % name
    return check


def same_records(reference_stdout):
    """stats --json: the records equal those of the reference run (file names differ)."""
    def records(text):
        return text.split(b'"records"')[-1] if b'"records"' in text else None
    return lambda r: None if r.status != 0 or records(r.stdout) == records(reference_stdout()) else "records differ from the same array as .npy"


def first_line(data):
    return data.decode("utf-8", "backslashreplace").strip().split("\n")[0][:200]


# ---------------------------------------------------------------------------------------------------------------
# Generators, one per category. Each makes its inputs and returns its cases.

def copy_secret(rel="secret.txt", source=None):
    def setup(d):
        target = os.path.join(d, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(source, target)
    return setup


def make_fifo(name):
    return lambda d: os.mkfifo(os.path.join(d, name))


def make_dir(name):
    return lambda d: os.makedirs(os.path.join(d, name))


def gen_external(ctx):
    """1. External raw storage, virtual datasets, soft and external links."""
    cat, cases, a, U = "external", [], ctx.small, h5py.h5f.UNLIMITED
    n = a.nbytes
    secret_setup = copy_secret(source=ctx.secret_txt)
    # (id, external list, setup, env, commands)
    variants = [
        ("abs", [(ctx.secret_txt, 0, U)], None, {}, ALL[:-1]),
        ("abs-sized", [(ctx.secret_txt, 16, n)], None, {}, READERS),
        ("relative", [("secret.txt", 0, n)], secret_setup, {}, READERS + ["verify", "heads"]),
        ("relative-subdir", [("sub/secret.txt", 0, n)], copy_secret("sub/secret.txt", ctx.secret_txt), {}, READERS),
        ("prefix-env", [("secret.txt", 0, n)], None, {"HDF5_EXTFILE_PREFIX": ctx.secret_dir}, READERS),
        ("fifo", [("fifo", 0, n)], make_fifo("fifo"), {}, ["info", "stats", "heatmap-npy", "rollout-npy", "tokens", "verify"]),
        ("directory", [("adir", 0, n)], make_dir("adir"), {}, ["info", "stats", "heatmap-npy"]),
        ("dev-zero", [("/dev/zero", 0, U)], None, {}, READERS + ["verify", "heads"]),
        ("proc-environ", [("/proc/self/environ", 0, U)], None, {}, ["info", "stats", "heatmap-npy", "tokens"]),
        ("missing", [("missing.bin", 0, n)], None, {}, ["info", "stats", "heatmap-npy"]),
        ("split", [("secret.txt", 0, n // 2), (ctx.secret_txt, 0, n // 2)], secret_setup, {}, READERS),
    ]
    for vid, external, setup, env, commands in ctx.pick(variants, 4):
        name = "ext_attention_%s.h5" % vid
        with ctx.h5(name) as f:
            f.create_dataset("attentions", shape=a.shape, dtype="f4", external=external)
            f["tokens"] = np.array(["[CLS]", "a", "b", "c"], dtype=h5py.string_dtype())
        for c in ctx.pick(commands, 6):
            checks = [] if c == "info" else [refused]   # data from another file is never analysed
            cases.append(Case(cat, "attention-%s/%s" % (vid, c), command(c, ctx.path(name)), setup=setup, env=env, checks=checks))
    # External storage on the token labels only: the marker must never show.
    for vid, external, setup, env, commands in ctx.pick([v for v in variants if v[0] in ("abs", "relative", "fifo", "dev-zero", "proc-environ", "prefix-env")], 2):
        name = "ext_tokens_%s.h5" % vid
        with ctx.h5(name) as f:
            f["attentions"] = a
            f.create_dataset("tokens", shape=(4,), dtype="S32", external=[(e[0], e[1], U if e[2] == U else 128) for e in external[:1]])
        for c in ctx.pick(["info", "tokens", "heatmap-svg"], 3):
            cases.append(Case(cat, "tokens-%s/%s" % (vid, c), command(c, ctx.path(name)), setup=setup, env=env))
    # Virtual datasets.
    with h5py.File(ctx.path("vds_same.h5"), "w", libver="latest") as f:
        f["hidden"] = a
        layout = h5py.VirtualLayout(shape=a.shape, dtype="f4")
        layout[...] = h5py.VirtualSource(".", "hidden", shape=a.shape)
        f.create_virtual_dataset("attentions", layout)

    def vds(name, source, tokens_too=True, attention_too=True):
        with h5py.File(ctx.path(name), "w", libver="latest") as f:
            if attention_too:
                layout = h5py.VirtualLayout(shape=a.shape, dtype="f4")
                layout[...] = h5py.VirtualSource(source, "attentions", shape=a.shape)
                f.create_virtual_dataset("attentions", layout, fillvalue=0)
            else:
                f["attentions"] = a
            if tokens_too:
                layout = h5py.VirtualLayout(shape=(4,), dtype="S32")
                layout[...] = h5py.VirtualSource(source, "tokens", shape=(4,), dtype="S32")
                f.create_virtual_dataset("tokens", layout)
        return ctx.path(name)

    def vds_printf(name):
        from h5py import h5s, h5p, h5t, h5d
        vspace = h5s.create_simple(a.shape, (h5s.UNLIMITED,) + a.shape[1:])
        vspace.select_hyperslab((0, 0, 0, 0), (h5s.UNLIMITED, 1, 1, 1), stride=(1, 1, 1, 1), block=(1,) + a.shape[1:])
        sspace = h5s.create_simple((1,) + a.shape[1:])
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_layout(h5d.VIRTUAL)
        dcpl.set_virtual(vspace, b"part_%b.h5", b"attentions", sspace)
        with h5py.File(ctx.path(name), "w", libver="latest") as f:
            h5d.create(f.id, b"attentions", h5t.IEEE_F32LE, h5s.create_simple(a.shape, (h5s.UNLIMITED,) + a.shape[1:]), dcpl)
        return ctx.path(name)

    def parts(d):
        for i in range(2):
            with h5py.File(os.path.join(d, "part_%d.h5" % i), "w") as f:
                f["attentions"] = np.frombuffer((MARKER * 8).encode(), "<f4").reshape((1,) + a.shape[1:])

    rel_secret_h5 = copy_secret("secret.h5", ctx.secret_h5)
    vds_variants = [
        ("abs", vds("vds_abs.h5", ctx.secret_h5), None, {}, True),
        ("relative", vds("vds_rel.h5", "secret.h5"), rel_secret_h5, {}, True),
        ("prefix-env", vds("vds_prefix.h5", "secret.h5"), None, {"HDF5_VDS_PREFIX": ctx.secret_dir}, True),
        ("missing", vds("vds_missing.h5", "nowhere.h5"), None, {}, True),
        ("tokens-only", vds("vds_tokens.h5", ctx.secret_h5, attention_too=False), None, {}, False),
        ("same-file", ctx.path("vds_same.h5"), None, {}, False),
        ("printf", vds_printf("vds_printf.h5"), parts, {}, True),
    ]
    for vid, path, setup, env, must_refuse in ctx.pick(vds_variants, 3):
        for c in ctx.pick(["info", "stats", "heatmap-npy", "tokens"], 3):
            checks = [refused] if must_refuse and c != "info" else []
            cases.append(Case(cat, "virtual-%s/%s" % (vid, c), command(c, path), setup=setup, env=env, checks=checks))
    # Soft and external links named like attention or tokens.
    links = []
    with ctx.h5("link_soft_missing.h5") as f:
        f["attentions"] = h5py.SoftLink("/nowhere/attn")
    links.append(("soft-missing", ctx.path("link_soft_missing.h5"), None, {}, True))
    with ctx.h5("link_soft_loop.h5") as f:
        f["attentions"] = h5py.SoftLink("/attentions")
        f["g"] = h5py.SoftLink("/g")
    links.append(("soft-loop", ctx.path("link_soft_loop.h5"), None, {}, True))
    with ctx.h5("link_ext_abs.h5") as f:
        f["attentions"] = h5py.ExternalLink(ctx.secret_h5, "/attentions")
        f["tokens"] = h5py.ExternalLink(ctx.secret_h5, "/tokens")
    links.append(("external-abs", ctx.path("link_ext_abs.h5"), None, {}, True))
    with ctx.h5("link_ext_rel.h5") as f:
        f["attentions"] = h5py.ExternalLink("secret.h5", "/attentions")
        f["tokens"] = h5py.ExternalLink("secret.h5", "/tokens")
    links.append(("external-relative", ctx.path("link_ext_rel.h5"), rel_secret_h5, {}, True))
    links.append(("external-prefix-env", ctx.path("link_ext_rel.h5"), None, {"HDF5_EXT_PREFIX": ctx.secret_dir}, True))
    with ctx.h5("link_ext_tokens.h5") as f:
        f["attentions"] = a
        f["tokens"] = h5py.ExternalLink(ctx.secret_h5, "/tokens")
        f.attrs["model"] = "x"
    links.append(("external-tokens", ctx.path("link_ext_tokens.h5"), None, {}, False))
    with ctx.h5("link_ext_self.h5") as f:
        f["attentions"] = h5py.ExternalLink(ctx.path("link_ext_self.h5"), "/attentions")
    links.append(("external-self-loop", ctx.path("link_ext_self.h5"), None, {}, True))
    for vid, path, setup, env, must_refuse in ctx.pick(links, 3):
        for c in ctx.pick(["info", "stats", "heatmap-npy", "tokens"], 3):
            checks = [refused] if must_refuse and c != "info" else []
            cases.append(Case(cat, "link-%s/%s" % (vid, c), command(c, path), setup=setup, env=env, checks=checks))
    return cases


def gen_filters(ctx):
    """2. Filters libhdf5 does not have built in; HDF5_PLUGIN_PATH points at a library with a constructor (always)."""
    cat, cases, a = "filters", [], ctx.small
    from h5py import h5p, h5s, h5t, h5d, h5z
    files = []
    with ctx.h5("lzf.h5") as f:
        f.create_dataset("attentions", data=a, compression="lzf")
    files.append(("lzf", ctx.path("lzf.h5"), ["info", "stats", "heatmap-npy", "rollout-npy", "verify", "show", "tokens"]))
    with ctx.h5("lzf_shuffle_fletcher.h5") as f:
        f.create_dataset("attentions", data=a, compression="lzf", shuffle=True, fletcher32=True)
    files.append(("lzf-shuffle-fletcher", ctx.path("lzf_shuffle_fletcher.h5"), ["info", "stats", "heatmap-npy"]))
    with ctx.h5("lzf_tokens.h5") as f:
        f["attentions"] = a
        f.create_dataset("tokens", data=np.array([b"[CLS]", b"a", b"b", b"c"], dtype="S8"), compression="lzf")
    files.append(("lzf-tokens", ctx.path("lzf_tokens.h5"), ["info", "stats", "tokens", "heatmap-svg"]))
    # Unknown filter ids, optional (libhdf5 skips them when writing): the reader must still not load plugins.
    for fid in ctx.pick([32001, 32004, 32008, 32013, 32015, 307, 305, 60000, 65535], 3):
        name = "filter_%d.h5" % fid
        with ctx.h5(name) as f:
            plist = h5p.create(h5p.DATASET_CREATE)
            plist.set_chunk(a.shape)
            plist.set_filter(fid, h5z.FLAG_OPTIONAL, (1, 2, 3))
            dset = h5d.create(f.id, b"attentions", h5t.NATIVE_FLOAT, h5s.create_simple(a.shape), plist)
            dset.write(h5s.ALL, h5s.ALL, a)
        files.append(("filter-%d" % fid, ctx.path(name), ["info", "stats", "heatmap-npy"]))
    # LZF-compressed chunks whose pipeline names another id (zstd, 32015): the data needs a filter nobody has.
    data = bytearray(open(ctx.path("lzf.h5"), "rb").read())
    at = data.find(struct.pack("<H", 32000) + struct.pack("<H", 8))
    if at < 0:
        at = data.find(struct.pack("<H", 32000))
    if at >= 0:
        struct.pack_into("<H", data, at, 32015)
        open(ctx.path("lzf_as_zstd.h5"), "wb").write(bytes(data))
        files.append(("applied-32015", ctx.path("lzf_as_zstd.h5"), ["info", "stats", "heatmap-npy", "show"]))
    for fid, path, commands in files:
        for c in ctx.pick(commands, 3):
            cases.append(Case(cat, "%s/%s" % (fid, c), command(c, path)))
    # The plugin folder on a file with no filter at all, and an HDF5_PLUGIN_PATH of many folders.
    cases.append(Case(cat, "plain/stats", command("stats", ctx.small_npy)))
    cases.append(Case(cat, "lzf/plugin-path-list", command("stats", ctx.path("lzf.h5")),
                      env={"HDF5_PLUGIN_PATH": "/nonexistent:%s:." % ctx.plugins}))
    return cases


HOSTILE = [
    ("csi-2j", "\x1b[2J"),
    ("osc52-bel", "\x1b]52;c;SGVsbG8=\x07"),
    ("osc52-st", "\x1b]52;c;SGVsbG8=\x1b\\"),
    ("c1-csi", "\u009b31m"),
    ("del", "a\x7fb"),
    ("cr", "x\rFAKE"),
    ("lf", "x\nFAKE: line"),
    ("rlo", "x\u202etxt.exe"),
    ("lri-pdi", "x\u2066y\u2069z"),
    ("nul", "a\x00b"),
    ("long", "L" * 100_000 + "\x1b[2J"),
]


def zip_members(path, members):
    """An .npz whose member names may be any bytes (NUL, non-UTF-8): written with placeholder names, then patched."""
    placeholders = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i, (name, array) in enumerate(members):
            raw = name if isinstance(name, bytes) else name.encode("utf-8")
            stand_in = ("~%05d" % i).encode() + b"Q" * max(0, len(raw) - 6)
            stand_in = stand_in[:len(raw)] if len(raw) >= 6 else None
            stream = io.BytesIO()
            np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=True)
            info = zipfile.ZipInfo(stand_in.decode() if stand_in else raw.decode("utf-8", "replace"), date_time=(1980, 1, 1, 0, 0, 0))
            info.flag_bits |= 0x800                     # names are UTF-8 (or claim to be)
            z.writestr(info, stream.getvalue())
            if stand_in:
                placeholders.append((stand_in, raw))
    data = open(path, "rb").read()
    for stand_in, raw in placeholders:
        data = data.replace(stand_in, raw)
    open(path, "wb").write(data)
    return path


def safetensors(path, tensors, metadata=None, raw_header=None, length=None, data=None, pad=True):
    """tensors: name -> float32 array; raw_header: the header bytes as written; length: the 8-byte length as claimed."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, array in tensors.items():
        raw = np.asarray(array, "<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = raw_header if raw_header is not None else json.dumps(header, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text) if length is None else length) + text + (b"".join(blobs) if data is None else data))
    return path


def gen_strings(ctx):
    """3. Hostile strings in names, attribute values, members, metadata and token labels; hostile file names."""
    cat, cases, a = "strings", [], ctx.small
    s_h5 = lambda s: "\x00" not in s           # HDF5 names and vlen strings are C strings
    places = {
        "h5-dataset-name": (s_h5, lambda f, s: f.create_dataset("d" + s, data=np.zeros(3, np.float32))),
        "h5-attr-name": (s_h5, lambda f, s: f.attrs.create("a" + s, 1)),
        "h5-attr-value": (lambda s: True, lambda f, s: f.attrs.create("model", s if "\x00" not in s else np.bytes_(s.encode()))),
        "h5-attr-bytes": (lambda s: True, lambda f, s: f.attrs.create("note", np.bytes_(b"caf\xe9 " + s.encode() + b"\xff"))),
        "h5-dataset-attr": (s_h5, lambda f, s: f["attentions"].attrs.create("u" + s, s)),
        "h5-candidates": (s_h5, None),
        "h5-tokens": (s_h5, None),
        "npz-member": (lambda s: True, None),
        "npz-candidates": (lambda s: True, None),
        "npz-tokens": (lambda s: True, None),
        "st-tensor": (lambda s: True, None),
        "st-candidates": (lambda s: True, None),
        "st-meta-key": (lambda s: True, None),
        "st-meta-value": (lambda s: True, None),
    }
    commands_for = {"candidates": ["stats"], "tokens": ["tokens", "heatmap-svg"]}
    primary = {"h5-dataset-name", "h5-attr-value", "h5-candidates", "h5-tokens", "npz-member", "st-meta-value"}
    for place, (possible, build) in places.items():
        strings = HOSTILE if place in primary else [h for h in HOSTILE if h[0] in ("csi-2j", "osc52-st", "c1-csi", "lf", "rlo", "nul")]
        for sid, s in ctx.pick(strings, 3):
            if not possible(s):
                continue
            name = "str_%s_%s" % (place, sid)
            if place.startswith("npz-") and len(s) > 60000:
                s = s[-60000:]                          # a zip name holds at most 65535 bytes
            tokens = np.array(["[CLS]", "a" + s, "b", "c"])
            try:
                if place.startswith("h5-"):
                    path = ctx.path(name + ".h5")
                    with h5py.File(path, "w", libver="latest" if sid == "long" else "earliest") as f:
                        if place == "h5-candidates":
                            f["x" + s] = a
                            f["y" + s] = a
                        else:
                            f["attentions"] = a
                            if place == "h5-tokens":
                                f["tokens"] = np.array(tokens, dtype=h5py.string_dtype())
                            else:
                                build(f, s)
                elif place.startswith("npz-"):
                    path = ctx.path(name + ".npz")
                    members = {"npz-member": [("attentions.npy", a), ("m" + s + ".npy", np.zeros(2, np.float32))],
                               "npz-candidates": [("x" + s + ".npy", a), ("y" + s + ".npy", a)],
                               "npz-tokens": [("attentions.npy", a), ("tokens.npy", tokens)]}[place]
                    zip_members(path, members)
                else:
                    path = ctx.path(name + ".safetensors")
                    if place == "st-tensor":
                        safetensors(path, {"attentions": a, "z" + s: np.zeros(2)})
                    elif place == "st-candidates":
                        safetensors(path, {"x" + s: a, "y" + s: a})
                    elif place == "st-meta-key":
                        safetensors(path, {"attentions": a}, metadata={"model" + s: "m"})
                    else:
                        safetensors(path, {"attentions": a}, metadata={"model": "m" + s, "note": s})
            except Exception as e:                # a place that cannot hold this string (h5py refuses it)
                if ctx.verbose:
                    print("skip %s: %s" % (name, e), file=sys.stderr)
                continue
            kind = place.split("-")[-1]
            for c in commands_for.get(kind, ["info"]):
                cases.append(Case(cat, "%s/%s/%s" % (place, sid, c), command(c, path)))
            if sid in ("csi-2j", "lf"):                 # a few more commands on two strings
                more = {"candidates": ["info"], "tokens": ["stats-csv", "show"]}.get(kind, ["stats-json", "heads-json"])
                for c in more:
                    cases.append(Case(cat, "%s/%s/%s" % (place, sid, c), command(c, path)))
                cases.append(Case(cat, "%s/%s/stats-verbose" % (place, sid), command("stats", path, quiet=False)))
    # The dump's own file name: newline, escapes, non-UTF-8 bytes. Given as bytes in argv.
    names = [b"two\nlines.npy", b"esc\x1b[2J.npy", b"lat\xe9.npy", b"cr\rx.npy", b"del\x7f.npy",
             b"rlo\xe2\x80\xaegnp.npy", b"c1\xc2\x9b31m.npy", b"osc\x1b]52;c;SGVsbG8=\x07.npy"]
    for raw in ctx.pick(names, 3):
        nid = re.sub(rb"[^a-z0-9]", b"", raw.split(b".")[0].lower()).decode() or "x"

        def put(d, raw=raw):
            shutil.copy(ctx.small_npy, os.path.join(os.fsencode(d), raw))
        cases.append(Case(cat, "file-name/%s/stats" % nid, ["stats", raw, "--quiet"], setup=put, checks=[succeeded]))
        cases.append(Case(cat, "file-name/%s/info" % nid, ["info", raw], setup=put, checks=[succeeded]))
        cases.append(Case(cat, "file-name/%s/missing" % nid, ["stats", b"gone-" + raw, "--quiet"], checks=[refused]))
        out = raw[:-4] + b".png"
        cases.append(Case(cat, "file-name/%s/output" % nid, ["heatmap", ctx.small_npy, "-o", out], checks=[succeeded, file_exists(out)]))
    # Two output names differing only in a non-UTF-8 byte stay two files.
    cases.append(Case(cat, "file-name/latin1-outputs", ["heatmap", ctx.small_npy, "--layer", "0", "-o", b"a\xe8.png", "--quiet"],
                      setup=lambda d: shutil.copy(ctx.small_npy, os.path.join(os.fsencode(d), b"a\xe9.png")),
                      checks=[succeeded, file_exists(b"a\xe8.png"), unchanged(os.fsdecode(b"a\xe9.png"))]))
    return cases


def gen_json(ctx):
    """4. safetensors JSON headers: surrogates, bad escapes, bad UTF-8, nesting, numbers, lengths and offsets."""
    cat, cases, a = "json", [], ctx.small
    raw = a.astype("<f4").tobytes()
    tensor = '"attentions": {"dtype": "F32", "shape": [2, 2, 4, 4], "data_offsets": [0, %d]}' % len(raw)
    headers = []   # (id, header bytes, data bytes, claimed length or None)
    surrogates = [("high", r"\ud800"), ("low", r"\udc00"), ("high-ascii", r"\ud800\u0041"), ("high-high", r"\ud800\udbff"),
                  ("low-high", r"\udfff\ud800"), ("high-backslash", r"\ud800\\"), ("high-newline", r"\ud800\n"),
                  ("high-short", r"\ud800\u00"), ("max-pair", r"\udbff\udfff"), ("pair", r"\ud83d\ude00")]
    for sid, text in ctx.pick(surrogates, 4):
        headers.append(("surrogate-%s/meta-value" % sid, '{"__metadata__": {"model": "x%sy"}, %s}' % (text, tensor)))
        headers.append(("surrogate-%s/meta-key" % sid, '{"__metadata__": {"k%s": "v"}, %s}' % (text, tensor)))
        headers.append(("surrogate-%s/tensor-name" % sid, '{%s, "t%s": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}' % (tensor, text)))
        headers.append(("surrogate-%s/end-of-header" % sid, '{%s, "__metadata__": {"z": "%s' % (tensor, text)))
    escapes = [("u-short", r"\u12"), ("u-hex", r"\uZZZZ"), ("u-alone", "\\u"), ("x", r"\x41"), ("U", r"\U00000041"),
               ("space", "\\ "), ("nul", r"\u0000"), ("esc", r"\u001b[2J"), ("c1", r"\u009b"), ("rlo", r"\u202e"),
               ("raw-esc", "\x1b[2J"), ("raw-ctrl", "\x01\x7f"), ("raw-newline", "a\nb")]
    for eid, text in ctx.pick(escapes, 3):
        headers.append(("escape-%s/meta-value" % eid, '{"__metadata__": {"model": "x%sy"}, %s}' % (text, tensor)))
    utf8 = [("ff", b"\xff"), ("overlong-slash", b"\xc0\xaf"), ("cesu-surrogate", b"\xed\xa0\x80"), ("above-10ffff", b"\xf4\x90\x80\x80"),
            ("truncated", b"\xe2\x82"), ("bom", None)]
    for uid, bad in ctx.pick(utf8, 2):
        if bad is None:
            headers.append(("utf8-bom", b"\xef\xbb\xbf" + ('{%s}' % tensor).encode()))
        else:
            headers.append(("utf8-%s/meta-value" % uid, b'{"__metadata__": {"model": "x' + bad + b'y"}, ' + tensor.encode() + b"}"))
            headers.append(("utf8-%s/key" % uid, b'{"t' + bad + b'": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, ' + tensor.encode() + b"}"))
    for depth in ctx.pick([64, 10_000, 1_000_000], 2):
        headers.append(("nesting-array-%d" % depth, '{%s, "x": %s1%s}' % (tensor, "[" * depth, "]" * depth)))
        headers.append(("nesting-object-%d" % depth, '{%s, "x": %s1%s}' % (tensor, '{"a":' * depth, "}" * depth)))
        headers.append(("nesting-unclosed-%d" % depth, '{%s, "x": %s' % (tensor, "[" * depth)))
    numbers = [("shape-1e400", '[1e400, 2, 4, 4]'), ("shape-2^64", '[18446744073709551616, 2, 4, 4]'), ("shape-neg", '[-2, -2, 4, 4]'),
               ("shape-frac", '[2.5, 2, 4, 4]'), ("shape-2^63", '[9223372036854775808, 1, 1, 1]'),
               ("shape-product-overflow", '[4294967296, 4294967296, 4294967296, 4]'), ("shape-digits", '[%s, 2, 4, 4]' % ("9" * 10000)),
               ("shape-exponent", '[1e99999999999999999999, 2, 4, 4]'), ("shape-zero", '[2, 2, 0, 4]'), ("shape-empty", '[]'),
               ("shape-string", '["2", 2, 4, 4]'), ("shape-huge-rank", "[%s]" % ", ".join(["1"] * 100000))]
    for nid, shape in ctx.pick(numbers, 4):
        headers.append(("number-%s" % nid, '{"attentions": {"dtype": "F32", "shape": %s, "data_offsets": [0, %d]}}' % (shape, len(raw))))
    offsets = [("end-beyond", [0, len(raw) + 4]), ("begin-after-end", [len(raw), 0]), ("empty", [0, 0]), ("huge", [0, 2 ** 64 - 1]),
               ("overflow", [2 ** 64 - 4, 2 ** 64 + 252]), ("negative", [-4, len(raw) - 4]), ("float", [0.5, len(raw)]),
               ("short", [0, len(raw) - 4]), ("one", [0]), ("three", [0, 4, len(raw)]), ("1e30", [0, 1e30])]
    for oid, offs in ctx.pick(offsets, 4):
        headers.append(("offsets-%s" % oid, '{"attentions": {"dtype": "F32", "shape": [2, 2, 4, 4], "data_offsets": %s}}' % json.dumps(offs)))
    headers.append(("offsets-overlap", '{"attentions": {"dtype": "F32", "shape": [2, 2, 4, 4], "data_offsets": [0, %d]}, '
                                       '"q": {"dtype": "F32", "shape": [2, 2, 4, 4], "data_offsets": [4, %d]}}' % (len(raw), len(raw) + 4)))
    for did in ctx.pick(["F128", "", "f32", "F8_E4M3", "C64"], 3):
        headers.append(("dtype-%s" % (did or "empty"), '{"attentions": {"dtype": "%s", "shape": [2, 2, 4, 4], "data_offsets": [0, %d]}}' % (did, len(raw))))
    structure = [("array", "[]"), ("string", '"x"'), ("null", "null"), ("number", "1"), ("empty", ""), ("empty-object", "{}"),
                 ("duplicate", "{%s, %s}" % (tensor, tensor)), ("metadata-array", '{"__metadata__": [1, 2], %s}' % tensor),
                 ("metadata-number-value", '{"__metadata__": {"a": 1}, %s}' % tensor), ("trailing", "{%s} garbage" % tensor),
                 ("truncated", "{%s" % tensor[:40]), ("tensor-not-object", '{"attentions": 5}'),
                 ("missing-fields", '{"attentions": {"dtype": "F32"}}'), ("nul-in-header", "{%s}\x00\x00" % tensor)]
    for sid, text in ctx.pick(structure, 4):
        headers.append(("structure-%s" % sid, text))
    for hid, text in headers:
        name = "json_%s.safetensors" % re.sub(r"[^a-z0-9.-]", "_", hid.lower())
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        path = safetensors(ctx.path(name), {}, raw_header=data, data=raw + raw)
        for c in ["stats"] + (["info"] if hid.endswith("meta-value") else []):
            cases.append(Case(cat, "%s/%s" % (hid, c), command(c, path)))
    # The 8-byte length lies about the header.
    body = ('{"__metadata__": {"m": "x"}, %s}' % tensor).encode()
    body += b" " * ((8 - len(body) % 8) % 8)
    for lid, length in ctx.pick([("zero", 0), ("one", 1), ("short-by-1", len(body) - 1), ("long-by-1", len(body) + 1),
                                 ("file-size", 8 + len(body) + len(raw)), ("beyond-file", 8 + len(body) + len(raw) + 1),
                                 ("2^32", 2 ** 32), ("100MB", 100 << 20), ("2^63", 2 ** 63), ("2^64-1", 2 ** 64 - 1)], 4):
        path = safetensors(ctx.path("json_length_%s.safetensors" % lid), {}, raw_header=body, data=raw, length=length, pad=False)
        cases.append(Case(cat, "length-%s/stats" % lid, command("stats", path)))
    cases.append(Case(cat, "truncated-length/stats", command("stats", _write(ctx.path("json_4bytes.safetensors"), b"\x10\x00\x00\x00"))))
    # A valid pair must read.
    pair = safetensors(ctx.path("json_valid_pair.safetensors"), {}, raw_header=('{"__metadata__": {"model": "x\\ud83d\\ude00y"}, %s}' % tensor).encode(), data=raw)
    cases.append(Case(cat, "surrogate-valid-pair/info-reads", command("info", pair), checks=[succeeded, stdout_has("x\U0001F600y")]))
    return cases


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def gen_sparse(ctx):
    """5. HDF5 data never written: huge shapes in tiny chunks, partial writes, contiguous never allocated."""
    cat, cases = "sparse", []
    files = []

    def chunked(name, shape, chunks, fill=None, write=None, compression=None):
        with ctx.h5(name) as f:
            d = f.create_dataset("attentions", shape=shape, dtype="f4", chunks=chunks, fillvalue=fill, compression=compression)
            if write is not None:
                write(d)
        return ctx.path(name)

    few = ["info", "stats", "heatmap-npy", "rollout-npy", "verify"]
    many = ["info", "stats", "stats-json", "heads", "rollout-npy", "heatmap-npy", "verify", "show"]
    files.append(("4tib-fill0", chunked("sparse_4tib_0.h5", (1024,) * 4, (1, 1, 1, 1)), few, True))
    files.append(("4tib-fill0.5", chunked("sparse_4tib_05.h5", (1024,) * 4, (1, 1, 1, 1), fill=0.5), few, True))
    files.append(("4tib-fillnan", chunked("sparse_4tib_nan.h5", (1024,) * 4, (1, 1, 1, 1), fill=np.nan), ["stats", "heatmap-npy"], True))
    files.append(("512mib-fill0", chunked("sparse_512m.h5", (4, 8, 2048, 2048), (1, 1, 1, 1)), few, True))
    files.append(("512mib-rows", chunked("sparse_512m_rows.h5", (4, 8, 2048, 2048), (1, 1, 1, 2048), fill=1 / 2048), few, True))
    files.append(("64gib-bigchunks", chunked("sparse_64g.h5", (64, 16, 4096, 4096), (1, 1, 256, 256)), few, True))
    part = ctx.attention(2, 8, 8)
    files.append(("partial-first", chunked("partial_first.h5", (4, 2, 8, 8), (1, 2, 8, 8), write=lambda d: d.__setitem__(0, part)), many, True))
    files.append(("partial-last", chunked("partial_last.h5", (4, 2, 8, 8), (1, 2, 8, 8), fill=0.125, write=lambda d: d.__setitem__(3, part)), many, True))
    files.append(("partial-gzip", chunked("partial_gzip.h5", (4, 2, 8, 8), (1, 1, 8, 8), compression="gzip",
                                          write=lambda d: d.__setitem__((slice(0, 2)), ctx.attention(2, 2, 8, 8))), many, True))
    with ctx.h5("contiguous_never.h5") as f:
        f.create_dataset("attentions", shape=(4, 2, 8, 8), dtype="f4")
    files.append(("contiguous-never", ctx.path("contiguous_never.h5"), many, True))
    with ctx.h5("contiguous_huge_never.h5") as f:
        f.create_dataset("attentions", shape=(64, 64, 4096, 4096), dtype="f4")
    files.append(("contiguous-256gib-never", ctx.path("contiguous_huge_never.h5"), few, True))
    tiny = ctx.attention(2, 2, 32, 32)
    ctx.npy("tiny_chunks.npy", tiny)
    files.append(("tiny-chunks-written", chunked("tiny_chunks.h5", tiny.shape, (1, 1, 1, 1), write=lambda d: d.__setitem__(Ellipsis, tiny)), many, False))
    files.append(("tiny-chunks-gzip", chunked("tiny_chunks_gzip.h5", tiny.shape, (1, 1, 1, 4), compression="gzip",
                                              write=lambda d: d.__setitem__(Ellipsis, tiny)), ["stats-json", "rollout-npy", "heatmap-npy"], False))
    npy_stats = lambda: reference_stdout(ctx, ["stats", "--json", ctx.path("tiny_chunks.npy")])
    for fid, path, commands, must_refuse in ctx.pick(files, 20):
        for c in ctx.pick(commands, 3):
            checks = [refused] if must_refuse and c != "info" else []
            if not must_refuse:
                checks = ([succeeded] if c != "tokens" else []) + ([same_records(npy_stats)] if c == "stats-json" else [])
            cases.append(Case(cat, "%s/%s" % (fid, c), command(c, path), checks=checks, max_seconds=10))
    return cases


def gen_attributes(ctx):
    """6. Attributes by the thousand, datasets and groups by the thousand, long values."""
    cat, cases = "attributes", []
    a = ctx.attention(1, 2, 4, 4)
    files = []

    def many_attrs(name, count, libver, on_dataset=False, value=lambda i: "value %d" % i):
        with ctx.h5(name, libver) as f:
            f["attentions"] = a
            target = f["attentions"] if on_dataset else f
            for i in range(count):
                target.attrs["note_%05d" % i] = value(i)
            f.attrs["patch_grid"] = np.array([1, 3], dtype=np.int64)
        return ctx.path(name)
    files.append(("root-1000-compact", many_attrs("attrs_1000.h5", 1000, "earliest")))
    files.append(("root-2000-compact", many_attrs("attrs_2000.h5", 2000, "earliest")))
    if not ctx.quick:
        files.append(("root-6000-dense", many_attrs("attrs_6000.h5", 6000, "latest")))
        files.append(("root-20000-dense", many_attrs("attrs_20000.h5", 20000, "latest")))
        files.append(("dataset-20000-dense", many_attrs("attrs_ds_20000.h5", 20000, "latest", on_dataset=True)))
    files.append(("root-4100-int", many_attrs("attrs_int_4100.h5", 4100, "latest", value=lambda i: np.int8(i % 100))))
    with ctx.h5("attr_long_value.h5", "latest") as f:
        f["attentions"] = a
        f.attrs["model"] = "m" * (4 << 20)
        f.attrs["patch_grid"] = np.arange(1 << 20, dtype=np.int64)
        f["attentions"].attrs["note"] = np.zeros(1 << 20, np.float64)
    files.append(("long-values-4mb", ctx.path("attr_long_value.h5")))
    with ctx.h5("attr_long_name.h5", "latest") as f:
        f["attentions"] = a
        for i in range(50):
            f.attrs["n%02d" % i + "x" * 60000] = i
    files.append(("long-names-60kb", ctx.path("attr_long_name.h5")))
    with ctx.h5("many_datasets.h5", "latest") as f:
        f["attentions"] = a
        for i in range(3000 if not ctx.quick else 300):
            f.create_dataset("extra_%04d" % i, data=np.zeros(2, np.float32))
    files.append(("datasets-3000", ctx.path("many_datasets.h5")))
    with ctx.h5("many_groups.h5", "latest") as f:
        f["attentions"] = a
        g = f
        for i in range(2000 if not ctx.quick else 200):
            f.create_group("group_%04d" % i).attrs["x"] = i
        for i in range(200):                      # 200 nested groups
            g = g.create_group("n")
    files.append(("groups-2000-nested-200", ctx.path("many_groups.h5")))
    layers = 3000 if not ctx.quick else 300
    per_layer = ctx.attention(layers, 2, 4, 4)
    with ctx.h5("per_layer_3000.h5", "latest") as f:
        for i in range(layers):
            f.create_dataset("layer_%04d/attn" % i, data=per_layer[i])
    files.append(("per-layer-groups-%d" % layers, ctx.path("per_layer_3000.h5")))
    with ctx.h5("attn_flat_3000.h5", "latest") as f:
        for i in range(layers):
            f.create_dataset("attn_%d" % i, data=per_layer[i])
    files.append(("flat-layers-%d" % layers, ctx.path("attn_flat_3000.h5")))
    for fid, path in files:
        for c in ctx.pick(["info", "stats", "heatmap-png", "grid-png", "rollout-npy"], 3):
            cases.append(Case(cat, "%s/%s" % (fid, c), command(c, path), max_seconds=10, serial=fid.endswith("20000-dense")))
    return cases


def deflate_member(header_shape, payload_bytes, fill=b"\x00", block=1 << 20):
    """The deflate stream of an NPY header for header_shape followed by payload_bytes of `fill` repeated, at deflate's
    best ratio but quickly: one block of `block` bytes is deflated once with a full flush (which ends on a byte
    boundary and forgets the window), so its bytes can be repeated. Returns (stream, crc32, inflated size)."""
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
    head = hdr.getvalue()
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)]
    chunk = (fill * (block // len(fill) + 1))[:block]
    crc = zlib.crc32(head)
    whole, rest = divmod(payload_bytes, block)
    if whole:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        repeated = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
        parts.append(repeated * whole)
        for _ in range(whole):
            crc = zlib.crc32(chunk, crc)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts.append(c.compress(chunk[:rest]) + c.flush(zlib.Z_FINISH))
    crc = zlib.crc32(chunk[:rest], crc)
    return b"".join(parts), crc, len(head) + payload_bytes


def raw_zip(path, name, compressed, crc, size, claimed=None):
    """One deflated member, written by hand (zipfile would inflate nothing, but it cannot lie about sizes)."""
    claimed = size if claimed is None else claimed
    name = name.encode()
    zip64 = claimed >= 0xFFFFFFFF or len(compressed) >= 0xFFFFFFFF
    extra = struct.pack("<HHQQ", 1, 16, claimed, len(compressed)) if zip64 else b""
    usize, csize = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (claimed, len(compressed))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, 0, 8, 0, 0x21, crc, csize, usize, len(name), len(extra)) + name + extra
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20, 45 if zip64 else 20, 0, 8, 0, 0x21, crc, csize, usize,
                          len(name), len(extra), 0, 0, 0, 0, 0) + name + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(compressed), 0)
    with open(path, "wb") as f:
        f.write(local + compressed + central + end)
    return path


def gen_costs(ctx):
    """7. Work with no guard: heads, montages, zip bombs, compressed members read backwards or in Fortran order."""
    cat, cases = "costs", []
    heads_big = ctx.npy("heads_big.npy", ctx.attention(2, 16, 384, 384))
    heads_wide = ctx.npy("heads_wide.npy", ctx.attention(1, 96, 128, 128))
    for fid, path in [("2x16x384", heads_big), ("1x96x128", heads_wide)]:
        for extra in ctx.pick([["--max-seconds", "1"], ["--similarity", "all", "--max-seconds", "1"], ["--max-seconds", "1e-9"]], 2):
            cases.append(Case(cat, "heads-%s/%s" % (fid, " ".join(extra)), ["heads", path, "--quiet"] + extra, serial=True, max_seconds=8))
    montage = ctx.npy("montage_200x200.npy", np.full((200, 200, 2, 2), 0.5, np.float32))       # 40000 tiles, 640 KB
    montage_grid = ctx.npy("montage_grid.npy", np.full((100, 100, 5, 5), 0.2, np.float32))    # 10000 tiles, 1 MB
    for fid, path in [("heatmap-40000", montage), ("grid-10000", montage_grid)]:
        verb = fid.split("-")[0]
        for extra in ctx.pick([[], ["--max-memory", "64M"], ["--max-memory", "16K"]], 2):
            argv = [verb, path, "--layer", "all", "--head", "all", "-o", "m.png", "--quiet"] + extra
            if verb == "grid":
                argv += ["--grid", "2x2"]
            cases.append(Case(cat, "montage-%s/%s" % (fid, " ".join(extra) or "default"), argv, serial=True, max_seconds=15))
        cases.append(Case(cat, "montage-%s/npy" % fid, [verb, path, "--layer", "all", "--head", "all", "-o", "m.npy", "--quiet"]
                          + (["--grid", "2x2"] if verb == "grid" else []), serial=True, max_seconds=15))
    # Zip bombs: 1 GiB of zeros at deflate's best ratio (about 1 MB), and a member whose headers claim 4 GiB from 100 bytes.
    gib = (16, 16, 1024, 1024) if not ctx.quick else (4, 4, 1024, 1024)
    body, crc, size = deflate_member(gib, int(np.prod(gib)) * 4)
    bomb = raw_zip(ctx.path("bomb_zeros.npz"), "attentions.npy", body, crc, size)
    uniform, ucrc, usize = deflate_member((4, 4, 1024, 1024), 4 * 4 * 1024 * 1024 * 4, fill=struct.pack("<f", 1 / 1024))
    bomb_uniform = raw_zip(ctx.path("bomb_uniform.npz"), "attentions.npy", uniform, ucrc, usize)
    # Valid attention (uniform rows) over 16384 tokens: 1 GiB from about 1 MB.
    wide, wcrc, wsize = deflate_member((1, 1, 16384, 16384), 16384 * 16384 * 4, fill=struct.pack("<f", 1 / 16384))
    bomb_wide = raw_zip(ctx.path("bomb_uniform_16384.npz"), "attentions.npy", wide, wcrc, wsize)
    small_body, scrc, ssize = deflate_member((2, 2, 4, 4), 256, fill=b"\x00")
    lying = raw_zip(ctx.path("bomb_claims_4gib.npz"), "attentions.npy", small_body, scrc, ssize, claimed=0xFFFFFFFE)
    lying64 = raw_zip(ctx.path("bomb_claims_zip64.npz"), "attentions.npy", small_body, scrc, ssize, claimed=1 << 60)
    # The headers say 1 KiB but the stream inflates to 1 GiB (of an NPY claiming it): must stop at what was declared.
    understated = raw_zip(ctx.path("bomb_understated.npz"), "attentions.npy", body, crc, 1024)
    # The NPY header inside claims more than the member holds.
    short_body, shcrc, shsize = deflate_member((64, 64, 1024, 1024), 4096)
    short = raw_zip(ctx.path("bomb_npy_claims_more.npz"), "attentions.npy", short_body, shcrc, shsize)
    bombs = [("zeros-1gib", bomb), ("uniform-64mib", bomb_uniform), ("uniform-16384-tokens-1gib", bomb_wide), ("claims-4gib", lying), ("claims-zip64-2^60", lying64),
             ("understated", understated), ("npy-claims-more", short)]
    for fid, path in bombs:
        for c in ctx.pick(["info", "stats", "rollout-npy", "heatmap-npy", "heatmap-png", "verify", "heads", "show"], 3):
            if fid == "uniform-16384-tokens-1gib" and c != "info":
                # Valid attention: the work it asks for (a 1 GiB layer, a 16384² picture) is real, and the default limit
                # (half of this machine's memory) lets it through. What must hold is that the guard sees it: under
                # --max-memory 512M every command that reads the layer refuses it, before reading.
                cases.append(Case(cat, "npz-%s/%s --max-memory 512M" % (fid, c), command(c, path, "--max-memory", "512M"),
                                  serial=True, max_seconds=15, checks=[refused, stderr_has("more than the 512.0 mib allowed")]))
                continue
            cases.append(Case(cat, "npz-%s/%s" % (fid, c), command(c, path), serial=True, max_seconds=15))
    # Compressed members read backwards (rollout's grid view) and in Fortran order: correct and quick.
    backwards = ctx.attention(12, 2, 50, 50)
    ctx.npy("backwards.npy", backwards)
    with open(ctx.path("backwards.npz"), "wb") as f:
        np.savez_compressed(f, attentions=backwards)

    def same_as(argv):
        """The x.npy written equals what the same command writes from the uncompressed, C-order .npy."""
        return lambda r: same_npy("x.npy", reference_output(ctx, argv))(r)

    big = ctx.attention(24, 12, 197, 197) if not ctx.quick else ctx.attention(12, 2, 197, 197)
    ctx.npy("backwards_big.npy", big)
    with open(ctx.path("backwards_big.npz"), "wb") as f:
        np.savez_compressed(f, attentions=big)
    for fid, stem in [("12x2x50", "backwards"), ("x".join(map(str, big.shape)), "backwards_big")]:
        npz, npy = ctx.path(stem + ".npz"), ctx.path(stem + ".npy")
        for c, argv, out in [("rollout-grid", ["rollout", "--view", "grid", "--grid", "7x7" if stem == "backwards" else "14x14"], "x.npy"),
                             ("rollout-matrix", ["rollout", "--view", "matrix"], "x.npy"),
                             ("heatmap-layer0", ["heatmap", "--layer", "0", "--head", "1"], "x.npy")]:
            # 2 s: the .npy takes 0.04 s, inflating this member once about 0.3 s
            cases.append(Case(cat, "backwards-%s/%s" % (fid, c), argv + [npz, "-o", out, "--quiet"], serial=True, max_seconds=2,
                              checks=[succeeded, same_as(argv + [npy, "-o", "x.npy"])]))
    fortran = big
    ctx.npy("fortran_c.npy", fortran)
    with open(ctx.path("fortran.npz"), "wb") as f:
        np.savez_compressed(f, attentions=np.asfortranarray(fortran))
    ctx.npy("fortran_plain.npy", np.asfortranarray(fortran))
    for name in ["fortran.npz", "fortran_plain.npy"]:
        for c, argv in [("rollout-matrix", ["rollout", "--view", "matrix"]), ("heatmap-last", ["heatmap", "--layer", "-1", "--head", "1"])]:
            cases.append(Case(cat, "%s/%s" % (name, c), argv + [ctx.path(name), "-o", "x.npy", "--quiet"], serial=True, max_seconds=2,
                              checks=[succeeded, same_as(argv + [ctx.path("fortran_c.npy"), "-o", "x.npy"])]))
        cases.append(Case(cat, "%s/stats-json" % name, ["stats", "--json", ctx.path(name), "--quiet"], serial=True, max_seconds=2,
                          checks=[succeeded, same_records(lambda: reference_stdout(ctx, ["stats", "--json", ctx.path("fortran_c.npy")]))]))
    return cases


READ_ONLY = set()                                # case folders whose ro/ really is read-only (immutable)
_references = {}


def reference_stdout(ctx, argv):
    """What the binary prints for argv (run once, when a check first needs it)."""
    key = ("stdout",) + tuple(argv)
    if key not in _references:
        _references[key] = subprocess.run([ctx.binary] + argv + ["--quiet"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return _references[key]


def reference_output(ctx, argv):
    """The x.npy the binary writes for argv (run once, in a folder of its own)."""
    key = ("file",) + tuple(argv)
    if key not in _references:
        folder = os.path.join(ctx.out, "reference", str(len(_references)))
        os.makedirs(folder, exist_ok=True)
        subprocess.run([ctx.binary] + argv + ["--quiet"], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _references[key] = os.path.join(folder, "x.npy")
    return _references[key]


def gen_writes(ctx):
    """8. Writes: stdout to /dev/full, closed, piped into head; outputs in bad places or over existing files."""
    cat, cases = "writes", []
    dump = ctx.labelled
    printing = ["info", "stats", "stats-json", "stats-csv", "heads", "show", "tokens", "verify", "entropy-png"]
    for c in ctx.pick(printing, 4):
        cases.append(Case(cat, "dev-full/%s" % c, command(c, dump), stdout="devfull", checks=[refused]))
        cases.append(Case(cat, "stdout-closed/%s" % c, command(c, dump), stdout="closed", checks=[refused]))
        cases.append(Case(cat, "pipe-head-c1/%s" % c, command(c, dump), stdout="head",
                          checks=[succeeded, lambda r: "stderr not empty: %s" % first_line(r.stderr) if r.stderr else None]))
    writers = [("rollout-npy", "x.npy"), ("heatmap-svg", "x.svg"), ("grid-png", "x.png"), ("entropy-png", "x.png"), ("flow-npy", "x.npy")]

    def with_output(c, out, *extra):
        argv = command(c, dump, *extra)
        i = argv.index("-o")
        argv[i + 1] = out
        return argv

    def readonly(d):
        """Mode 555, and immutable where chattr can (root writes into a 555 folder); the check knows which."""
        ro = os.path.join(d, "ro")
        os.makedirs(ro)
        os.chmod(ro, 0o555)
        if shutil.which("chattr"):
            subprocess.run(["chattr", "+i", ro], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            open(os.path.join(ro, ".probe"), "w").close()
            os.remove(os.path.join(ro, ".probe"))
        except OSError:
            READ_ONLY.add(d)

    def writable_again(d):
        if d in READ_ONLY:
            subprocess.run(["chattr", "-i", os.path.join(d, "ro")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    refused_if_read_only = lambda r: refused(r) if r.folder in READ_ONLY else None

    def existing_dump(d, name):
        shutil.copy(ctx.base_npy, os.path.join(d, name))

    for c, out in ctx.pick(writers, 3):
        ext = out[1:]
        cases.append(Case(cat, "missing-folder/%s" % c, with_output(c, "no/such/folder/x" + ext), checks=[refused]))
        cases.append(Case(cat, "read-only-folder/%s" % c, with_output(c, "ro/x" + ext), setup=readonly, teardown=writable_again,
                          checks=[refused_if_read_only]))
        cases.append(Case(cat, "proc-folder/%s" % c, with_output(c, "/proc/attack-sweep-x" + ext), checks=[refused]))
        cases.append(Case(cat, "name-251/%s" % c, with_output(c, "n" * (255 - len(ext)) + ext), checks=[succeeded, file_exists("n" * (255 - len(ext)) + ext)]))
        cases.append(Case(cat, "name-256/%s" % c, with_output(c, "n" * (256 - len(ext)) + ext), checks=[refused]))
        # (stdout is /dev/null here: a link to /dev/stdout when stdout is a regular file may well be written through)
        cases.append(Case(cat, "symlink-dev-stdout/%s" % c, with_output(c, "out" + ext), stdout="devnull",
                          setup=lambda d, e=ext: os.symlink("/dev/stdout", os.path.join(d, "out" + e)), checks=[refused]))
        cases.append(Case(cat, "symlink-missing/%s" % c, with_output(c, "out" + ext),
                          setup=lambda d, e=ext: os.symlink("gone/target" + e, os.path.join(d, "out" + e)), checks=[refused]))
        cases.append(Case(cat, "symlink-dangling-file/%s" % c, with_output(c, "out" + ext),
                          setup=lambda d, e=ext: os.symlink("target" + e, os.path.join(d, "out" + e))))
        cases.append(Case(cat, "is-directory/%s" % c, with_output(c, "adir" + ext), setup=make_dir("adir" + ext), checks=[refused]))
        cases.append(Case(cat, "is-fifo/%s" % c, with_output(c, "fifo" + ext), setup=make_fifo("fifo" + ext), checks=[refused]))
        cases.append(Case(cat, "symlink-dev-null/%s" % c, with_output(c, "null" + ext),
                          setup=lambda d, e=ext: os.symlink("/dev/null", os.path.join(d, "null" + e))))
        # A dump (an .npy, whatever the name says) where the output goes: refused without --force, left as it was.
        cases.append(Case(cat, "existing-dump/%s" % c, with_output(c, "dump" + ext), setup=lambda d, e=ext: existing_dump(d, "dump" + e),
                          checks=[refused, unchanged("dump" + ext)]))
        # The input itself as the output, directly and through a hard link.
        argv = with_output(c, "in.npy")
        argv[argv.index(dump)] = "in.npy"
        cases.append(Case(cat, "output-is-input/%s" % c, argv, setup=lambda d: existing_dump(d, "in.npy"), checks=[refused, unchanged("in.npy")]))
        argv = with_output(c, "link.npy")
        argv[argv.index(dump)] = "in.npy"
        cases.append(Case(cat, "output-hardlink-to-input/%s" % c, argv, checks=[refused, unchanged("in.npy")],
                          setup=lambda d: (existing_dump(d, "in.npy"), os.link(os.path.join(d, "in.npy"), os.path.join(d, "link.npy")))))
    # An existing 4-D dump in the way of a 2-D output: refused without --force, replaced with it.
    for c in ctx.pick(["rollout-npy", "heatmap-npy", "flow-npy", "entropy-npy"], 2):
        if c == "entropy-npy":
            argv = ["entropy", dump, "-o", "dump.npy", "--quiet"]
        else:
            argv = with_output(c, "dump.npy")
        cases.append(Case(cat, "replace-dump/%s" % c, argv, setup=lambda d: existing_dump(d, "dump.npy"), checks=[refused, unchanged("dump.npy")]))
        cases.append(Case(cat, "replace-dump-force/%s" % c, argv + ["--force"], setup=lambda d: existing_dump(d, "dump.npy"), checks=[succeeded]))
    # A non-dump file of another kind (text) in the way.
    cases.append(Case(cat, "replace-text/heatmap-png", with_output("heatmap-png", "notes.png"),
                      setup=lambda d: _write(os.path.join(d, "notes.png"), b"my notes\n"), checks=[refused, unchanged("notes.png")]))
    # heads' second output, and diff's.
    cases.append(Case(cat, "similarity-out-missing-folder/heads", ["heads", dump, "--similarity-out", "no/s.csv", "--quiet"], checks=[refused]))
    cases.append(Case(cat, "diff-output-dev-stdout/diff", ["diff", dump, dump, "-o", "out.png", "--quiet"], stdout="devnull",
                      setup=lambda d: os.symlink("/dev/stdout", os.path.join(d, "out.png")), checks=[refused]))
    return cases


def gen_signals(ctx):
    """9. SIGINT, SIGTERM, SIGHUP while the temporary output exists: removed, status 128 + signal."""
    cat, cases = "signals", []
    n = 2048
    big = os.path.join(ctx.inputs, "signal_map.npy")
    np.save(big, np.full((n, n), 1.0 / n, np.float32))
    variants = [("npy", ["heatmap", big, "-o", "big.npy", "--quiet", "--force"]),
                ("pgm-zoom4", ["heatmap", big, "--zoom", "4", "-o", "big.pgm", "--quiet", "--force"])]
    for sig in ctx.pick([signal.SIGINT, signal.SIGTERM, signal.SIGHUP], 3):
        for vid, argv in ctx.pick(variants, 1):
            cases.append(Case(cat, "%s/%s" % (signal.Signals(sig).name, vid), argv, signal=sig, serial=True, ok_status=(128 + sig,)))
    # As the issue describes it: a background job of a shell with job control.
    script = ("set -m\n\"$0\" heatmap '%s' -o big.npy --quiet --force & pid=$!\n"
              "until compgen -G '.big.npy.tmp-*' > /dev/null; do kill -0 $pid 2>/dev/null || { wait $pid; exit 3; }; done\n"
              "kill -INT $pid\nwait $pid\n") % big
    cases.append(Case(cat, "SIGINT/bash-job-control", ["@bash", script], serial=True, ok_status=(130,), retry_status=3))
    return cases


def gen_probabilities(ctx):
    """10. Values that are not probabilities: refused by rollout, flow, grid, show --rollout unless --allow-unnormalised."""
    cat, cases = "probabilities", []
    rng = ctx.rng
    logits = rng.normal(size=(3, 2, 10, 10)).astype(np.float32) * 4
    twice = ctx.attention(3, 2, 10, 10) * 2
    half = ctx.attention(3, 2, 10, 10) * 0.5
    one_negative = ctx.attention(3, 2, 10, 10)
    one_negative[2, 1, 0, 4] = -1e-3              # in the CLS row of the last layer: every command reads it
    one_negative[2, 1, 0, 5] += 1e-3
    last_layer_bad = ctx.attention(3, 2, 10, 10)
    last_layer_bad[2, 1, 9] = np.linspace(-1, 1, 10) + 0.1
    inputs = [("logits", ctx.npy("logits.npy", logits)), ("rows-sum-2", ctx.npy("rows2.npy", twice)),
              ("rows-sum-0.5", ctx.npy("rows05.npy", half)), ("zeros", ctx.npy("zeros.npy", np.zeros((3, 2, 10, 10), np.float32))),
              ("one-negative", ctx.npy("one_negative.npy", one_negative)), ("last-row-bad", ctx.npy("last_row_bad.npy", last_layer_bad))]
    with ctx.h5("logits.h5") as f:
        f["attentions"] = logits
        f.attrs["patch_grid"] = np.array([3, 3])
    inputs.append(("logits-h5", ctx.path("logits.h5")))
    zip_members(ctx.path("logits.npz"), [("attentions.npy", logits)])
    inputs.append(("logits-npz", ctx.path("logits.npz")))
    commands = [("rollout-npy", ["rollout", "--view", "matrix", F, "-o", "x.npy"]), ("rollout-grid", ["rollout", "--view", "grid", "--grid", "3x3", F, "-o", "x.npy"]),
                ("flow-npy", ["flow", F, "-o", "x.npy"]), ("grid-npy", ["grid", "--grid", "3x3", F, "-o", "x.npy"]),
                ("show-rollout", ["show", "--rollout", F])]
    for iid, path in ctx.pick(inputs, 3):
        for cid, template in ctx.pick(commands, 5):
            argv = [path if x is F else x for x in template] + ["--quiet"]
            # grid reads only the CLS row of the last layer: a bad last row is not its business
            cases.append(Case(cat, "%s/%s" % (iid, cid), argv, checks=[] if iid == "last-row-bad" and cid == "grid-npy" else [refused]))
            if iid in ("logits", "rows-sum-2", "zeros", "last-row-bad"):
                cases.append(Case(cat, "%s/%s/allowed" % (iid, cid), argv + ["--allow-unnormalised"]))
    return cases


def gen_messages(ctx):
    """11. One-token dumps, malformed attributes, unusual argv; each said in one line, never silently ignored."""
    cat, cases = "messages", []
    one = ctx.npy("one_token.npy", np.ones((2, 2, 1, 1), np.float32))
    for c in ALL:
        checks = [succeeded] if c in ("rollout-npy", "flow-npy", "show", "info", "stats", "verify") else []
        argv = command(c, one)
        if c == "rollout-npy":
            argv = ["rollout", "--view", "matrix", one, "-o", "x.npy", "--quiet"]
        cases.append(Case(cat, "one-token/%s" % c, argv, checks=checks))
    grid_attention = ctx.attention(1, 1, 10, 10)
    grids = [("negative", np.array([-3, -3], np.int64)), ("fraction", np.array([2.5, 3.6])), ("text", "3x3"), ("zero", np.array([0, 5], np.int64)),
             ("huge", np.array([2 ** 40, 2 ** 40], np.int64)), ("three", np.array([1, 2, 3], np.int64)), ("empty", np.zeros(0, np.int64)),
             ("uint64-max", np.array([2 ** 64 - 1, 1], np.uint64)), ("nan", np.array([np.nan, 3.0])), ("wrong-product", np.array([2, 2], np.int64))]
    for gid, value in ctx.pick(grids, 3):
        name = "patch_grid_%s.h5" % gid
        with ctx.h5(name) as f:
            f["attentions"] = grid_attention
            f.attrs["patch_grid"] = value
        for c in ctx.pick(["grid-png", "rollout-grid-png", "heads"], 3):
            cases.append(Case(cat, "patch-grid-%s/%s" % (gid, c), command(c, ctx.path(name)),
                              checks=[refused] if c in ("grid-png", "rollout-grid-png") else []))
    prefixes = [("text", "x"), ("negative", np.int64(-1)), ("2^63", np.uint64(2 ** 63)), ("float", 1e300), ("int64-max", np.int64(2 ** 63 - 1)),
                ("array", np.array([1, 1], np.int64)), ("too-many", np.int64(10))]
    for pid, value in ctx.pick(prefixes, 3):
        name = "prefix_%s.h5" % pid
        with ctx.h5(name) as f:
            f["attentions"] = grid_attention
            f.attrs["prefix_tokens"] = value
            f.attrs["patch_grid"] = np.array([3, 3], np.int64)
        for c in ctx.pick(["grid-png", "rollout-grid-png", "heads", "show"], 2):
            cases.append(Case(cat, "prefix-tokens-%s/%s" % (pid, c), command(c, ctx.path(name)),
                              checks=[refused] if c in ("grid-png", "rollout-grid-png") else []))
    extremes = [("uint64-max", np.uint64(2 ** 64 - 1), "18446744073709551615"), ("int64-min", np.int64(-2 ** 63), "-9223372036854775808"),
                ("uint32-max", np.uint32(2 ** 32 - 1), "4294967295"), ("uint64-array", np.array([2 ** 64 - 1, 2 ** 63], np.uint64), "18446744073709551615")]
    for xid, value, text in extremes:
        name = "attr_%s.h5" % xid
        with ctx.h5(name) as f:
            f["attentions"] = ctx.small
            f.attrs["big"] = value
        cases.append(Case(cat, "attribute-%s/info" % xid, ["info", ctx.path(name)], checks=[succeeded, stdout_has(text)]))
    # File names that look like options.
    no_help = lambda r: "printed help" if b"USAGE" in r.stdout + r.stderr or b"OVERVIEW" in r.stdout else None
    for fname in ctx.pick(["-x.h5", "-q.npy", "-o.npy", "--json.npy", "-h.npy"], 3):
        for c in ctx.pick(["stats", "heatmap"], 2):
            argv = [c, fname] + (["-o", "x.png"] if c == "heatmap" else [])
            cases.append(Case(cat, "dash-file-%s/%s" % (fname, c), argv, setup=lambda d, n=fname: shutil.copy(ctx.small_npy, os.path.join(d, n)),
                              checks=[refused, no_help]))
        cases.append(Case(cat, "dash-file-%s/stats-dot-slash" % fname, ["stats", "./" + fname, "--quiet"],
                          setup=lambda d, n=fname: shutil.copy(ctx.small_npy, os.path.join(d, n)), checks=[succeeded]))
    for c in ctx.pick(["stats", "info", "heatmap-npy", "rollout-npy", "tokens"], 3):
        cases.append(Case(cat, "dataset-empty/%s" % c, command(c, ctx.base_npy, "--dataset", ""), checks=[refused]))
        cases.append(Case(cat, "dataset-slash/%s" % c, command(c, ctx.path("attrs_1000.h5") if os.path.exists(ctx.path("attrs_1000.h5")) else ctx.base_npy, "--dataset", "/")))
    # Object-dtype token labels (a pickle that would leave a file if unpickled), and object attention.
    evil = os.path.join(ctx.out, "unpickled")

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch %s" % evil,))
    tokens = np.empty(4, dtype=object)
    tokens[:] = ["[CLS]", "a", Evil(), "c"]
    zip_members(ctx.path("object_tokens.npz"), [("attentions.npy", ctx.attention(1, 1, 4, 4)), ("tokens.npy", tokens)])
    unpickled = lambda r: "a pickle was loaded" if os.path.exists(evil) else None
    cases.append(Case(cat, "object-tokens/tokens", command("tokens", ctx.path("object_tokens.npz")),
                      checks=[unpickled, not_in_output("Traceback"), stderr_has("object")]))
    cases.append(Case(cat, "object-tokens/stats-notes", command("stats", ctx.path("object_tokens.npz"), quiet=False),
                      checks=[succeeded, unpickled, stderr_has("object")]))
    objs = np.empty((1, 1, 2, 2), dtype=object)
    objs[...] = Evil()
    zip_members(ctx.path("object_attention.npz"), [("attentions.npy", objs)])
    np.save(ctx.path("object_attention.npy"), objs, allow_pickle=True)
    for name in ["object_attention.npz", "object_attention.npy"]:
        cases.append(Case(cat, "%s/stats" % name, command("stats", ctx.path(name)), checks=[refused, unpickled]))
    # Q·Kᵀ overflowing float32 from finite q and k.
    zip_members(ctx.path("qk_overflow.npz"), [("q.npy", np.full((1, 1, 4, 2), 1e20, np.float32)), ("k.npy", np.full((1, 1, 4, 2), 1e20, np.float32))])
    for c in ["stats", "verify", "heatmap-npy"]:
        cases.append(Case(cat, "qk-overflow/%s" % c, command(c, ctx.path("qk_overflow.npz")),
                          checks=[refused, stderr_has("overflow"), not_in_output("NaN values in the file")]))
    return cases


CATEGORIES = [("external", gen_external), ("filters", gen_filters), ("strings", gen_strings), ("json", gen_json),
              ("sparse", gen_sparse), ("attributes", gen_attributes), ("costs", gen_costs), ("writes", gen_writes),
              ("signals", gen_signals), ("probabilities", gen_probabilities), ("messages", gen_messages)]


# ---------------------------------------------------------------------------------------------------------------
# The runner.

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\udc80-\udcff]")


def controls(what, data):
    text = data.decode("utf-8", "surrogateescape")
    m = CONTROL.search(text)
    if not m:
        return None
    ch = m.group()
    around = text[max(0, m.start() - 20):m.end() + 20].encode("utf-8", "surrogateescape")
    if "\udc80" <= ch <= "\udcff":
        return "%s holds a byte that is not UTF-8 (0x%02x): %r" % (what, ord(ch) - 0xdc00, around)
    return "%s holds raw U+%04X: %r" % (what, ord(ch), around)


def snapshot(folder):
    """relative path -> (kind, size, digest) of everything under folder, without following links or opening FIFOs."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.fsdecode(os.path.relpath(full, os.fsencode(folder)))
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                digest = None
                if st.st_size <= 64 << 20:
                    with open(full, "rb") as f:
                        digest = hashlib.sha1(f.read()).hexdigest()
                found[rel] = ("file", st.st_size, digest or st.st_mtime_ns)
            elif stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir",)
            else:
                found[rel] = ("other", stat.S_IFMT(st.st_mode))
    return found


def peak_rss_kb(pid):
    """VmHWM: the peak RSS of the process since its exec (0 once it has exited)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Runner:
    def __init__(self, ctx, binary, verbose):
        self.ctx, self.binary, self.verbose = ctx, binary, verbose
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("HDF5_", "NO_COLOR", "COLUMNS", "ATTNINSPECT"))}
        self.env.update({"LANG": "C.UTF-8", "COLUMNS": "80", "HDF5_PLUGIN_PATH": ctx.plugins, "ATTACK_ENV_SECRET": MARKER})
        self.lock = threading.Lock()
        self.done = 0

    def spawn(self, case, folder, log):
        argv = case.argv
        if argv and argv[0] == "@bash":                     # a shell script; $0 is the binary
            argv = ["bash", "-c", argv[1], self.binary]
        else:
            argv = [self.binary] + argv
            if case.stdout == "closed":
                argv = ["bash", "-c", 'exec "$0" "$@" >&-'] + argv
            elif case.stdout == "head":
                argv = ["bash", "-c", 'set -o pipefail; "$0" "$@" | head -c 1 > /dev/null'] + argv
        if SETPRIV:                                         # the child dies with this runner (no orphans if it is killed)
            argv = [SETPRIV, "--pdeathsig", "KILL", "--"] + argv
        argv = [os.fsencode(a) for a in argv]
        env = dict(self.env, ATTACK_PLUGIN_MARKER=log + ".plugin", **case.env)
        out = open({"devfull": "/dev/full", "devnull": "/dev/null"}.get(case.stdout, log + ".out"), "wb")
        err = open(log + ".err", "wb")

        def reset_signals():
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(s, signal.SIG_DFL)
        try:
            process = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                       start_new_session=True, preexec_fn=reset_signals if case.signal else None)
        finally:
            out.close()
            err.close()
        return process

    def wait(self, process, case, folder, result):
        start = time.monotonic()
        deadline = start + case.timeout
        sent = False
        delay = 0.0005
        while True:
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)     # (its ru_maxrss counts the forking Python)
            if pid:
                break
            now = time.monotonic()
            if case.signal and not sent:
                if any(n.startswith(".") and ".tmp-" in n for n in os.listdir(folder)):
                    os.kill(process.pid, case.signal)
                    sent = True
                    result.signal_sent = True
            else:
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
            result.maxrss_kb = max(result.maxrss_kb, peak_rss_kb(process.pid))
            if result.maxrss_kb > MEMORY_KILL_KB and not result.memory_killed:
                result.memory_killed = True
                os.killpg(process.pid, signal.SIGKILL)
            if now > deadline and not result.timed_out:
                result.timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
        try:
            os.killpg(process.pid, signal.SIGKILL)        # leftovers of a shell pipeline
        except OSError:
            pass
        process.returncode = 0                            # reaped here: Popen must not wait for it again
        result.seconds = time.monotonic() - start
        if os.WIFSIGNALED(status):
            result.signal = os.WTERMSIG(status)
        else:
            result.status = os.WEXITSTATUS(status)
        return sent

    def run(self, case):
        folder = os.path.join(self.ctx.out, "cases", "%04d" % case.index)
        log = os.path.join(self.ctx.out, "logs", "%04d" % case.index)
        for attempt in range(5):
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            if case.setup:
                try:
                    case.setup(folder)
                except Exception as e:                    # this script's problem, not the binary's: said, not counted
                    return Result(folder=folder, skip="setup failed: %s: %s" % (type(e).__name__, e))
            for p in (log + ".plugin",):
                if os.path.exists(p):
                    os.remove(p)
            result = Result(folder=folder, before=snapshot(folder))
            result.input_bytes = sum(os.stat(os.path.join(os.fsencode(folder), os.fsencode(a))).st_size for a in case.argv
                                     if isinstance(a, (str, bytes)) and not str(a).startswith("-") and
                                     os.path.isfile(os.path.join(os.fsencode(folder), os.fsencode(a))))
            process = self.spawn(case, folder, log)
            sent = self.wait(process, case, folder, result)
            if case.signal and (not sent or result.status == 0):
                result.skip = "the write ended before the signal"
                continue
            if case.retry_status is not None and result.status == case.retry_status:
                result.skip = "the write ended before the signal"
                continue
            result.skip = None
            break
        result.stdout = open(log + ".out", "rb").read() if os.path.exists(log + ".out") else b""
        result.stderr = open(log + ".err", "rb").read()
        result.after = snapshot(folder)
        if case.teardown:
            case.teardown(folder)
        result.plugin_ran = os.path.exists(log + ".plugin")
        with self.lock:
            self.done += 1
            if self.verbose:
                print("[%d] %s %s: %s %.2fs %d MiB" % (self.done, case.cat, case.id, result.status if result.signal is None else "signal %d" % result.signal,
                                                       result.seconds, result.maxrss_kb >> 10), file=sys.stderr)
        return result


def judge(case, r):
    """The reasons a case failed: the generic checks, then the case's own."""
    if r.skip:
        return []
    why = []
    quiet = "--quiet" in case.argv or "-q" in case.argv
    if r.timed_out:
        why.append("hang: killed after %.0f s" % TIMEOUT)
    elif r.memory_killed:
        why.append("memory: over %d GiB (killed) for %d bytes of input" % (MEMORY_KILL_KB >> 20, r.input_bytes))
    elif r.signal is not None:
        if not (case.signal and r.signal == case.signal):
            why.append("crash: killed by %s" % signal.Signals(r.signal).name)
    elif case.signal:
        if r.status != 128 + case.signal:
            why.append("exit %d after %s, expected %d" % (r.status, signal.Signals(case.signal).name, 128 + case.signal))
    elif r.status not in case.ok_status + ((2,) if case.argv[:1] == ["verify"] else ()):   # verify: 2 = could not check
        why.append("exit status %d: %s" % (r.status, first_line(r.stderr)))
    if r.input_bytes < SMALL_INPUT and r.maxrss_kb > MEMORY_LIMIT_KB and not r.memory_killed:
        why.append("memory: %d MiB for %d bytes of input" % (r.maxrss_kb >> 10, r.input_bytes))
    if case.max_seconds and r.seconds > case.max_seconds and not r.timed_out:
        why.append("slow: %.1f s (limit %.0f s)" % (r.seconds, case.max_seconds))
    # verify's exit 1 with its FAIL lines on stdout and nothing on stderr is its documented report, not an error.
    verify_report = case.argv[:1] == ["verify"] and r.status == 1 and not r.stderr and b"FAIL" in r.stdout
    if quiet and r.status not in (None, 0) and not case.signal and case.stdout != "head" and not r.timed_out and not verify_report:
        lines = r.stderr.decode("utf-8", "replace").rstrip("\n").split("\n") if r.stderr else []
        if not (len(lines) == 1 or (r.status == 64 and len(lines) == 3 and lines[0].startswith("Error:"))):
            why.append("stderr has %d lines with --quiet: %r" % (len(lines), r.stderr[:300]))
    for what, data in (("stdout", r.stdout), ("stderr", r.stderr)):
        reason = controls(what, data)
        if reason:
            why.append(reason)
    if MARKER.encode() in r.stdout or MARKER.encode() in r.stderr:
        why.append("secret: the marker of another file is in the output")
    if r.plugin_ran:
        why.append("plugin: a library in HDF5_PLUGIN_PATH was loaded (its constructor ran)")
    created = [p for p in r.after if p not in r.before and r.after[p][0] != "dir"]
    changed = [p for p in r.after if p in r.before and r.after[p] != r.before[p]]
    temporaries = [p for p in r.after if os.path.basename(p).startswith(".") and ".tmp-" in os.path.basename(p)]
    if temporaries:
        why.append("temporary file left: %r" % temporaries[:3])
    if r.status != 0 and not temporaries:
        if created:
            why.append("output left after a failed run: %r" % created[:3])
        if changed:
            why.append("existing file changed by a failed run: %r" % changed[:3])
    for p in created + changed:
        full = os.path.join(os.fsencode(r.folder), os.fsencode(p))
        if r.after[p][0] != "file" or os.path.getsize(full) > 256 << 20:
            continue
        with open(full, "rb") as f:
            data = f.read()
        if MARKER.encode() in data:
            why.append("secret: the marker of another file is in the output file %r" % p)
        if r.status == 0:
            problem = malformed(p, data)
            if problem:
                why.append(problem)
    for check in case.checks:
        try:
            reason = check(r)
        except Exception as e:                       # a check that cannot run is a failure to look at, not a crash here
            reason = "check raised %s: %s" % (type(e).__name__, e)
        if reason:
            why.append(reason)
    return why


def malformed(name, data):
    try:
        if name.endswith(".npy"):
            np.load(io.BytesIO(data), allow_pickle=False)
        elif name.endswith(".png"):
            if not (data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:].startswith(b"\x00\x00\x00\x00IEND")):
                return "output %s is not a whole PNG" % name
        elif name.endswith(".svg"):
            ElementTree.fromstring(data)
    except Exception as e:
        return "output %s is not well-formed: %s" % (name, str(e)[:120])
    return None


def copy_binary(binary, out):
    """The binary may be rebuilt while we run: wait for it (up to 2 minutes), then use a private copy."""
    for _ in range(120):
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            try:
                target = os.path.join(out, "bin", "attninspect")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(binary, target)
                if subprocess.run([target, "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                    return target
            except OSError:
                pass
        time.sleep(1)
    sys.exit("attack_sweep: %s: no runnable binary" % binary)


def prepare_out(out):
    if os.path.exists(out):
        if os.listdir(out) and not os.path.exists(os.path.join(out, ".attack-sweep")):
            sys.exit("attack_sweep: %s exists and was not made by this script; choose another --out" % out)
        if shutil.which("chattr"):                      # immutable folders a killed run left
            subprocess.run(["chattr", "-R", "-i", os.path.join(out, "cases")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for root, dirs, _ in os.walk(out):              # read-only folders made by the cases
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "cases"))
    os.makedirs(os.path.join(out, "logs"))
    open(os.path.join(out, ".attack-sweep"), "w").close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--out", default="/tmp/attack-sweep")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--quick", action="store_true", help="a few variants of each category")
    parser.add_argument("--jobs", type=int, default=4, help="cases run at once (the timing-sensitive ones run alone)")
    parser.add_argument("--only", action="append", help="only this category (repeatable)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    prepare_out(out)
    binary = copy_binary(os.path.abspath(args.binary), out)
    started = time.monotonic()
    ctx = Context(out, args.seed, args.quick)
    ctx.verbose, ctx.binary = args.verbose, binary
    cases = []
    for name, generate in CATEGORIES:
        if args.only and name not in args.only:
            continue
        t = time.monotonic()
        made = generate(ctx)
        if args.verbose:
            print("%s: %d cases made in %.1f s" % (name, len(made), time.monotonic() - t), file=sys.stderr)
        cases += made
    for i, case in enumerate(cases):
        case.index = i
    if not ctx.plugin_ok:
        print("note: no C compiler: the plugin constructor check is not made", file=sys.stderr)
    runner = Runner(ctx, binary, args.verbose)
    results = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for case, result in zip([c for c in cases if not c.serial], pool.map(runner.run, [c for c in cases if not c.serial])):
            results[case.index] = result
    for case in cases:
        if case.serial:
            results[case.index] = runner.run(case)
    # The inputs folder must hold only what this script put there.
    leftovers = [n for n in os.listdir(ctx.inputs) if n.startswith(".") and ".tmp-" in n]
    table, failed_lines = {}, []
    for case in cases:
        reasons = judge(case, results[case.index])
        row = table.setdefault(case.cat, [0, 0, 0])
        row[0] += 1
        if results[case.index].skip:
            row[2] += 1
            if args.verbose:
                print("SKIP %s %s: %s" % (case.cat, case.id, results[case.index].skip), file=sys.stderr)
        if reasons:
            row[1] += 1
            failed_lines.append("FAIL %s %s: %s" % (case.cat, printable(case.id), "; ".join(printable(x) for x in reasons)))
    if leftovers:
        failed_lines.append("FAIL writes inputs-folder: temporary files beside the inputs: %r" % leftovers[:3])
        table.setdefault("writes", [0, 0, 0])[1] += 1
    for line in failed_lines:
        print(line)
    print()
    print("%-14s %6s %6s %6s" % ("category", "tried", "failed", "skipped"))
    total = [0, 0, 0]
    for name, _ in CATEGORIES:
        if name in table:
            row = table[name]
            print("%-14s %6d %6d %6d" % (name, row[0], row[1], row[2]))
            total = [t + x for t, x in zip(total, row)]
    print("%-14s %6d %6d %6d" % ("total", total[0], total[1], total[2]))
    print("(%s, %.0f s, seed %d%s)" % (args.binary, time.monotonic() - started, args.seed, ", quick" if args.quick else ""))
    sys.exit(1 if total[1] else 0)


def printable(text):
    """Case ids and reasons may hold what the cases are made of: show them escaped, on one line."""
    return "".join(c if c.isprintable() and not 0x202a <= ord(c) <= 0x2069 else
                   "\\x%02x" % ord(c) if ord(c) < 0x100 else "\\u%04x" % ord(c) for c in text)


if __name__ == "__main__":
    main()
