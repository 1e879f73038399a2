#!/usr/bin/env python3
"""The executable README: every example in README.md and exporters/README.md is run, and what the README shows is
compared with what the binary does. Run by `make check-readme`, which .ci/run calls; standard library only.

What is checked:
  1. Commands. In every fenced block that is not Python, each line starting with `attninspect ` or `$ attninspect `
     is run (through bash when it uses `&&`, `|`, `;` or `>`), in a scratch folder holding the stand-ins of
     TestData/readme (the files the README names without shipping them: dump.h5, padded.h5, ...) and a link to
     TestData. It must exit 0, or N when the line ends with the comment `# exits N`. Other lines (`make ...`,
     `python3 Benchmarks/...`) are listed as not run: CI runs make's targets itself, and benchmarks take minutes;
     so is a line that says `# not run` (a recipe for a tool CI does not have: GNU parallel, Slurm).
  2. Output. Lines after a `$ attninspect ...` line, up to the next `$` line or the end of the block, are its
     output: stdout, or stderr when the command prints nothing on stdout (an error, notes). A line `...` stands for any number of lines. Lines
     are compared with runs of spaces collapsed (a command whose comment says `keys` shows a skeleton of its JSON
     output instead: the names shown must be the keys printed); numbers with a decimal point may differ by one unit of their last
     printed digit (the last digit of a rounding can differ between CPUs' kernels), everything else must be equal.
  3. Options. The README's table "Options of each command" and its list of input options must name exactly the
     long options each command's `--help` lists, and every subcommand of `attninspect --help` must have a row.
  4. The tour's Python snippet (the ```python block whose first line is `# tour.py`) must be byte for byte
     TestData/readme/tour.py, the script that made TestData/readme/tour.h5 on which the tour's commands run.
  5. Python snippets of exporters/README.md: every call of a function of exporters/attninspect_export.py passes
     only keywords that the function takes.
  6. The pictures in docs/pictures, by scripts/readme_pictures.py (byte for byte).

Usage: check_readme.py [--bin PATH]   (from the repository root)
"""
import argparse
import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

from readme_pictures import scratch_folder

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SHELL = re.compile(r"&&|[|;>]")
FENCE = re.compile(r"^```(\S*)\s*$")


def blocks(path):
    """(first line number, language, lines) of each fenced block."""
    found, lines = [], open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            found.append((i + 2, m.group(1), lines[i + 1:j]))
            i = j
        i += 1
    return found


def split_comment(command):
    """The command without its trailing `# ...` comment, the exit status the comment asks for (`exits N`,
    default 0), and whether the comment says the output shown is a skeleton of JSON keys (`its keys:`)."""
    quote = None
    for k, c in enumerate(command):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (k == 0 or command[k - 1].isspace()):
            comment = command[k + 1:]
            m = re.search(r"\bexits (\d+)\b", comment)
            return command[:k].rstrip(), int(m.group(1)) if m else 0, "its keys:" in comment
    return command.rstrip(), 0, False


def numbers_match(expected, actual):
    """One shown number against the printed one: equal, or written the same way (as many decimals, an exponent or
    none) and within one unit of the last digit, for numbers with a decimal point."""
    if expected == actual:
        return True
    shape = re.compile(r"\d")
    if "." not in expected or shape.sub("0", expected.lstrip("+-")) != shape.sub("0", actual.lstrip("+-")):
        return False
    mantissa, _, exponent = expected.lower().partition("e")
    unit = 10.0 ** ((int(exponent) if exponent else 0) - len(mantissa.split(".")[1]))
    return abs(float(expected) - float(actual)) <= unit * 1.0001


def line_matches(expected, actual):
    e, a = " ".join(expected.split()), " ".join(actual.split())
    if NUMBER.sub("#", e) != NUMBER.sub("#", a):
        return False
    return all(numbers_match(x, y) for x, y in zip(NUMBER.findall(e), NUMBER.findall(a)))


def output_matches(expected, actual):
    """Whether the shown lines match the printed ones, `...` standing for any number of lines."""
    reachable = {0}                                    # printed lines consumed so far, over the shown lines
    for line in expected:
        if line.strip() == "...":
            reachable = set(range(min(reachable), len(actual) + 1)) if reachable else set()
        else:
            reachable = {j + 1 for j in reachable if j < len(actual) and line_matches(line, actual[j])}
    return len(actual) in reachable


def first_difference(expected, actual):
    for k, line in enumerate(expected):
        if line.strip() == "...":
            return "(after an elision)"
        if k >= len(actual):
            return f"the README shows {line!r}, the binary printed nothing more"
        if not line_matches(line, actual[k]):
            return f"the README shows {line!r}, the binary printed {actual[k]!r}"
    return f"the binary printed more: {actual[len(expected)]!r}" if len(actual) > len(expected) else ""


