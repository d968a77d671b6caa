#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make sanitize: the guest tests on a kernel with KASAN (generic, inline),
# UBSAN, KFENCE, kmemleak and fault injection on top of the guest's DEBUG_VM
# and lockdep (config/sanitize.config), booted with panic_on_warn, each on the
# Rust and on the C implementations: pagemap_ioctl, pagemap_scan,
# uffd_wp_async, uffd_wp_log, uffd-unit-tests (Rust), uffd_wp_stress,
# pagemap_scan_exit and pagemap_fail_nth. After the tests, kmemleak scans twice and any leak it
# reports fails the run; so does any KASAN, UBSAN, KFENCE, lockdep or WARN
# report on the console (tapcheck).
#
# sanitize.sh --quick (the sanitize step of `make test`): the series'
# reliability tests only (uffd_wp_async, uffd_wp_log, uffd_wp_stress,
# pagemap_scan_exit, pagemap_fail_nth), which the plain guest cannot run or cannot check as
# well; pagemap_ioctl, pagemap_scan and uffd-unit-tests run in the plain guest
# of the selftests step, and here in `make sanitize`.
. "$(dirname "$0")/lib.sh"

quick=
[ "${1:-}" = --quick ] && quick=1

export BUILD=${SANITIZE_BUILD:-$CACHE/build-sanitize}
GUEST_EXTRA=config/sanitize.config "$WB_TOP/workbench/build.sh"

kml=/sys/kernel/debug/kmemleak
# What boot allocated and still holds is not the tests' doing: forget it.
clear="echo clear > $kml"
# An object is reported once it has stayed unreferenced through two scans.
# (debugfs files have no size: `test -s` on $kml itself is always false.)
scan="sleep 5 && echo scan > $kml && sleep 6 && echo scan > $kml && cat $kml > /tmp/leaks && \
if [ -s /tmp/leaks ]; then cat /tmp/leaks; echo \"kmemleak: \$(grep -c unreferenced /tmp/leaks) leaks reported\"; exit 1; fi; \
echo 'kmemleak: no leaks'"
tests=("raw:kmemleak-clear=$clear")
if [ -z "$quick" ]; then
	tests+=("pagemap_ioctl.rust=./impl rust ./pagemap_ioctl"
		"pagemap_ioctl.c=./impl c ./pagemap_ioctl"
		"pagemap_scan.rust=./impl rust ./pagemap_scan@1800"
		"pagemap_scan.c=./impl c ./pagemap_scan@1800"
		"uffd-unit-tests=./impl rust ./uffd-unit-tests@2400")
fi
for impl in rust c; do
	tests+=("uffd_wp_async.$impl=./impl $impl ./uffd_wp_async@1200"
		"uffd_wp_log.$impl=./impl $impl ./uffd_wp_log@1200"
		"uffd_wp_stress.$impl=./impl $impl ./uffd_wp_stress -r ${STRESS_ROUNDS:-20}@1800"
		"pagemap_scan_exit.$impl=./impl $impl ./pagemap_scan_exit@1200"
		"pagemap_fail_nth.$impl=./impl $impl ./pagemap_fail_nth@1800")
done
tests+=("raw:kmemleak=$scan")
timeout=5400
[ -n "$quick" ] && timeout=2400
# slub_debug=F: SLUB's per-CPU sheaves (7.x) are kmalloc'ed arrays that
# kmemleak scans whole, and a sheaf keeps the pointers to the objects it
# handed out in its unused slots: a leak of a recent allocation stays
# "referenced" and is never reported (a leak planted on an error path was
# not, C or Rust, even after shrinking the caches, which keeps the main
# sheaf). Caches with a debug flag have no sheaves.
GUEST_APPEND="panic_on_warn=1 kmemleak=on slub_debug=F" GUEST_TIMEOUT=${GUEST_TIMEOUT:-$timeout} \
exec "$WB_TOP/workbench/guest.sh" sanitize${quick:+-quick} --expect "$WB_TOP/workbench/expect.txt" \
	"${tests[@]}"
