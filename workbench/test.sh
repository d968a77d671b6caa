#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make test`: everything CI runs.  Each step's log is kept under
# $CACHE/test-logs; the last line is the total 'N passed, N failed, N skipped'.
. "$(dirname "$0")/lib.sh"

# CI tests exactly patches/: local commits or edits in the cached tree are
# discarded there (a developer's 'make test' refuses to, see tree.sh).
if [ "${CI:-}" = true ]; then
	export FORCE=1
fi

LOGS=$CACHE/test-logs
rm -rf "$LOGS"; mkdir -p "$LOGS"
P=0 F=0 S=0
failed_steps=()
t0=$(date +%s)

step() { # NAME COMMAND...: run, show output, add its closing counts
	local name=$1; shift
	local s rc
	s=$(date +%s)
	log "=== $name"
	set +e
	"$@" 2>&1 | tee "$LOGS/$name.log"
	rc=${PIPESTATUS[0]}
	set -e
	local line
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$LOGS/$name.log" | tail -1 | sed 's/^[A-Za-z-]*: //')
	if [ -n "$line" ]; then
		P=$((P + $(echo "$line" | awk '{print $1}')))
		F=$((F + $(echo "$line" | awk '{print $3}')))
		S=$((S + $(echo "$line" | awk '{print $5}')))
	fi
	if [ "$rc" != 0 ]; then
		failed_steps+=("$name")
		[ -n "$line" ] || F=$((F + 1))
	fi
	log "=== $name: $([ "$rc" = 0 ] && echo ok || echo FAILED) ($(( $(date +%s) - s ))s)"
	return "$rc"
}

finish() {
	log "total time $(( $(date +%s) - t0 ))s; logs in $LOGS"
	if [ ${#failed_steps[@]} -gt 0 ]; then
		log "FAILED steps: ${failed_steps[*]}"
	fi
	echo "$P passed, $F failed, $S skipped"
	[ ${#failed_steps[@]} = 0 ]
	exit
}

step deps "$WB_TOP/workbench/deps.sh" || finish
step base "$WB_TOP/workbench/base.sh" || finish
step files "$WB_TOP/workbench/added-files.sh" check || true
step tree "$WB_TOP/workbench/tree.sh" || finish
step build "$WB_TOP/workbench/build.sh" || finish
step kunit "$WB_TOP/workbench/kunit.sh" || true
step check "$WB_TOP/workbench/check.sh" || true
step send "$WB_TOP/workbench/send-check.sh" || true
step bisect "$WB_TOP/workbench/bisect.sh" || true
step selftests "$WB_TOP/workbench/selftests.sh" || true
# The sanitizer boot (KASAN, UBSAN, KFENCE, kmemleak, fault injection): the
# series' reliability tests; `make sanitize` runs every guest test there.
step sanitize "$WB_TOP/workbench/sanitize.sh" --quick || true
step demo "$WB_TOP/workbench/guest.sh" demo raw:pagemap_scan_demo=./pagemap_scan_demo || true
step workbench "$WB_TOP/workbench/wbtest.sh" || true
finish
