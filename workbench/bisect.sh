#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Every patch of the series must build on its own: build each prefix of the
# series (base + patches 1..k) in the KUnit build directory, where the Rust
# KUnit tests are compiled too, with clippy, and with the kunitconfig's
# options (the Rust implementations among them) set at every step.
# Incremental, so each step rebuilds only what the patch changes.  Each prefix is compiled and archived
# (vmlinux.a: every object of the kernel, Rust crates, doctests and KUnit
# suites included) but not linked: the three kallsyms links of a lockdep
# kernel were most of a step, and the whole series is linked and booted by
# the kunit step.  Leaves $TREE at the series' HEAD.
. "$(dirname "$0")/lib.sh"

[ -f "$KUNIT_BUILD/.config" ] || die "no KUnit build directory yet: run 'make kunit' first"
cd "$TREE"
head=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || die "$TREE has uncommitted changes"
trap 'git checkout -q "$head" 2>/dev/null; git checkout -q wb 2>/dev/null || true' EXIT
fail=0 n=0
make_noise="Makefile:[0-9]+: warning: (overriding recipe for target|ignoring old recipe for target) .vmlinux\\.a."
for c in $(git rev-list --reverse "$BASE_TAG..$head"); do
	n=$((n + 1))
	git checkout -q --detach "$c"
	subject=$(git log -1 --format=%s "$c")
	blog=$CACHE/bisect-$n.log
	# A step whose Kconfig lacks an option of the kunitconfig drops it from
	# .config, and the next steps would not build the code behind it: put
	# the kunitconfig back before every step.
	cat "$WB_TOP/config/kunitconfig" >>"$KUNIT_BUILD/.config"
	kmake "$KUNIT_BUILD" olddefconfig >"$CACHE/bisect-$n.config.log" 2>&1 ||
		die "patch $n: olddefconfig failed (log: $CACHE/bisect-$n.config.log)"
	if ! kmake "$KUNIT_BUILD" CLIPPY=1 vmlinux.a >"$blog" 2>&1; then
		grep -E -B2 -A8 'error(\[E[0-9]+\])?:' "$blog" | head -30 >&2
		log "patch $n does not build on its own: $subject (log: $blog)"
		fail=$((fail + 1))
	# Building vmlinux.a as a goal makes make itself warn that the top
	# Makefile defines its recipe twice; that is not a finding.
	elif grep -E '^warning(\[[^]]*\])?: |: warning: ' "$blog" | grep -qvE "$make_noise"; then
		grep -E -A8 '^warning(\[[^]]*\])?: |: warning: ' "$blog" | grep -vE "$make_noise" | head -30 >&2
		log "patch $n builds with warnings: $subject (log: $blog)"
		fail=$((fail + 1))
	else
		log "patch $n builds: $subject"
	fi
done
# At the series' HEAD every option of the kunitconfig exists: each must be
# set, or some step built less than the series has.
while read -r opt; do
	if ! grep -qxF "$opt" "$KUNIT_BUILD/.config"; then
		log "the last step did not build with $opt"
		fail=$((fail + 1))
	fi
done < <(grep '^CONFIG_' "$WB_TOP/config/kunitconfig")
echo "bisect: $((n - fail)) passed, $fail failed, 0 skipped"
[ $fail = 0 ]
