#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Regenerate patches/ from the commits base..HEAD of $TREE and refresh the
# files the series adds under rust/ fs/ mm/ tools/ Documentation/.
#
# Every commit gets "Signed-off-by: $SIGNOFF" (the sender signs) before the
# patches are written.  The cover letter text is workbench/cover-letter.txt:
# its first line is the subject, the rest the body.
. "$(dirname "$0")/lib.sh"

SIGNOFF=${SIGNOFF:-"Series Sender <sender@example.invalid>"}
cd "$TREE"
git rev-parse -q --verify "refs/tags/$BASE_TAG" >/dev/null || die "no base tree; run 'make tree' first"
[ -z "$(git status --porcelain --untracked-files=no)" ] || die "$TREE has uncommitted changes: commit them first"
n=$(git rev-list --count "$BASE_TAG..HEAD")
git merge-base --is-ancestor "$BASE_TAG" HEAD || die "HEAD of $TREE does not descend from $BASE_TAG"

# The sender is the author of every patch and signs each one.
unsigned=$(git rev-list "$BASE_TAG..HEAD" | while read -r c; do
	if ! git log -1 --format=%B "$c" | grep -qxF "Signed-off-by: $SIGNOFF" ||
	   [ "$(git log -1 --format='%an <%ae>' "$c")" != "$SIGNOFF" ]; then
		echo "$c"
	fi
done)
if [ -n "$unsigned" ]; then
	# Stamp author and sign-off (idempotent: an identical trailer is not
	# added twice; the author date stays).
	git -c trailer.ifexists=addIfDifferent rebase -q "$BASE_TAG" \
		--exec "git -c trailer.ifexists=addIfDifferent commit -q --amend --no-edit --no-verify --author '$SIGNOFF' --trailer 'Signed-off-by: $SIGNOFF'"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$n" -gt 0 ]; then
	cover=$WB_TOP/workbench/cover-letter.txt
	git format-patch -q --cover-letter --base="$BASE_TAG" --no-thread \
		--subject-prefix="PATCH$([ "$REVISION" -gt 1 ] && echo " v$REVISION")" -o "$tmp" "$BASE_TAG..HEAD"
	if [ -f "$cover" ]; then
		python3 "$WB_TOP/workbench/cover.py" "$tmp"/0000-cover-letter.patch "$cover"
	fi
fi
rm -f "$PATCHES"/*.patch
mkdir -p "$PATCHES"
cp "$tmp"/*.patch "$PATCHES"/ 2>/dev/null || true
git rev-parse HEAD > "$(git rev-parse --git-dir)/wb-synced"
"$WB_TOP/workbench/added-files.sh" sync
log "patches/: $n patch(es) + cover letter; added files refreshed"
