#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check the mails `b4 send -o DIR` wrote for the series (workbench/send-check.sh).

- one cover letter and one mail per patch, numbered [PATCH vN k/n];
- the cover letter carries the series' own text (workbench/cover-letter.txt),
  not b4's placeholder;
- every patch is in reply to the cover letter (In-Reply-To and References);
- every mail is addressed (To or Cc) to the recipients .b4-config names, and
  each patch to the get_maintainer.pl names of the files it touches;
- b4 prep --check found no error (warnings only for Fixes: ids that the base
  tree, which has no history, cannot look up).

Prints one line per check and 'send-check: N passed, N failed, 0 skipped'.
"""
import argparse
import email
import email.policy
import email.utils
import os
import re
import subprocess
import sys


def addresses(values):
    return {a.lower() for _, a in email.utils.getaddresses(values) if a}


def b4_config_recipients(path):
    want = set()
    for line in open(path):
        m = re.match(r"\s*send-series-(to|cc)\s*=\s*(.*)$", line)
        if m:
            want |= addresses([m.group(2)])
    return want


def subject(msg):
    return " ".join(str(msg["Subject"]).split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tree", required=True)
    ap.add_argument("--b4-config", required=True)
    ap.add_argument("--cover", required=True)
    ap.add_argument("--patches", type=int, required=True)
    ap.add_argument("--revision", type=int, required=True)
    ap.add_argument("--check-summary", required=True)
    ap.add_argument("--check-problems", default="")
    a = ap.parse_args()

    results = []

    def check(ok, what, detail=""):
        results.append(ok)
        print(f"{'ok' if ok else 'not ok'} {len(results)} {what}")
        if not ok and detail:
            for line in detail.rstrip().splitlines()[:40]:
                print(f"#   {line}")

    m = re.match(r"Success: (\d+), Warning: (\d+), Error: (\d+)", a.check_summary)
    errors = int(m.group(3)) if m else -1
    check(errors == 0 and not a.check_problems.strip(),
          f"b4 prep --check is clean ({a.check_summary})", a.check_problems)

    files = sorted(f for f in os.listdir(a.out) if f.endswith(".eml"))
    mails = [email.message_from_binary_file(open(os.path.join(a.out, f), "rb"),
                                            policy=email.policy.compat32) for f in files]
    n = a.patches
    check(len(mails) == n + 1, f"b4 wrote a cover letter and {n} patches",
          f"{len(mails)} mails: {files}")
    if len(mails) != n + 1:
        return finish(results)

    prefix = "PATCH" if a.revision == 1 else f"PATCH v{a.revision}"
    cover, patches = mails[0], mails[1:]
    title, _, body = open(a.cover).read().partition("\n")
    first_para = " ".join(body.strip().split("\n\n")[0].split())
    cover_body = " ".join(cover.get_payload(decode=True).decode("utf-8", "replace").split())
    want_subject = f"[{prefix} 00/{n}] {title.strip()}"
    check(subject(cover) == want_subject,
          "the cover letter's subject is the series' own",
          f"got {subject(cover)!r}, want {want_subject!r}")
    check(first_para in cover_body and "EDITME" not in cover_body,
          "the cover letter carries workbench/cover-letter.txt",
          cover_body[:400])
    check("base-commit:" in cover_body, "the cover letter has base-commit:")

    cover_id = cover["Message-Id"].strip()
    threaded = []
    numbered = []
    for k, p in enumerate(patches, 1):
        if (p["In-Reply-To"] or "").strip() != cover_id or cover_id not in (p["References"] or ""):
            threaded.append(f"{k}: In-Reply-To {p['In-Reply-To']}, References {p['References']}")
        if not subject(p).startswith(f"[{prefix} {k:02d}/{n}] "):
            numbered.append(f"{k}: {subject(p)}")
    check(not threaded, f"all {n} patches are in reply to the cover letter", "\n".join(threaded))
    check(not numbered, f"the patches are numbered [{prefix} k/{n}] in order", "\n".join(numbered))

    bogus = []
    for f, m in zip(files, mails):
        for _, addr in email.utils.getaddresses(m.get_all("To", []) + m.get_all("Cc", [])):
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", addr):
                bogus.append(f"{f}: {addr!r}")
    check(not bogus, "every recipient is a mail address", "\n".join(bogus))

    series = b4_config_recipients(a.b4_config)
    missing = []
    for f, m in zip(files, mails):
        got = addresses(m.get_all("To", []) + m.get_all("Cc", []))
        lost = series - got
        if lost:
            missing.append(f"{f}: {sorted(lost)}")
    check(bool(series) and not missing,
          f"every mail goes to the {len(series)} recipients of .b4-config", "\n".join(missing))

    missing = []
    for f, m in zip(files[1:], patches):
        path = os.path.join(a.out, f)
        gm = subprocess.run(
            ["perl", "scripts/get_maintainer.pl", "--nogit", "--nogit-fallback",
             "--nogit-chief-penguins", "--norolestats", "--nol", path],
            cwd=a.tree, capture_output=True, text=True)
        want = addresses(gm.stdout.splitlines())
        gm = subprocess.run(
            ["perl", "scripts/get_maintainer.pl", "--nogit", "--nogit-fallback",
             "--nogit-chief-penguins", "--norolestats", "--nom", path],
            cwd=a.tree, capture_output=True, text=True)
        want |= addresses(gm.stdout.splitlines())
        got = addresses(m.get_all("To", []) + m.get_all("Cc", []))
        if not want or want - got:
            missing.append(f"{f}: {sorted(want - got) or 'get_maintainer.pl named nobody'}")
    check(not missing, "each patch goes to the get_maintainer.pl names of its files",
          "\n".join(missing))

    return finish(results)


def finish(results):
    passed = sum(results)
    print(f"send-check: {passed} passed, {len(results) - passed} failed, 0 skipped")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
