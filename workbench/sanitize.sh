#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make sanitize: the selftests of `make selftests` on a kernel with KASAN
# (generic, inline), UBSAN, KFENCE and kmemleak on top of the guest's DEBUG_VM
# and lockdep (config/sanitize.config), booted with panic_on_warn. After the
# tests, kmemleak scans twice and any leak it reports fails the run; so does
# any KASAN, UBSAN, KFENCE, lockdep or WARN report on the console (tapcheck).
. "$(dirname "$0")/lib.sh"

export BUILD=${SANITIZE_BUILD:-$CACHE/build-sanitize}
GUEST_EXTRA=config/sanitize.config "$WB_TOP/workbench/build.sh"

kml=/sys/kernel/debug/kmemleak
# What boot allocated and still holds is not the tests' doing: forget it.
clear="echo clear > $kml"
# An object is reported once it has stayed unreferenced through two scans.
scan="echo scan > $kml && sleep 6 && echo scan > $kml && sleep 1 && \
if [ -s $kml ]; then cat $kml; echo 'kmemleak: leaks reported'; exit 1; fi; echo 'kmemleak: no leaks'"
GUEST_APPEND="panic_on_warn=1 kmemleak=on" GUEST_TIMEOUT=${GUEST_TIMEOUT:-3600} \
exec "$WB_TOP/workbench/guest.sh" sanitize --expect "$WB_TOP/workbench/expect.txt" \
	"raw:kmemleak-clear=$clear" \
	"pagemap_ioctl.rust=./impl rust ./pagemap_ioctl" \
	"pagemap_ioctl.c=./impl c ./pagemap_ioctl" \
	"pagemap_scan.rust=./impl rust ./pagemap_scan" \
	"pagemap_scan.c=./impl c ./pagemap_scan" \
	"uffd_wp_async.rust=./impl rust ./uffd_wp_async@1200" \
	"uffd_wp_async.c=./impl c ./uffd_wp_async@1200" \
	"uffd-unit-tests=./impl rust ./uffd-unit-tests@2400" \
	"raw:kmemleak=$scan"
