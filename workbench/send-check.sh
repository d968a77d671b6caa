#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make send-check`: send the series the way README says a sender does, without
# sending anything.  In a scratch worktree of the applied series ($TREE HEAD):
#
#   b4 prep --enroll BASE; b4 prep --edit-cover (workbench/cover-letter.txt);
#   b4 prep --force-revision $REVISION; b4 prep --auto-to-cc; b4 prep --check;
#   b4 send -o DIR --no-sign
#
# with the project's .b4-config, then checks the mails (workbench/mailcheck.py):
# a cover letter carrying the series' own text and the patches in reply to it,
# every mail addressed to the maintainers in .b4-config and to the
# get_maintainer.pl names of the files its patch touches.  b4 prep --check
# must report no error (a warning only for the Fixes: ids the base tree, which
# has no history, cannot look up).  b4 and what checkpatch.pl runs (ply and
# GitPython for spdxcheck.py, codespell's dictionary) come from PyPI into a
# virtualenv under the cache.
. "$(dirname "$0")/lib.sh"

SENDTREE=${SENDTREE:-$TREE}
SIGNOFF=${SIGNOFF:-"Series Sender <sender@example.invalid>"}
VENV=${B4_VENV:-$CACHE/b4-venv}
WT=$CACHE/send
OUT=$CACHE/send-out
B4_VERSION=0.16.0

if ! "$VENV/bin/b4" --version 2>/dev/null | grep -qxF "$B4_VERSION" ||
   ! "$VENV/bin/python3" -c 'import ply, git, codespell_lib' 2>/dev/null; then
	log "installing b4 $B4_VERSION, ply, GitPython and codespell into $VENV"
	rm -rf "$VENV"
	python3 -m venv "$VENV" || die "python3 -m venv failed"
	"$VENV/bin/pip" -q install "b4==$B4_VERSION" ply GitPython codespell >"$CACHE/b4-pip.log" 2>&1 ||
		{ tail -20 "$CACHE/b4-pip.log" >&2; die "pip install b4 failed"; }
fi

git -C "$SENDTREE" rev-parse -q --verify "refs/tags/$BASE_TAG" >/dev/null || die "no base tag in $SENDTREE"
n=$(git -C "$SENDTREE" rev-list --count "$BASE_TAG..HEAD")
[ "$n" -gt 0 ] || die "no patches on $BASE_TAG in $SENDTREE"

# A fresh worktree on a branch of its own: b4 prep adds a cover-letter commit.
git -C "$SENDTREE" worktree remove -f "$WT" >/dev/null 2>&1 || rm -rf "$WT"
git -C "$SENDTREE" worktree prune
# One branch per scratch worktree (a branch can be checked out only once).
branch=wb-send-$(printf '%s' "$WT" | md5sum | cut -c1-8)
git -C "$SENDTREE" worktree add -q -f -B "$branch" "$WT" HEAD || die "git worktree add $WT failed"
cp "$WB_TOP/.b4-config" "$WT/.b4-config"

# The sender's identity, and no SMTP server: b4 writes the mails to $OUT.
name=${SIGNOFF% <*}; email=${SIGNOFF##*<}; email=${email%>}
export GIT_CONFIG_COUNT=3 GIT_CONFIG_KEY_0=user.name GIT_CONFIG_VALUE_0="$name" \
	GIT_CONFIG_KEY_1=user.email GIT_CONFIG_VALUE_1="$email" \
	GIT_CONFIG_KEY_2=sendemail.smtpServer GIT_CONFIG_VALUE_2=/bin/false
export PATH="$VENV/bin:$PATH" XDG_CACHE_HOME=$CACHE/send-b4cache XDG_DATA_HOME=$CACHE/send-b4data
rm -rf "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$OUT"

cd "$WT"
b4q() { local out; out=$(b4 "$@" 2>&1) || { printf '%s\n' "$out" >&2; die "b4 $* failed"; }; }
b4q prep --enroll "$BASE_TAG"
EDITOR="cp $WB_TOP/workbench/cover-letter.txt" b4q prep --edit-cover
[ "$REVISION" -gt 1 ] && b4q prep --force-revision "$REVISION"
b4q prep --auto-to-cc

log "b4 prep --check (the .b4-config per-patch check: checkpatch.pl --strict --codespell)"
b4 prep --check >"$CACHE/send-check.log" 2>&1 || true
sed 's/\x1b\[[0-9;]*m//g' "$CACHE/send-check.log" > "$CACHE/send-check.txt"
summary=$(grep -E '^Success: [0-9]+, Warning: [0-9]+, Error: [0-9]+' "$CACHE/send-check.txt" | tail -1)
[ -n "$summary" ] || { cat "$CACHE/send-check.txt" >&2; die "b4 prep --check printed no summary"; }
log "b4 prep --check: $summary"
bad=$(grep -E 'checkpatch\.pl:' "$CACHE/send-check.txt" | grep -v "Unknown commit id" || true)

b4q send -o "$OUT" --no-sign

python3 "$WB_TOP/workbench/mailcheck.py" --out "$OUT" --tree "$WT" --b4-config "$WB_TOP/.b4-config" \
	--cover "$WB_TOP/workbench/cover-letter.txt" --patches "$n" --revision "$REVISION" \
	--check-summary "$summary" --check-problems "$bad"
