#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make stress DURATION=SECONDS: uffd_wp_stress (no lost writes under writers,
# a tracker and a mutator) for DURATION seconds in all, half on the Rust and
# half on the C implementations, on the guest kernel (DEBUG_VM, lockdep).
# `make test` runs it for a fixed number of rounds instead (selftests.sh).
. "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-600}
case $DURATION in ''|*[!0-9]*) die "DURATION must be a number of seconds" ;; esac
half=$(( (DURATION + 1) / 2 ))
"$WB_TOP/workbench/build.sh"
GUEST_TIMEOUT=$(( DURATION + 900 )) exec "$WB_TOP/workbench/guest.sh" stress \
	--expect "$WB_TOP/workbench/expect.txt" \
	"uffd_wp_stress.rust=./impl rust ./uffd_wp_stress -d $half@$(( half + 400 ))" \
	"uffd_wp_stress.c=./impl c ./uffd_wp_stress -d $half@$(( half + 400 ))"
