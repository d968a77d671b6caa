#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Fill git format-patch's cover letter from workbench/cover-letter.txt.

The text's first line is the subject, the rest (after one blank line) the body.
"""
import sys

patch, text = sys.argv[1], open(sys.argv[2]).read()
subject, _, body = text.partition("\n")
body = body.lstrip("\n").rstrip() + "\n"
cover = open(patch).read()
if "*** SUBJECT HERE ***" not in cover or "*** BLURB HERE ***" not in cover:
    sys.exit(f"{patch}: no placeholders to fill")
cover = cover.replace("*** SUBJECT HERE ***", subject.strip(), 1)
cover = cover.replace("*** BLURB HERE ***\n", body, 1)
open(patch, "w").write(cover)