class Runner:
    """Runs the commands of one block in a fresh scratch folder (copies of the stand-ins, a link to TestData)."""

    def __init__(self, binary, scratch):
        self.scratch = scratch
        self.env = scratch_folder(scratch, binary)

    def run(self, command):
        if "||" in command:
            raise ValueError("`||` hides a failure: the README's examples must not use it")
        shell = bool(SHELL.search(command))
        argv = ["bash", "-o", "pipefail", "-c", command] if shell else shlex.split(command)
        r = subprocess.run(argv, cwd=self.scratch, env=self.env, capture_output=True, text=True, timeout=300)
        return r.returncode, r.stdout.splitlines(), r.stderr.splitlines()


def skeleton_paths(text):
    """The key paths of a JSON skeleton as the README writes it: `{"a", "b": {"c"}, "d": [{"e"}]}`."""
    as_json = re.sub(r'"(\w+)"(?!\s*:)', r'"\1": null', text)
    as_json = re.sub(r"\[\s*\{", "[{", as_json)
    return key_paths(json.loads(as_json))


def key_paths(value, parent=""):
    """Every key of a JSON document with the keys above it (`records/layer`); a list of objects is read through
    its first element."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            found |= {parent + key} | key_paths(inner, parent + key + "/")
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        found |= key_paths(value[0], parent)
    return found


def check_commands(path, binary, failures, skipped):
    ran = 0
    for start, language, lines in blocks(path):
        if language == "python":
            continue
        if not any(re.match(r"(\$ )?attninspect ", line) for line in lines):
            continue                                   # not a block of commands: a schema, a layout, make lines
        with tempfile.TemporaryDirectory() as scratch:
            ran += check_block(path, start, lines, Runner(binary, scratch), failures, skipped)
    return ran


def check_block(path, start, lines, runner, failures, skipped):
    ran, k = 0, 0
    while k < len(lines):
        line, number = lines[k], start + k
        k += 1
        transcript = line.startswith("$ ")
        text = line[2:] if transcript else line
        if not text.startswith("attninspect ") or "# not run" in text:
            if re.match(r"(make|python3) ", text) or "# not run" in text:
                skipped.append(f"{path}:{number}: {text.strip()}")
            elif "attninspect" in text:
                failures.append(f"{path}:{number}: a line naming attninspect that is neither run nor output: {text!r}")
            continue
        command, status, skeleton = split_comment(text)
        shown = []
        if transcript:
            while k < len(lines) and not lines[k].startswith("$ "):
                shown.append(lines[k])
                k += 1
        where = f"{path}:{number}: `{command}`"
        try:
            code, out, err = runner.run(command)
        except ValueError as e:
            failures.append(f"{where}: {e}")
            continue
        ran += 1
        if code != status:
            detail = (err or out or [""])[-1]
            failures.append(f"{where} exited {code}, expected {status}: {detail}")
            continue
        if transcript and skeleton:
            try:
                printed, listed = key_paths(json.loads("\n".join(out))), skeleton_paths("\n".join(shown))
            except ValueError as e:
                failures.append(f"{where}: the output or the skeleton shown is not JSON: {e}")
                continue
            if listed != printed:
                failures.append(f"{where}: the keys shown differ from the output's: only shown "
                                f"{sorted(listed - printed)}, only printed {sorted(printed - listed)}")
        elif transcript:
            printed = out or err
            if not output_matches(shown, printed):
                failures.append(f"{where}: output differs: {first_difference(shown, printed)}")
    return ran


def help_options(binary, command):
    text = subprocess.run([binary, command, "--help"], capture_output=True, text=True).stdout
    section = text.split("OPTIONS:", 1)[1] if "OPTIONS:" in text else ""
    found = set()
    for line in section.splitlines():
        m = re.match(r"^  (?:(-\w), )?(--[\w-]+(?:/--[\w-]+)?)", line)
        if m:
            found.update(m.group(2).split("/"))
            if m.group(1):
                found.add(m.group(1))
    return found - {"--help", "--version", "-h"}


def spans(text):
    """The options named in the code spans of `text`: long ones, and short ones such as `-o`."""
    return {o for span in re.findall(r"`([^`]+)`", text)
            for o in re.findall(r"(?<![\w-])(--[a-z][\w-]*|-[a-zA-Z](?![\w-]))", span)}


def check_options(binary, readme, failures):
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"^\*\*Input options\*\*.*?(?=\n\n)", text, re.M | re.S)
    if not m:
        failures.append(f"{readme}: no paragraph starting **Input options**")
        return 0
    common = spans(m.group(0))
    table = re.search(r"^### Options of each command\n(.*?)(?=^#)", text, re.M | re.S)
    if not table:
        failures.append(f"{readme}: no section '### Options of each command'")
        return 0
    rows = {}
    for line in table.group(1).splitlines():
        row = re.match(r"^\| `(\w+)` \|(.*)\|\s*$", line)
        if row:
            if row.group(1) in rows:
                failures.append(f"{readme}: the options table has two rows for `{row.group(1)}`")
            rows[row.group(1)] = (spans(row.group(2)), "no input options" in row.group(2))
    top = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    commands = [c for c in re.findall(r"^  (\w+)  ", top.split("SUBCOMMANDS:", 1)[1], re.M) if c != "help"]
    for command in sorted(set(rows) - set(commands)):
        failures.append(f"{readme}: the options table has a row for `{command}`, which `attninspect --help` lacks")
    for command in commands:
        if command not in rows:
            failures.append(f"{readme}: the options table has no row for `{command}`")
            continue
        own, alone = rows[command]
        documented = (own | (set() if alone else common)) - {"--help", "--version", "-h"}
        actual = help_options(binary, command)
        for option in sorted(actual - documented):
            failures.append(f"{readme}: `{command} --help` lists {option}, the README's options table does not")
        for option in sorted(documented - actual):
            failures.append(f"{readme}: the README's options table gives `{command}` {option}, which its --help "
                            "does not list")
    return len(commands)


def check_tour(readme, failures):
    tour = [lines for _, language, lines in blocks(readme) if language == "python" and lines[:1]
            and lines[0].startswith("# tour.py")]
    script = open("TestData/readme/tour.py", encoding="utf-8").read().splitlines()
    if len(tour) != 1:
        failures.append(f"{readme}: expected one ```python block starting `# tour.py`, found {len(tour)}")
    elif tour[0] != script:
        failures.append(f"{readme}: the tour's snippet differs from TestData/readme/tour.py (the script that made "
                        "tour.h5): change both")


def check_exporter_snippets(readme, failures):
    """Each call of an exporter function (write_dump, export_*, timm_attention) names one that exists and passes
    keywords it takes; an adapter's **write_options go to write_dump, so they are checked against write_dump's."""
    module = ast.parse(open("exporters/attninspect_export.py", encoding="utf-8").read())
    functions = {f.name: f for f in module.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}

    def parameters(f):
        names = {a.arg for a in f.args.args + f.args.kwonlyargs}
        return names | (parameters(functions["write_dump"]) if f.args.kwarg and f.name != "write_dump" else set())

    calls = 0
    for start, language, lines in blocks(readme):
        if language != "python":
            continue
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError as e:
            failures.append(f"{readme}:{start + (e.lineno or 1) - 1}: the snippet is not valid Python: {e.msg}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "attninspect_export":
                for alias in node.names:
                    if alias.name not in functions:
                        failures.append(f"{readme}:{start + node.lineno - 1}: attninspect_export has no "
                                        f"{alias.name}")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            name, line = node.func.id, start + node.lineno - 1
            if name not in functions:
                if name.startswith("export_") or name in ("write_dump", "timm_attention"):
                    failures.append(f"{readme}:{line}: attninspect_export has no {name}()")
                continue
            calls += 1
            for keyword in node.keywords:
                if keyword.arg and keyword.arg not in parameters(functions[name]):
                    failures.append(f"{readme}:{line}: {name}() takes no keyword {keyword.arg!r}")
    return calls


def git_status():
    r = subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "TestData", "docs", "exporters"],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/attninspect")
    args = ap.parse_args()
    failures, skipped = [], []
    before = git_status()
    ran = sum(check_commands(p, args.bin, failures, skipped) for p in ["README.md", "exporters/README.md"])
    if git_status() != before:
        failures.append("running the examples changed the checkout (git status differs): an example writes into it")
    commands = check_options(args.bin, "README.md", failures)
    check_tour("README.md", failures)
    calls = check_exporter_snippets("exporters/README.md", failures)
    pictures = subprocess.run([sys.executable, "scripts/readme_pictures.py", "check", "--bin", args.bin])
    for line in failures:
        print(line, file=sys.stderr)
    for line in skipped:
        print(f"not run: {line}")
    print(f"README: {ran} commands run, {commands} commands' options checked against --help, {calls} exporter "
          f"calls checked; {len(failures)} failures")
    return 1 if failures or pictures.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
