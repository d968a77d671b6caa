#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check a workbench guest run: the TAP output of each test and the kernel log.

The guest writes test output to one serial port (--tests) and the kernel to
another (--console).  A run fails on any 'not ok', a missing or unmet plan, a
test that crashed, timed out or exited non-zero, a guest that did not finish,
an unmet expectation (--expect), or any kernel WARNING, BUG, Oops, lockdep,
KASAN or similar report.  The last line printed is 'N passed, N failed, N skipped'.

With --console-only it checks just a kernel log (the KUnit console of
workbench/kunit.sh): it prints the first report and fails if there is one.
"""
import argparse
import re
import sys

SPLAT = re.compile(
    r"(------------\[ cut here \]------------|WARNING: |BUG: |Oops|Kernel panic|"
    r"general protection fault|Unable to handle kernel|KASAN: |UBSAN: |"
    r"INFO: (task .* blocked|possible|rcu)|possible recursive locking|"
    r"possible circular locking|inconsistent lock state|suspicious RCU usage|"
    r"DEBUG_LOCKS_WARN_ON|bad page state|Bad page|page dumped because|"
    r"kernel BUG at|VM_BUG_ON|stack-protector)")
TAP_RESULT = re.compile(r"^(not ok|ok)\s+(\d+)\s*(.*)$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
EXPECT = re.compile(r"^(\S+)\s+(pass|fail|skip|total)\s*(>=|<=|==)\s*(\d+)\s*$")


class Result:
    def __init__(self, name, kind):
        self.name, self.kind = name, kind
        self.passed = self.failed = self.skipped = 0
        self.plan = None
        self.rc = None
        self.begun = False
        self.failures = []
        self.lines = []


def parse_tests(path, specs):
    results = {}
    for spec in specs:
        kind, name = spec.split(":", 1)
        results[name] = Result(name, kind)
    cur = None
    done = timeout = False
    try:
        text = open(path, errors="replace").read()
    except FileNotFoundError:
        text = ""
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        m = re.match(r"^@@@ BEGIN (\S+)", line)
        if m:
            cur = results.get(m.group(1))
            if cur:
                cur.begun = True
            continue
        m = re.match(r"^@@@ END (\S+) rc=(\d+)", line)
        if m:
            if cur and cur.name == m.group(1):
                cur.rc = int(m.group(2))
            cur = None
            continue
        if line.startswith("@@@ DONE"):
            done = True
            continue
        if line.startswith("@@@ TIMEOUT"):
            timeout = True
            continue
        if cur is None:
            continue
        cur.lines.append(line)
        if cur.kind != "tap":
            continue
        m = TAP_PLAN.match(line)
        if m and cur.plan is None:
            cur.plan = int(m.group(1))
            continue
        m = TAP_RESULT.match(line)
        if m:
            status, desc = m.group(1), m.group(3)
            if re.search(r"#\s*SKIP", desc, re.I):
                cur.skipped += 1
            elif status == "ok":
                cur.passed += 1
            else:
                cur.failed += 1
                cur.failures.append(line)
    return results, done, timeout


def check_console(path):
    try:
        lines = open(path, errors="replace").read().splitlines()
    except FileNotFoundError:
        return ["no kernel console log"], []
    splats = []
    for i, line in enumerate(lines):
        if SPLAT.search(line):
            splats.append("\n".join(lines[i:i + 25]))
            # Skip the rest of this report.
            break
    return [], splats


def check_expect(path, results, problems):
    for raw in open(path):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = EXPECT.match(line)
        if not m:
            problems.append(f"{path}: cannot parse '{line}'")
            continue
        name, key, op, val = m.group(1), m.group(2), m.group(3), int(m.group(4))
        r = results.get(name)
        if r is None:
            continue
        have = {"pass": r.passed, "fail": r.failed, "skip": r.skipped,
                "total": r.passed + r.failed + r.skipped}[key]
        ok = {">=": have >= val, "<=": have <= val, "==": have == val}[op]
        if not ok:
            problems.append(f"{name}: expected {key} {op} {val}, got {have}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--console-only", action="store_true")
    ap.add_argument("--tests")
    ap.add_argument("--expect")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("specs", nargs="*", help="tap:NAME or raw:NAME")
    a = ap.parse_args()
    if a.console_only:
        cproblems, splats = check_console(a.console)
        for p in cproblems:
            print(f"FAIL: {p}")
        for s in splats:
            print("FAIL: kernel splat on the console:\n    " + s.replace("\n", "\n    "))
        return 1 if cproblems or splats else 0
    if not a.tests or not a.specs:
        ap.error("--tests and at least one spec are needed without --console-only")

    results, done, timeout = parse_tests(a.tests, a.specs)
    problems = []
    for r in results.values():
        if r.kind == "raw" and not a.quiet:
            print(f"---- {r.name} ----")
            print("\n".join(r.lines))
        if not r.begun:
            problems.append(f"{r.name}: never started (guest crashed or timed out before it)")
            continue
        if r.rc is None:
            problems.append(f"{r.name}: did not finish (crash or timeout)")
            continue
        if r.rc in (124, 137, 143):
            problems.append(f"{r.name}: timed out in the guest (rc={r.rc})")
        for f in r.failures:
            problems.append(f"{r.name}: {f}")
        if r.kind == "tap":
            if r.plan is None:
                problems.append(f"{r.name}: no TAP plan (1..N) in its output")
            elif r.plan != r.passed + r.failed + r.skipped:
                problems.append(f"{r.name}: plan 1..{r.plan} but "
                                f"{r.passed + r.failed + r.skipped} results")
            if r.rc not in (0, 4) or (r.rc == 4 and r.passed + r.failed):
                problems.append(f"{r.name}: exit code {r.rc}")
        elif r.rc != 0:
            problems.append(f"{r.name}: exit code {r.rc}")
    if timeout:
        problems.append("guest timed out (host-side limit)")
    elif not done:
        problems.append("guest did not reach the end of its test list (crash, panic or hang)")
    cproblems, splats = check_console(a.console)
    problems += cproblems
    for s in splats:
        problems.append("kernel splat on the console:\n    " + s.replace("\n", "\n    "))
    if a.expect:
        check_expect(a.expect, results, problems)

    passed = sum(r.passed for r in results.values() if r.kind == "tap")
    failed = sum(r.failed for r in results.values() if r.kind == "tap")
    skipped = sum(r.skipped for r in results.values() if r.kind == "tap")
    for r in results.values():
        if r.kind == "tap":
            print(f"{r.name}: pass={r.passed} fail={r.failed} skip={r.skipped} "
                  f"plan={r.plan} rc={r.rc}")
        elif r.kind == "raw":
            passed += r.rc == 0
            failed += r.rc != 0
            print(f"{r.name}: rc={r.rc}")
    extra = len([p for p in problems if "not ok" not in p])
    for p in problems:
        print(f"FAIL: {p}")
    print(f"{passed} passed, {failed + extra} failed, {skipped} skipped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
