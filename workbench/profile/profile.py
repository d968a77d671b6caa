#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn tcg_profile's counts into a per-function profile of the C and the Rust
PAGEMAP_SCAN: guest instructions per page scanned (and per call), function by
function, side by side.

    profile.py COUNTS SYSTEM_MAP PAGES_PER_CALL_SET [--top N] [--per NAME=DIV]

PAGES is the number of pages one scan covers times the number of scans of
each implementation (the benchmark's rounds), so that the figures compare with
make bench's "instructions per page"."""
import argparse
import bisect
import collections
import re
import shutil
import subprocess
import sys


def load_symbols(path):
    addrs, names = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[1] in "tTwW":
                addrs.append(int(parts[0], 16))
                names.append(parts[2])
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def demangle(names):
    tool = shutil.which("llvm-cxxfilt-22") or shutil.which("llvm-cxxfilt")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return dict(zip(names, out))


def short(name):
    """Drops the crate hashes and generic paths that make Rust names unreadable."""
    name = re.sub(r"\[[0-9a-f]{16}\]", "", name)
    name = re.sub(r"kernel::mm::pagewalk::", "", name)
    name = re.sub(r"pagemap_scan::", "", name)
    return name if len(name) <= 90 else name[:87] + "..."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("counts")
    ap.add_argument("system_map")
    ap.add_argument("pages", type=int, help="pages scanned by each implementation in all")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--per", default="",
                    help="NAME=DIV: also give instructions per NAME (pages / DIV)")
    args = ap.parse_args()

    addrs, names = load_symbols(args.system_map)
    per_fn = collections.defaultdict(lambda: collections.Counter())
    total = collections.Counter()
    calls = {}
    with open(args.counts) as f:
        for line in f:
            kind, a, b = line.split()
            if kind == "calls":
                calls[a] = int(b)
                continue
            vaddr, n = int(a, 16), int(b)
            i = bisect.bisect_right(addrs, vaddr) - 1
            fn = names[i] if i >= 0 else "?"
            per_fn[fn][kind] += n
            total[kind] += n
    readable = demangle(list(per_fn))
    pages = args.pages
    per_name, div = None, 1
    if args.per:
        per_name, d = args.per.split("=")
        div = int(d)

    print(f"calls: C {calls.get('c', 0)}, Rust {calls.get('rust', 0)}; "
          f"{pages} pages scanned by each")
    head = f"{'instr/page C':>12} {'Rust':>8}"
    if per_name:
        head += f" {'/' + per_name + ' C':>10} {'Rust':>8}"
    print(f"{head}  function")

    def row(c, r, label):
        line = f"{c / pages:12.2f} {r / pages:8.2f}"
        if per_name:
            line += f" {c * div / pages:10.1f} {r * div / pages:8.1f}"
        print(f"{line}  {label}")

    row(total["c"], total["rust"], "all (from do_pagemap_cmd() to the return to user space)")
    ranked = sorted(per_fn, key=lambda fn: -max(per_fn[fn]["c"], per_fn[fn]["rust"]))
    shown = collections.Counter()
    for fn in ranked[:args.top]:
        row(per_fn[fn]["c"], per_fn[fn]["rust"], short(readable[fn]))
        shown.update(per_fn[fn])
    row(total["c"] - shown["c"], total["rust"] - shown["rust"], "the rest")


if __name__ == "__main__":
    sys.exit(main())
