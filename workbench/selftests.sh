#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The guest selftests of `make selftests` / `make test`, in one boot:
# the upstream pagemap_ioctl (unmodified) and the series' pagemap_scan,
# uffd_wp_async, uffd_wp_log, uffd_wp_stress (no lost writes) and
# pagemap_scan_exit, each
# on the Rust and on the C implementations of PAGEMAP_SCAN and WP_ASYNC (debugfs switches, workbench/guest/impl), and uffd-unit-tests
# on the Rust ones; and tools/mm/uffd_wp_log_track (shadow == memory after
# rounds with concurrent writers), with the log and with scans.  Bounds:
# workbench/expect.txt.
WB=$(dirname "$0")
exec "$WB/guest.sh" selftests --expect "$WB/expect.txt" \
	"pagemap_ioctl.rust=./impl rust ./pagemap_ioctl" \
	"pagemap_ioctl.c=./impl c ./pagemap_ioctl" \
	"pagemap_scan.rust=./impl rust ./pagemap_scan" \
	"pagemap_scan.c=./impl c ./pagemap_scan" \
	"uffd_wp_async.rust=./impl rust ./uffd_wp_async@600" \
	"uffd_wp_async.c=./impl c ./uffd_wp_async@600" \
	"uffd_wp_log.rust=./impl rust ./uffd_wp_log@600" \
	"uffd_wp_log.c=./impl c ./uffd_wp_log@600" \
	"raw:uffd_wp_log_track.log=./impl rust ./uffd_wp_log_track -m log -s 64 -t 3 -r 100 -p 100@600" \
	"raw:uffd_wp_log_track.log-c=./impl c ./uffd_wp_log_track -m log -s 64 -t 3 -r 100 -p 100@600" \
	"raw:uffd_wp_log_track.scan=./impl rust ./uffd_wp_log_track -m scan -s 64 -t 3 -r 100 -p 100@600" \
	"raw:uffd_wp_log_track.overflow=./impl rust ./uffd_wp_log_track -m log -s 64 -t 3 -r 20 -e 64@600" \
	"uffd_wp_stress.rust=./impl rust ./uffd_wp_stress -r 40@900" \
	"uffd_wp_stress.c=./impl c ./uffd_wp_stress -r 40@900" \
	"pagemap_scan_exit.rust=./impl rust ./pagemap_scan_exit@600" \
	"pagemap_scan_exit.c=./impl c ./pagemap_scan_exit@600" \
	"uffd-unit-tests=./impl rust ./uffd-unit-tests"
