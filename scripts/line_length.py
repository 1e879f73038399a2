#!/usr/bin/env python3
"""Fails when a Swift source line is longer than the limit (in characters, not bytes), naming each one.

swift-format's lint wraps what it can but does not report a line it cannot break (a long string literal);
this reports those too. Usage: line_length.py LIMIT PATH... (directories are searched for *.swift)."""
import os
import sys

limit = int(sys.argv[1])
found = 0
for root in sys.argv[2:]:
    paths = [root] if os.path.isfile(root) else sorted(
        os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".swift"))
    for path in paths:
        with open(path, encoding="utf-8") as text:
            for number, line in enumerate(text, 1):
                if len(line.rstrip("\n")) > limit:
                    found += 1
                    print(f"{path}:{number}: {len(line.rstrip())} characters, more than {limit}", file=sys.stderr)
sys.exit(1 if found else 0)
