#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run KUnit with the project's kunitconfig on x86_64 under QEMU/TCG.
. "$(dirname "$0")/lib.sh"

mkdir -p "$KUNIT_BUILD"
cd "$TREE"
log "kunit.py run (build dir $KUNIT_BUILD, log $KUNIT_BUILD/kunit.log)"
set +e
PATH="$WB_TOP/workbench/bin:$PATH" python3 tools/testing/kunit/kunit.py run \
	--arch=x86_64 --kunitconfig="$WB_TOP/config/kunitconfig" \
	--build_dir="$KUNIT_BUILD" --jobs="$JOBS" --timeout="${KUNIT_TIMEOUT:-1800}" \
	--make_options "LLVM=$LLVM_SUFFIX" --make_options CLIPPY=1 "$@" 2>&1 | tee "$KUNIT_BUILD/kunit.log"
rc=${PIPESTATUS[0]}
set -e
# kunit.py prints e.g. "Testing complete. Ran 60 tests: passed: 58, skipped: 2".
sum=$(grep -E 'Testing complete\. Ran [0-9]+ tests' "$KUNIT_BUILD/kunit.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')
[ -n "$sum" ] || die "kunit.py produced no test summary (rc=$rc)"
ran=$(echo "$sum" | sed -n 's/.*Ran \([0-9]*\) tests.*/\1/p')
p=$(echo "$sum" | sed -n 's/.*passed: \([0-9]*\).*/\1/p')
f=$(echo "$sum" | sed -n 's/.*failed: \([0-9]*\).*/\1/p')
s=$(echo "$sum" | sed -n 's/.*skipped: \([0-9]*\).*/\1/p')
c=$(echo "$sum" | sed -n 's/.*crashed: \([0-9]*\).*/\1/p')
[ "${ran:-0}" -gt 0 ] || die "kunit.py ran no test"
# A kernel report (BUG, WARNING, lockdep...) fails the run even when every test
# passed: kunit.py keeps the whole console in test.log.
if ! python3 "$WB_TOP/workbench/tapcheck.py" --console-only --console "$KUNIT_BUILD/test.log" >&2; then
	echo "kunit: ${p:-0} passed, $(( ${f:-0} + ${c:-0} + 1 )) failed, ${s:-0} skipped"
	die "a kernel report on the KUnit console ($KUNIT_BUILD/test.log)"
fi
echo "kunit: ${p:-0} passed, $(( ${f:-0} + ${c:-0} )) failed, ${s:-0} skipped"
[ "$rc" = 0 ] || die "kunit.py failed (rc=$rc)"
