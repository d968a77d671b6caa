#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: the series' tools/mm/pagemap_scan_bench in the guest, C and
# Rust PAGEMAP_SCAN interleaved (debugfs switch) in one boot, wall-clock; then
# a second, shorter boot under QEMU -icount (1 ns of guest time = 1 guest
# instruction), whose figures do not depend on the host's load. The kernel is
# the guest's configuration without the debugging options (config/bench.config),
# built in $CACHE/build-bench: lockdep and DEBUG_VM would be most of what is
# measured.
# Results: bench/latest.txt (tables and machine) and bench/latest.json.
. "$(dirname "$0")/lib.sh"

export BUILD=${BENCH_BUILD:-$CACHE/build-bench}
GUEST_EXTRA=config/bench.config "$WB_TOP/workbench/build.sh"

out=$WB_TOP/bench
mkdir -p "$out"
args=${BENCH_ARGS:--r 7 -s 256,1024}
iargs=${BENCH_ICOUNT_ARGS:--r 3 -s 256}

extract() { # RUN PREFIX: the program's output of run RUN, table or JSON lines
	awk '/^@@@ BEGIN /{f=1; next} /^@@@ END /{f=0} f' "$CACHE/runs/$1/tests.log" |
		if [ "$2" = json ]; then sed -n 's/^@json //p'; else grep -v '^@json '; fi
}

run() { # RUN KIND ARGS...
	local name=$1 kind=$2; shift 2
	"$WB_TOP/workbench/guest.sh" "$name" \
		"raw:$name=./pagemap_scan_bench $* -k '$kind' -j /tmp/b.json && sed 's/^/@json /' /tmp/b.json"
}

start=$(date +%s)
run bench "wall-clock ns" $args || die "benchmark run failed"
QEMU_ACCEL="tcg,thread=single" QEMU_EXTRA="-icount shift=0" \
	run bench-icount "guest instructions (QEMU -icount shift=0)" $iargs ||
	die "benchmark -icount run failed"

{
	echo "# make bench, $(date -u '+%Y-%m-%d %H:%M UTC'), series $(git -C "$TREE" describe --always --tags 2>/dev/null)"
	echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs," \
		"$(free -g | awk '/Mem:/{print $2}') GiB; guest: QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') TCG, 2 vCPUs, 3 GiB;" \
		"kernel: config/guest.config + config/bench.config (no lockdep, no DEBUG_VM)"
	echo
	echo "## wall clock (one boot, interleaved rounds)"
	extract bench table
	echo
	echo "## guest instructions (QEMU -icount shift=0: deterministic, host-independent)"
	extract bench-icount table
} > "$out/latest.txt"
{ extract bench json; extract bench-icount json; } > "$out/latest.json"
cat "$out/latest.txt"
log "make bench took $(( $(date +%s) - start ))s; results in bench/latest.txt and bench/latest.json"
