#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The files the series adds under rust/ fs/ mm/ tools/ Documentation/ are kept
# in the project at their kernel paths.  `sync` copies them from $TREE (at the
# series' HEAD); `check` fails when the project's copies differ from what the
# series produces (it applies patches/ in the scratch worktree to find out).
. "$(dirname "$0")/lib.sh"

DIRS=(rust fs mm tools Documentation)
mode=${1:-check}
cd "$TREE"
case $mode in
sync)	rev=HEAD ;;
check)	rev=$(AM_ONLY=1 "$WB_TOP/workbench/tree.sh") ;;
*)	die "usage: added-files.sh sync|check" ;;
esac
mapfile -t added < <(git diff --name-only --diff-filter=A "$BASE_TAG" "$rev" -- "${DIRS[@]}")
mapfile -t have < <(cd "$WB_TOP" && git ls-files --others --cached --exclude-standard -- "${DIRS[@]}" 2>/dev/null)

bad=0
if [ "$mode" = sync ]; then
	for f in "${have[@]}"; do
		printf '%s\n' "${added[@]}" | grep -qxF -- "$f" || { rm -f "$WB_TOP/$f"; log "removed $f (no longer added by the series)"; }
	done
	for f in "${added[@]}"; do
		mkdir -p "$WB_TOP/$(dirname "$f")"
		git show "$rev:$f" > "$WB_TOP/$f"
	done
	exit 0
fi
for f in "${added[@]}"; do
	if [ ! -f "$WB_TOP/$f" ]; then
		log "missing: $f (added by the series)"; bad=1
	elif ! git show "$rev:$f" | cmp -s - "$WB_TOP/$f"; then
		log "differs from the series: $f"; bad=1
	fi
done
for f in "${have[@]}"; do
	printf '%s\n' "${added[@]}" | grep -qxF -- "$f" || { log "not added by any patch: $f"; bad=1; }
done
[ $bad = 0 ] || die "files under ${DIRS[*]} are out of sync with patches/ (edit in $TREE, commit, 'make series')"
log "added files match the series (${#added[@]} file(s))"
