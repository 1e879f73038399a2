#!/usr/bin/env python3
"""Time attninspect against the numpy/h5py baseline (baseline.py) on the dumps of make_dumps.py.

usage: run.py [--dir OUTDIR] [--sizes small,medium,large] [--runs N] [--bin PATH]
              [--commands stats,rollout,qk] [--containers npy,h5,h5-gzip] [--results NAME]

For every dump (size x container) and command: one untimed warm-up run of each program (warms the
page cache and produces the outputs that are compared), then N timed runs alternating
attninspect, baseline, attninspect, baseline, ... Every run is wrapped in `/usr/bin/time -v`, which
gives the wall time, the user and system CPU time and the peak RSS ("Maximum resident set size").
The median of each is reported. speed-up = median baseline wall / median attninspect wall.

Agreement (from the warm-up outputs): stats and qk, the largest |difference| of the entropy over all
heads (and of every other field); rollout, the largest |difference| between the two matrices.

The Markdown table goes to stdout and to OUTDIR/results.md; every single measurement goes to
OUTDIR/results.json; outputs and /usr/bin/time reports of each run are in OUTDIR/runs/.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = os.path.join(HERE, "baseline.py")

# size -> list of (container label, attention file, q/k file)
DUMPS = {
    "small": [("npy", "small_f32.npy", "small_qk.npz")],
    "medium": [("npy", "medium_f16.npy", "medium_qk.npz")],
    "large": [("npy", "large_f16.npy", "large_qk.npz"),
              ("h5", "large_f16.h5", "large_f16.h5"),
              ("h5-gzip", "large_f16_gzip.h5", "large_f16_gzip.h5")],
}
SHAPES = {"small": "12×12×197² f32", "medium": "24×16×512² f16", "large": "32×32×1024² f16"}
COMMANDS = ["stats", "rollout", "qk"]
COMMAND_LABEL = {"stats": "stats", "rollout": "rollout", "qk": "stats from Q/K"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def ensure_time():
    if os.path.exists("/usr/bin/time"):
        return
    log("/usr/bin/time is missing: installing the Debian package `time`")
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(["apt-get", "install", "-y", "time"], check=True)


def parse_time_v(text):
    def grab(pattern):
        m = re.search(pattern, text)
        if not m:
            raise ValueError(f"cannot find {pattern!r} in /usr/bin/time output:\n{text}")
        return m.group(1)

    wall_s = grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
    parts = [float(p) for p in wall_s.split(":")]
    wall = 0.0
    for p in parts:
        wall = wall * 60 + p
    user = float(grab(r"User time \(seconds\): (\S+)"))
    sys_ = float(grab(r"System time \(seconds\): (\S+)"))
    rss_kb = int(grab(r"Maximum resident set size \(kbytes\): (\d+)"))
    status = int(grab(r"Exit status: (\d+)")) if "Exit status" in text else None
    return {"wall": wall, "user": user, "sys": sys_, "cpu": user + sys_, "rss_mib": rss_kb / 1024.0,
            "exit_status": status}


def run_once(cmd, tag, rundir, env=None):
    """Run cmd under /usr/bin/time -v; stdout to rundir/tag.out, stderr to rundir/tag.err; env: extra variables."""
    tfile = os.path.join(rundir, tag + ".time")
    out = os.path.join(rundir, tag + ".out")
    err = os.path.join(rundir, tag + ".err")
    full = ["/usr/bin/time", "-v", "-o", tfile] + cmd
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        p = subprocess.run(full, stdout=fo, stderr=fe, env=dict(os.environ, **env) if env else None)
        t1 = time.perf_counter()
    with open(tfile) as f:
        meas = parse_time_v(f.read())
    meas["wall_harness"] = t1 - t0          # perf_counter around /usr/bin/time (µs resolution)
    meas["returncode"] = p.returncode
    with open(err, "rb") as f:
        meas["stderr"] = f.read().decode("utf-8", "replace").strip()
    meas["stdout_file"] = out
    return meas


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()[:16]


def compare_stats(fa, fb):
    with open(fa) as f:
        a = json.load(f)
    with open(fb) as f:
        b = json.load(f)
    ra = {(r["layer"], r["head"]): r for r in a["records"]}
    rb = {(r["layer"], r["head"]): r for r in b["records"]}
    if set(ra) != set(rb):
        return {"ok": False, "text": f"different (layer, head) sets: {len(ra)} vs {len(rb)} records"}
    fields = {}
    for key in a["records"][0]:
        if key in ("layer", "head") or key not in b["records"][0]:
            continue  # a field only one side reports is not compared
        worst = 0.0
        for lh in ra:
            x, y = ra[lh].get(key), rb[lh].get(key)
            if x is None or y is None:
                if x is not y:
                    worst = float("inf")
                continue
            worst = max(worst, abs(float(x) - float(y)))
        fields[key] = worst
    ent = fields["entropy"]
    others = {k: v for k, v in fields.items() if k != "entropy"}
    wk = max(others, key=others.get)
    return {"ok": True, "entropy_max_abs_diff": ent, "fields": fields, "heads": len(ra),
            "text": f"entropy max\\|Δ\\| {ent:.1e} ({len(ra)} heads); worst other field {wk} {others[wk]:.1e}"}


def compare_rollout(fa, fb):
    a = np.load(fa)
    b = np.load(fb)
    if a.shape != b.shape:
        return {"ok": False, "text": f"shapes differ: {a.shape} vs {b.shape}"}
    d = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    rel = d / float(np.max(np.abs(b)))
    return {"ok": True, "matrix_max_abs_diff": d, "max_abs_value": float(np.max(np.abs(b))),
            "text": f"R max\\|Δ\\| {d:.1e} (max\\|R\\| {float(np.max(np.abs(b))):.1e}, rel {rel:.1e})"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/attninspect-bench",
                    help="where make_dumps.py wrote the dumps; results go here too")
    ap.add_argument("--sizes", default="small,medium,large")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each program per cell (default 5)")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "release", "attninspect"))
    ap.add_argument("--commands", default=",".join(COMMANDS), help="subset of stats,rollout,qk")
    ap.add_argument("--containers", default="npy,h5,h5-gzip",
                    help="subset of npy,h5,h5-gzip (h5 and h5-gzip exist only for the large size)")
    ap.add_argument("--results", default="results",
                    help="base name of the reports in OUTDIR: NAME.md and NAME.json (default results)")
    ap.add_argument("--python", default=sys.executable, help="the Python that runs baseline.py")
    ap.add_argument("--baseline-threads", default="1",
                    help="OPENBLAS_NUM_THREADS and OMP_NUM_THREADS for the baseline (default 1, as numpy with "
                         "Debian's serial OpenBLAS runs; 'default' leaves them as they are)")
    args = ap.parse_args()
    baseline_env = None if args.baseline_threads == "default" else \
        {"OPENBLAS_NUM_THREADS": args.baseline_threads, "OMP_NUM_THREADS": args.baseline_threads}

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    for s in sizes:
        if s not in DUMPS:
            sys.exit(f"run.py: unknown size {s!r}")
    containers = [c.strip() for c in args.containers.split(",") if c.strip()]
    for c in containers:
        if c not in ("npy", "h5", "h5-gzip"):
            sys.exit(f"run.py: unknown container {c!r}")
    for c in commands:
        if c not in COMMANDS:
            sys.exit(f"run.py: unknown command {c!r}")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"run.py: {args.bin} is not an executable")
    ensure_time()
    rundir = os.path.join(args.dir, "runs")
    os.makedirs(rundir, exist_ok=True)

    bin_hash0 = sha256(args.bin)
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(), "cpu": cpu, "nproc": os.cpu_count(),
        "attninspect": args.bin, "attninspect_version": version, "attninspect_sha256_16": bin_hash0,
        "python": sys.version.split()[0], "numpy": np.__version__,
    }
    env["baseline_threads"] = args.baseline_threads
    probe = subprocess.run([args.python, "-c", "import numpy; print(open('/proc/self/maps').read())"],
                           capture_output=True, text=True)
    blas = sorted({os.path.realpath(line.split()[-1]) for line in probe.stdout.splitlines()
                   if re.search(r"/lib(open)?blas[^/]*\.so", line)})
    env["numpy_blas"] = ", ".join(blas) or "unknown"
    try:
        import h5py
        env["h5py"] = h5py.__version__
        env["h5py_hdf5"] = h5py.version.hdf5_version
    except ImportError:
        pass

    cells = []
    failures = []
    for size in sizes:
        for container, attn_file, qk_file in DUMPS[size]:
            if container not in containers:
                continue
            for cmdname in commands:
                fname = qk_file if cmdname == "qk" else attn_file
                path = os.path.join(args.dir, fname)
                cell = {"size": size, "container": container, "command": cmdname, "file": path}
                cells.append(cell)
                if not os.path.exists(path):
                    cell["skipped"] = f"{path} is missing (run make_dumps.py --sizes {size})"
                    log(f"skip: {cell['skipped']}")
                    continue
                stem = f"{size}_{container.replace(' ', '_')}_{cmdname}"
                if cmdname == "stats":
                    a_cmd = [args.bin, "stats", path, "--json"]
                    b_cmd = [args.python, BASELINE, "stats", path]
                elif cmdname == "qk":
                    a_cmd = [args.bin, "stats", path, "--json", "--from-qk"]
                    b_cmd = [args.python, BASELINE, "qk", path]
                else:
                    a_out = os.path.join(rundir, stem + "_attninspect.npy")
                    b_out = os.path.join(rundir, stem + "_baseline.npy")
                    a_cmd = [args.bin, "rollout", path, "-o", a_out, "--view", "matrix"]
                    b_cmd = [args.python, BASELINE, "rollout", path, "--out", b_out]
                cell["attninspect_cmd"] = shlex.join(a_cmd)
                cell["baseline_cmd"] = shlex.join(b_cmd)
                log(f"== {size} {container} {cmdname}: {fname}")

                # warm-up (untimed), also the outputs compared for agreement
                wa = run_once(a_cmd, stem + "_attninspect_warmup", rundir)
                wb = run_once(b_cmd, stem + "_baseline_warmup", rundir, baseline_env)
                broken = False
                for who, w, c in (("attninspect", wa, a_cmd), ("baseline", wb, b_cmd)):
                    if w["returncode"] != 0:
                        broken = True
                        failures.append({"cell": f"{size} {container} {cmdname}", "program": who,
                                         "command": shlex.join(c), "exit": w["returncode"],
                                         "stderr": w["stderr"]})
                        cell[who + "_failed"] = {"exit": w["returncode"], "stderr": w["stderr"]}
                        log(f"   {who} FAILED (exit {w['returncode']}): {shlex.join(c)}\n   {w['stderr']}")
                if broken:
                    continue
                if cmdname == "rollout":
                    cell["agreement"] = compare_rollout(a_out, b_out)
                else:
                    cell["agreement"] = compare_stats(wa["stdout_file"], wb["stdout_file"])
                log(f"   agreement: {cell['agreement']['text'].replace(chr(92), '')}")

                runs = {"attninspect": [], "baseline": []}
                for i in range(args.runs):
                    for who, c in (("attninspect", a_cmd), ("baseline", b_cmd)):
                        m = run_once(c, f"{stem}_{who}_run{i}", rundir, baseline_env if who == "baseline" else None)
                        if m["returncode"] != 0:
                            failures.append({"cell": f"{size} {container} {cmdname}", "program": who,
                                             "command": shlex.join(c), "exit": m["returncode"],
                                             "stderr": m["stderr"], "run": i})
                        runs[who].append({k: v for k, v in m.items() if k != "stdout_file"})
                        log(f"   run {i + 1}/{args.runs} {who:11s} wall {m['wall']:.2f} s "
                            f"(harness {m['wall_harness']:.3f} s) cpu {m['cpu']:.2f} s "
                            f"rss {m['rss_mib']:.0f} MiB")
                cell["runs"] = runs
                med = {}
                for who in runs:
                    ok = [r for r in runs[who] if r["returncode"] == 0]
                    if ok:
                        med[who] = {k: statistics.median(r[k] for r in ok)
                                    for k in ("wall", "wall_harness", "cpu", "rss_mib")}
                cell["median"] = med

    bin_hash1 = sha256(args.bin)
    env["attninspect_sha256_16_at_end"] = bin_hash1

    # ------------------------------------------------------------------------------- report
    lines = []
    lines.append(f"# attninspect benchmark ({env['date']})")
    lines.append("")
    lines.append(f"- machine: {env['cpu']} × {env['nproc']} CPUs, {env['host']}")
    lines.append(f"- attninspect: `{args.bin}` ({version}, sha256 {bin_hash0}…)")
    if bin_hash1 != bin_hash0:
        lines.append(f"- **warning: the binary changed during the benchmark** (sha256 at end {bin_hash1}…); "
                     "cells may mix two builds")
    lines.append(f"- baseline: `{BASELINE}` on Python {env['python']}, numpy {env['numpy']}"
                 + (f", h5py {env.get('h5py')} (HDF5 {env.get('h5py_hdf5')})" if "h5py" in env else "")
                 + f"; numpy's BLAS {env['numpy_blas']}, "
                 + ("its threads as the environment sets them" if args.baseline_threads == "default"
                    else f"OPENBLAS_NUM_THREADS=OMP_NUM_THREADS={args.baseline_threads}"))
    lines.append(f"- {args.runs} timed runs of each program per cell, alternating, after one untimed warm-up "
                 "run of each (warm page cache); medians of `/usr/bin/time -v` wall time, user+sys CPU time "
                 "and maximum resident set size. speed-up = baseline wall / attninspect wall "
                 "(from the harness's own µs timer around each run; `/usr/bin/time` reports wall in 10 ms steps).")
    lines.append("")
    lines.append("| dump | command | attninspect wall / CPU / RSS | baseline wall / CPU / RSS | speed-up | agreement |")
    lines.append("| --- | --- | --- | --- | --- | --- |")

    def fmt(m):
        return f"{m['wall']:.2f} s / {m['cpu']:.2f} s / {m['rss_mib']:.0f} MiB"

    for c in cells:
        dump = f"{c['size']} {SHAPES[c['size']]} `{os.path.basename(c['file'])}`"
        if c["container"] != "npy":
            dump += f" ({c['container']})"
        label = COMMAND_LABEL[c["command"]]
        if "skipped" in c:
            lines.append(f"| {dump} | {label} | skipped: file missing | | | |")
            continue
        if "attninspect_failed" in c or "baseline_failed" in c:
            fa = "FAILED (see below)" if "attninspect_failed" in c else ""
            fb = "FAILED (see below)" if "baseline_failed" in c else ""
            lines.append(f"| {dump} | {label} | {fa} | {fb} | | |")
            continue
        med = c["median"]
        ma, mb = med.get("attninspect"), med.get("baseline")
        sa = fmt(ma) if ma else "FAILED"
        sb = fmt(mb) if mb else "FAILED"
        sp = ""
        if ma and mb and ma["wall_harness"] > 0:
            sp = f"{mb['wall_harness'] / ma['wall_harness']:.1f}×"
        lines.append(f"| {dump} | {label} | {sa} | {sb} | {sp} | {c['agreement']['text']} |")

    if failures:
        lines.append("")
        lines.append("## Failures")
        lines.append("")
        for f in failures:
            lines.append(f"- {f['cell']}, {f['program']} exited {f['exit']}:")
            lines.append(f"  ```\n  $ {f['command']}\n  {f['stderr']}\n  ```")
    lines.append("")
    lines.append("Commands timed (per cell):")
    lines.append("")
    for c in cells:
        if "attninspect_cmd" in c:
            lines.append(f"- `{c['attninspect_cmd']}`  vs  `{c['baseline_cmd']}`")
    text = "\n".join(lines) + "\n"

    with open(os.path.join(args.dir, args.results + ".md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.dir, args.results + ".json"), "w") as f:
        json.dump({"env": env, "runs_per_cell": args.runs, "cells": cells, "failures": failures}, f, indent=1)
    sys.stdout.write(text)
    log(f"wrote {os.path.join(args.dir, args.results)}.md and .json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
