#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""House style, checked: every C/C++ file is clang-format clean (.clang-format at the top), every
source file carries an SPDX licence line, and the project spells "signaling" one way."""
import os
import re
import subprocess
import sys

root = os.environ.get("POINTCAST_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(root)

CXX = (".c", ".cpp", ".h", ".hpp", ".cc")
SCRIPTS = (".js", ".mjs", ".py", ".sh")
NAMED = ("meson.build", "meson_options.txt", "pointcast", "Dockerfile")


def tracked():
    if os.path.isdir(".git") or os.path.isfile(".git"):
        out = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True)
        return [f for f in out.stdout.decode().split("\0") if f]
    files = []
    for d, dirs, names in os.walk("."):
        dirs[:] = [x for x in dirs if not x.startswith((".", "build")) and x != "node_modules"]
        files += [os.path.relpath(os.path.join(d, n)) for n in names]
    return files


files = [f for f in tracked() if "node_modules" not in f and os.path.isfile(f)]
problems = []

sources = [f for f in files if f.endswith(CXX + SCRIPTS) or os.path.basename(f) in NAMED]
for f in sources:
    with open(f, encoding="utf-8", errors="replace") as fh:
        head = fh.read(400)
    if "SPDX-License-Identifier:" not in head:
        problems.append(f"{f}: no SPDX-License-Identifier line at the top")

spelling = re.compile(r"signalling", re.IGNORECASE)
for f in sources:
    if f == "tests/style/check_style.py":
        continue
    with open(f, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if spelling.search(line):
                problems.append(f"{f}:{n}: spelled 'signalling' (the project writes 'signaling')")

cxx = [f for f in files if f.endswith(CXX)]
res = subprocess.run(["clang-format", "--dry-run", "--Werror", "--style=file"] + cxx,
                     capture_output=True, text=True)
if res.returncode != 0:
    bad = sorted({m.group(1) for m in re.finditer(r"^(\S+?):\d+:\d+: error", res.stderr, re.M)})
    for f in bad:
        problems.append(f"{f}: not clang-format clean (run: clang-format -i {f})")
    if not bad:
        problems.append("clang-format failed: " + res.stderr.strip()[:500])

print(f"checked {len(sources)} source files, {len(cxx)} C/C++ files")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
