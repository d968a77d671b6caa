#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Static checks of the series: checkpatch.pl --strict --codespell on every
# patch, rustfmt, clippy (the guest build runs with CLIPPY=1) and rustdoc.
# Expects 'make build' to have run on the current tree.
. "$(dirname "$0")/lib.sh"

fail=0
cd "$TREE"
# checkpatch looks for the codespell dictionary in /usr/share/codespell; Debian's
# python3-codespell keeps it in the module, and checkpatch would then skip the
# spelling check with only a note.
spell=
for f in /usr/share/codespell/dictionary.txt /usr/lib/python3*/dist-packages/codespell_lib/data/dictionary.txt; do
	[ -f "$f" ] && { spell=$f; break; }
done
[ -n "$spell" ] || die "no codespell dictionary (python3-codespell): the spelling check would not run"
mapfile -t series < <(find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
for p in "${series[@]}"; do
	# The base is a source package without git history, so checkpatch cannot
	# look up the ids of Fixes: tags.  FILE_PATH_CHANGES ("does MAINTAINERS
	# need updating?") warns on every new file of a patch that does not touch
	# MAINTAINERS, even one in a directory MAINTAINERS covers; the check below
	# asks get_maintainer.pl instead.  Everything else is checked.  The
	# SPDX check (scripts/spdxcheck.py, ply and GitPython) runs the first
	# python3 in PATH: Debian's, which has them, not a pyenv one.
	out=$(PATH=/usr/bin:$PATH scripts/checkpatch.pl --strict --codespell --codespellfile "$spell" --ignore UNKNOWN_COMMIT_ID,FILE_PATH_CHANGES "$p" 2>&1 || true)
	tot=$(echo "$out" | sed -n 's/^total: \([0-9]*\) errors, \([0-9]*\) warnings, \([0-9]*\) checks.*/\1 \2 \3/p')
	if [ "$tot" != "0 0 0" ]; then
		echo "$out" | grep -v '^$' >&2
		log "checkpatch: $(basename "$p"): $tot (errors warnings checks)"
		fail=1
	fi
done
log "checkpatch --strict --codespell: ${#series[@]} patch(es) checked"

# Every file the series adds has a maintainer: a MAINTAINERS entry with an M:
# covers it (get_maintainer.pl names someone with the "maintainer" role).
uncovered=0
while read -r f; do
	if ! scripts/get_maintainer.pl --nogit --nogit-fallback -f "$f" 2>/dev/null | grep -q '(maintainer:'; then
		log "no MAINTAINERS entry covers $f"
		uncovered=$((uncovered + 1))
	fi
done < <(git diff --name-only --diff-filter=A "$BASE_TAG" HEAD)
if [ "$uncovered" = 0 ]; then
	log "MAINTAINERS covers every added file"
else
	fail=1
fi

if ! kmake "$BUILD" rustfmtcheck >"$BUILD/rustfmt.log" 2>&1; then
	head -60 "$BUILD/rustfmt.log" >&2
	log "rustfmtcheck failed"
	fail=1
else
	log "rustfmtcheck clean"
fi

# The guest build ran with CLIPPY=1: any Rust warning in its log is a finding.
if grep -nE '^(warning|error)(\[[^]]*\])?: ' "$BUILD/build.log" >"$BUILD/clippy.log"; then
	grep -E -A12 '^(warning|error)(\[[^]]*\])?: ' "$BUILD/build.log" | head -80 >&2
	log "clippy/rustc: $(wc -l <"$BUILD/clippy.log") warning(s) in $BUILD/build.log"
	fail=1
else
	log "clippy clean"
fi

# The KUnit build has the test modules (#[kunit_tests]) that the guest build
# leaves out: lint the kernel crate there too.
if [ -f "$KUNIT_BUILD/.config" ]; then
	rm -f "$KUNIT_BUILD/rust/kernel.o"
	kmake "$KUNIT_BUILD" CLIPPY=1 rust/kernel.o >"$KUNIT_BUILD/clippy-build.log" 2>&1 ||
		{ tail -40 "$KUNIT_BUILD/clippy-build.log" >&2; log "kernel crate (KUnit config) does not build"; fail=1; }
	if grep -E -A12 '^(warning|error)(\[[^]]*\])?: ' "$KUNIT_BUILD/clippy-build.log" >&2; then
		log "clippy/rustc warnings in the KUnit build ($KUNIT_BUILD/clippy-build.log)"
		fail=1
	else
		log "clippy clean (KUnit config, with tests)"
	fi
else
	log "no KUnit build yet: test modules not linted (run 'make kunit' first)"
fi

if ! kmake "$BUILD" rustdoc >"$BUILD/rustdoc.log" 2>&1; then
	tail -40 "$BUILD/rustdoc.log" >&2
	log "rustdoc failed"
	fail=1
elif grep -E '^(warning|error)' "$BUILD/rustdoc.log" >&2; then
	log "rustdoc warnings"
	fail=1
else
	log "rustdoc clean"
fi

"$WB_TOP/workbench/added-files.sh" check || fail=1
[ $fail = 0 ] || die "make check found problems (see above)"
