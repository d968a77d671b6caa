#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make $TREE = base + `git am $PATCHES/*.patch`.
#
# The patches are applied in a scratch worktree ($AMTREE) and $TREE is then
# switched to the result with `git checkout`, which rewrites only the files
# that differ: unchanged files keep their mtimes and the build stays
# incremental.  Uncommitted work or commits in $TREE that the series does not
# contain are never thrown away (FORCE=1 overrides).
. "$(dirname "$0")/lib.sh"

"$WB_TOP/workbench/base.sh"
cd "$TREE"
base=$(git rev-parse "$BASE_TAG^{commit}")

if [ ! -e "$AMTREE/.git" ]; then
	rm -rf "$AMTREE"
	git worktree prune
	git worktree add -q --detach "$AMTREE" "$base"
fi

mapfile -t series < <(find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' 2>/dev/null | sort)

cd "$AMTREE"
git am --abort >/dev/null 2>&1 || true
git checkout -q -f --detach "$base"
git clean -q -fdx
for p in "${series[@]}"; do
	if ! git am -q --3way "$p" >"$CACHE/am.log" 2>&1; then
		files=$(git diff --name-only --diff-filter=U 2>/dev/null || true)
		git am --abort >/dev/null 2>&1 || true
		files="$files $(git apply --check "$p" 2>&1 | sed -n 's/^error: patch failed: \(.*\):[0-9]*$/\1/p; s/^error: \(.*\): does not exist in index$/\1/p; s/^error: \(.*\): already exists in working directory$/\1/p; s/^error: \(.*\): No such file or directory$/\1/p' || true)"
		git am --abort >/dev/null 2>&1 || true
		sed 's/^/[wb]   /' "$CACHE/am.log" >&2
		die "patch $(basename "$p") does not apply; conflicting file(s): $(echo $files | tr ' ' '\n' | sort -u | tr '\n' ' ')"
	fi
done
new=$(git rev-parse HEAD)
log "series applied: ${#series[@]} patch(es) on $BASE_TAG -> ${new:0:12}"
if [ "${AM_ONLY:-0}" = 1 ]; then
	echo "$new"
	exit 0
fi

cd "$TREE"
cur=$(git rev-parse HEAD)
synced=$(cat .git/wb-synced 2>/dev/null || true)
if [ "$(git rev-parse "$cur^{tree}")" = "$(git rev-parse "$new^{tree}")" ] && [ -z "$(git status --porcelain --untracked-files=no)" ]; then
	# The same files can come from another split of the series into
	# patches, which bisect.sh must see: compare the commits too (their
	# messages and their trees: a hunk can move between patches whose
	# messages stay).  Switching between equal trees rewrites no file.
	if [ "$(git log --format='%T %B' "$base..$cur")" != "$(git log --format='%T %B' "$base..$new")" ]; then
		git checkout -q -B wb "$new"
		log "$TREE switched to the series' commits (same files, new split)"
	else
		log "$TREE already matches the series"
	fi
	git rev-parse HEAD > .git/wb-synced
	exit 0
fi
if [ "${FORCE:-0}" != 1 ]; then
	[ -z "$(git status --porcelain --untracked-files=no)" ] ||
		die "$TREE has uncommitted changes; commit them and run 'make series', or rerun with FORCE=1 to discard them"
	[ "$cur" = "$synced" ] || [ "$cur" = "$base" ] ||
		die "$TREE has commits not in patches/ (HEAD ${cur:0:12}); run 'make series' to keep them, or FORCE=1 to discard them"
fi
git checkout -q -f -B wb "$new"
git rev-parse HEAD > .git/wb-synced
log "$TREE now at $(git log --oneline -1)"
