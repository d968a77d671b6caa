#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the series in the configurations a maintainer or 0-day builds, each
# in its own build directory ($CACHE/configs/NAME, incremental), with
# CLIPPY=1; fail on any build error or warning.
#
#   check-configs.sh [--quick] [NAME...]
#
# Each config is tinyconfig + config/guest.config + its own lines, for x86_64
# or arm64 (LLVM=-22 cross-compiles C and Rust, no other toolchain).  Only
# the directories the series changes are built: rust/ (in 'prepare'), fs/proc/
# and mm/; that covers every file it touches.  --quick builds the set that
# `make test` runs; `make check-configs` builds all of them.
. "$(dirname "$0")/lib.sh"

# NAME ARCH QUICK LINES: LINES (';'-separated) are added to the fragment;
# each "CONFIG_X=y" or "# CONFIG_X is not set" among them must hold after
# olddefconfig, as must the checks in want_NAME below.
CONFIGS=(
	"no-thp-no-hugetlb x86_64 1 # CONFIG_TRANSPARENT_HUGEPAGE is not set;# CONFIG_HUGETLBFS is not set"
	"arm64 arm64 1 "
	"no-thp x86_64 0 # CONFIG_TRANSPARENT_HUGEPAGE is not set"
	"no-hugetlb x86_64 0 # CONFIG_HUGETLBFS is not set"
	"no-userfaultfd x86_64 0 # CONFIG_USERFAULTFD is not set"
	"c-only x86_64 0 # CONFIG_PAGEMAP_SCAN_RUST is not set;# CONFIG_USERFAULTFD_WP_ASYNC_RUST is not set"
	"no-rust x86_64 0 # CONFIG_RUST is not set"
)

# Symbols each config must end up with, beyond its own lines.
want() {
	case $1 in
	no-thp-no-hugetlb | no-thp | no-hugetlb)
		echo CONFIG_PAGEMAP_SCAN_RUST=y CONFIG_USERFAULTFD_WP_ASYNC_RUST=y ;;
	arm64)
		echo CONFIG_RUST=y CONFIG_PAGEMAP_SCAN_RUST=y CONFIG_USERFAULTFD_WP_ASYNC_RUST=y \
			CONFIG_TRANSPARENT_HUGEPAGE=y CONFIG_HUGETLBFS=y CONFIG_USERFAULTFD=y ;;
	no-userfaultfd | c-only)
		echo CONFIG_RUST=y ;;
	esac
}

quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
names=("$@")

passed=0 failed=0
for c in "${CONFIGS[@]}"; do
	read -r name arch q lines <<<"$c"
	if [ ${#names[@]} -gt 0 ]; then
		printf '%s\n' "${names[@]}" | grep -qxF "$name" || continue
	elif [ "$quick" = 1 ] && [ "$q" != 1 ]; then
		continue
	fi
	dir=$CACHE/configs/$name
	mkdir -p "$dir"
	log "config $name ($arch): $dir"
	start=$(date +%s)
	amake() { make -C "$TREE" O="$dir" ARCH="$arch" LLVM="$LLVM_SUFFIX" -j"$JOBS" "$@"; }

	gen=$dir/gen
	mkdir -p "$gen"
	frag=$gen/fragment.config
	cp "$WB_TOP/config/guest.config" "$frag"
	tr ';' '\n' <<<"$lines" >> "$frag"
	ok=1
	if ! { amake O="$gen" -s tinyconfig &&
	       "$TREE/scripts/kconfig/merge_config.sh" -m -O "$gen" "$gen/.config" "$frag" &&
	       amake O="$gen" -s olddefconfig; } >"$gen/gen.log" 2>&1; then
		tail -20 "$gen/gen.log" >&2
		log "config $name: generating the .config failed"
		ok=0
	fi
	if [ "$ok" = 1 ]; then
		musts=$(tr ';' '\n' <<<"$lines" | grep -E '^(CONFIG_|# CONFIG_)' || true)
		for w in $(want "$name"); do musts+=$'\n'"$w"; done
		while IFS= read -r m; do
			[ -n "$m" ] || continue
			if [[ $m == "# "* ]]; then
				sym=${m#\# }; sym=${sym%% *}
				! grep -q "^$sym=" "$gen/.config" || { log "config $name: $sym is set"; ok=0; }
			else
				grep -qxF -- "$m" "$gen/.config" || { log "config $name: $m did not hold"; ok=0; }
			fi
		done <<<"$musts"
	fi
	if [ "$ok" = 1 ]; then
		cmp -s "$gen/.config" "$dir/.config" || cp "$gen/.config" "$dir/.config"
		if ! amake CLIPPY=1 fs/proc/ mm/ >"$dir/build.log" 2>&1; then
			grep -E -B2 -A8 'error(\[E[0-9]+\])?:|Error [0-9]+' "$dir/build.log" | tail -40 >&2
			log "config $name: build failed (log: $dir/build.log)"
			ok=0
		elif grep -qE '(^|[^a-z_])warning(\[[A-Za-z0-9_]+\])?:' "$dir/build.log"; then
			grep -E -A6 '(^|[^a-z_])warning(\[[A-Za-z0-9_]+\])?:' "$dir/build.log" | head -40 >&2
			log "config $name: warnings (log: $dir/build.log)"
			ok=0
		fi
	fi
	t=$(( $(date +%s) - start ))
	if [ "$ok" = 1 ]; then
		log "config $name: ok (${t}s)"
		echo "ok config $name ($arch) ${t}s"
		passed=$((passed + 1))
	else
		echo "not ok config $name ($arch) ${t}s"
		failed=$((failed + 1))
	fi
done
echo "check-configs: $passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
