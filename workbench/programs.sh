#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest's static test programs into $CACHE/st: the upstream mm
# selftests from $TREE (against the uapi headers of $BUILD) and the
# workbench's own programs.
. "$(dirname "$0")/lib.sh"

ST=$CACHE/st
mkdir -p "$ST"
[ -d "$BUILD/usr/include/linux" ] || die "no uapi headers in $BUILD/usr/include; run 'make build'"
SELFTESTS=${SELFTESTS:-pagemap_ioctl uffd-unit-tests pagemap_scan uffd_wp_async uffd_wp_log uffd_wp_stress pagemap_scan_exit pagemap_fail_nth}
targets=()
for t in $SELFTESTS; do targets+=("$ST/$t"); done
if ! make -C "$TREE/tools/testing/selftests/mm" -j"$JOBS" OUTPUT="$ST" \
	KHDR_INCLUDES="-isystem $BUILD/usr/include" EXTRA_CFLAGS="-static" \
	"${targets[@]}" >"$ST/build.log" 2>&1; then
	tail -30 "$ST/build.log" >&2
	die "building the selftests ($SELFTESTS) failed (log: $ST/build.log)"
fi
for p in "$WB_TOP"/workbench/progs/*.c; do
	out=$ST/$(basename "$p" .c)
	[ "$out" -nt "$p" ] && [ "$out" -nt "$BUILD/usr/include/linux/fs.h" ] && continue
	gcc -static -O2 -Wall -Werror -isystem "$BUILD/usr/include" -o "$out" "$p" -lpthread ||
		die "building $(basename "$p") failed"
done
# The benchmark and the tracking client of the series (tools/mm), if the tree
# under test has them.
for prog in pagemap_scan_bench uffd_wp_log_track; do
	src=$TREE/tools/mm/$prog.c
	if [ -f "$src" ] && ! { [ "$ST/$prog" -nt "$src" ] &&
			      [ "$ST/$prog" -nt "$BUILD/usr/include/linux/fs.h" ]; }; then
		gcc -static -O2 -Wall -Wextra -Werror -isystem "$BUILD/usr/include" \
			-o "$ST/$prog" "$src" -lpthread || die "building $prog failed"
	fi
done
