#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make profile: where the instructions of one benchmark scenario go, function
# by function, in the C and in the Rust PAGEMAP_SCAN. Boots the guest of
# $BUILD under QEMU -icount with the TCG plugin profile/tcg_profile.c, runs
# pagemap_scan_bench on the one scenario, and maps the plugin's counts to
# functions with System.map.
#
#   profile.sh SCENARIO [MIB] [ROUNDS]
#
# Output: bench/profile-SCENARIO.txt (and the raw counts in the run directory).
. "$(dirname "$0")/lib.sh"

scenario=${1:?usage: profile.sh SCENARIO [MIB] [ROUNDS]}
mib=${2:-256}
rounds=${3:-2}
map=$BUILD/System.map
[ -f "$map" ] || die "no System.map in $BUILD; build the guest kernel first"
addr() { awk -v s="$1" '$3 == s { print $1; exit }' "$map"; }
cmd=$(addr do_pagemap_cmd); rust=$(addr rust_pagemap_scan)
[ -n "$cmd" ] && [ -n "$rust" ] || die "do_pagemap_cmd or rust_pagemap_scan not in $map"

# The scenarios on uffd-wp memory protect it all once in their setup, with C.
skip=0
case $scenario in wp-*|write-fault) skip=1 ;; esac

so=$CACHE/tcg_profile.so
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$so" "$WB_TOP/workbench/profile/tcg_profile.c"
run=profile-$scenario
counts=$CACHE/runs/$run.counts
rm -f "$counts"
QEMU_ACCEL="tcg,thread=single" \
QEMU_EXTRA="-icount shift=0 -plugin $so,cmd=$cmd,rust=$rust,skip=$skip,out=$counts" \
	"$WB_TOP/workbench/guest.sh" "$run" \
	"raw:$run=./pagemap_scan_bench -r $rounds -s $mib -o $scenario -k icount" ||
	die "profile run failed"
[ -s "$counts" ] || die "the plugin wrote no counts"

pages=$(( mib * 256 * rounds ))
per=
[ "$scenario" = sparse-vmas ] && per=--per=VMA=16
mkdir -p "$WB_TOP/bench"
{
	echo "# make profile SCENARIO=$scenario, $(date -u '+%Y-%m-%d %H:%M UTC'), $mib MiB, $rounds rounds," \
		"kernel $(basename "$BUILD")"
	echo "# guest instructions per page, by function (QEMU -icount, TCG plugin)"
	echo
	sed -n '/^@@@ BEGIN /,/^@@@ END /p' "$CACHE/runs/$run/tests.log" | grep -v '^@@@' | grep -v '^@json' || true
	echo
	python3 "$WB_TOP/workbench/profile/profile.py" "$counts" "$map" "$pages" $per
} > "$WB_TOP/bench/profile-$scenario.txt"
cat "$WB_TOP/bench/profile-$scenario.txt"
