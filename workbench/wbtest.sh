#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Tests of the workbench itself: each failure it must catch, it catches and
# names.  (1) a patch that does not apply, (2) a failing TAP test, a test
# without a plan, a test that hangs, and a real kernel WARNING (LKDTM) in one
# guest boot, (3) a patch with a checkpatch error in `make send-check`, (4) a
# kernel report on the KUnit console.
. "$(dirname "$0")/lib.sh"

pass=0 fail=0
t() { # NAME EXPECTED-REGEX OUTPUT-FILE
	if grep -qE -- "$2" "$3"; then
		pass=$((pass + 1)); echo "ok - $1"
	else
		fail=$((fail + 1)); echo "not ok - $1 (no /$2/ in the output:)"; sed 's/^/    /' "$3" | tail -20
	fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. A conflicting patch names itself and the file.
mkdir -p "$tmp/patches"
cat > "$tmp/patches/0001-wbtest-conflict.patch" <<'PATCH'
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Workbench <workbench@localhost>
Date: Thu, 1 Jan 2026 00:00:00 +0000
Subject: [PATCH] mm: wbtest: a patch that cannot apply

---
 mm/pagewalk.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/mm/pagewalk.c b/mm/pagewalk.c
--- a/mm/pagewalk.c
+++ b/mm/pagewalk.c
@@ -1,3 +1,3 @@
-this line is not in mm/pagewalk.c
+and so this patch conflicts
 neither is this one
 nor this one
-- 
2.47.3
PATCH
if PATCHES=$tmp/patches AMTREE=$CACHE/am-wbtest AM_ONLY=1 "$WB_TOP/workbench/tree.sh" >"$tmp/conflict.out" 2>&1; then
	echo "tree.sh succeeded on a conflicting patch" >> "$tmp/conflict.out"
fi
t "conflicting patch fails and is named" "ERROR: patch 0001-wbtest-conflict.patch does not apply" "$tmp/conflict.out"
t "conflicting patch names the file" "conflicting file\(s\): .*mm/pagewalk.c" "$tmp/conflict.out"
git -C "$TREE" worktree remove --force "$CACHE/am-wbtest" 2>/dev/null || rm -rf "$CACHE/am-wbtest"

# 2. Failures inside the guest, in one boot.
if "$WB_TOP/workbench/guest.sh" wbtest \
	"failing=printf '1..2\nok 1 fine\nnot ok 2 broken on purpose\n'" \
	"noplan=echo 'ok 1 but no plan'" \
	"hang=sleep 600@5" \
	"raw:warning=echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT" \
	"passing=printf '1..1\nok 1 fine\n'" >"$tmp/guest.out" 2>&1; then
	echo "guest.sh succeeded although tests failed" >> "$tmp/guest.out"
fi
t "failing TAP test fails the run and is named" "^FAIL: failing: not ok 2 broken on purpose" "$tmp/guest.out"
t "test without a plan fails the run" "^FAIL: noplan: no TAP plan" "$tmp/guest.out"
t "hanging test is stopped and reported" "^FAIL: hang: timed out in the guest" "$tmp/guest.out"
t "kernel WARNING fails the run" "^FAIL: kernel splat on the console" "$tmp/guest.out"
t "the WARNING itself is shown" "WARNING: .*lkdtm_WARNING" "$tmp/guest.out"
t "passing test still counted" "^passing: pass=1 fail=0 skip=0 plan=1 rc=0" "$tmp/guest.out"
t "closing line counts the failures" "^[0-9]+ passed, [1-9][0-9]* failed, 0 skipped" "$tmp/guest.out"

# 3. send-check fails on a patch with a checkpatch error: one patch on the
# base that adds a line with trailing whitespace and a C99 comment.
bad=$CACHE/send-wbtest-tree
git -C "$TREE" worktree remove --force "$bad" 2>/dev/null || rm -rf "$bad"
git -C "$TREE" worktree prune
git -C "$TREE" worktree add -q -f --detach "$bad" "$BASE_TAG"
printf '\n// wbtest: a checkpatch error \n' >> "$bad/mm/pagewalk.c"
git -C "$bad" -c user.name=Workbench -c user.email=workbench@localhost commit -q -a \
	-m "mm: wbtest: a patch with a checkpatch error" -m "Signed-off-by: Workbench <workbench@localhost>"
if SENDTREE=$bad B4_VENV=$CACHE/b4-venv CACHE=$CACHE/send-wbtest "$WB_TOP/workbench/send-check.sh" >"$tmp/send.out" 2>&1; then
	echo "send-check.sh succeeded on a patch with a checkpatch error" >> "$tmp/send.out"
fi
t "send-check fails on a checkpatch error" "^not ok [0-9]+ b4 prep --check is clean .*Error: [1-9]" "$tmp/send.out"
t "send-check shows the checkpatch error" "trailing whitespace" "$tmp/send.out"
git -C "$TREE" worktree remove --force "$bad" 2>/dev/null || rm -rf "$bad"

# 4. A kernel report on the KUnit console fails `make kunit` (the check that
# workbench/kunit.sh runs on kunit.py's test.log).
printf 'ok 1 fine\nBUG: sleeping function called from invalid context at mm/slub.c:1\n' > "$tmp/test.log"
if python3 "$WB_TOP/workbench/tapcheck.py" --console-only --console "$tmp/test.log" >"$tmp/kunit.out" 2>&1; then
	echo "tapcheck.py --console-only passed a console with a BUG" >> "$tmp/kunit.out"
fi
t "a report on the KUnit console fails the check" "^FAIL: kernel splat on the console" "$tmp/kunit.out"
t "the report itself is shown" "BUG: sleeping function called from invalid context" "$tmp/kunit.out"

echo "workbench: $pass passed, $fail failed, 0 skipped"
[ $fail = 0 ]
