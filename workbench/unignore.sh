#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Debian's linux-source adds "/*" to the top-level .gitignore (for its
# packaging), which makes git ignore every new file of the series.  Drop that
# block from the work tree's .gitignore only: the committed base keeps
# Debian's file, and skip-worktree keeps the local edit out of commits.
set -euo pipefail
cd "$1"
if grep -qx '/\*' .gitignore; then
	git update-index --skip-worktree .gitignore
	sed -i '/^# Debian packaging: ignore everything at the top level/,$d' .gitignore
	sed -i -e :a -e '/^\n*$/{$d;N;ba' -e '}' .gitignore
	sed -i '${/^#$/d}' .gitignore
fi
