# SPDX-License-Identifier: GPL-2.0
# Common settings for the workbench scripts; sourced, never run.
set -euo pipefail

WB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CACHE:-$HOME/.cache/pagemap-rs}
TREE=${TREE:-$CACHE/linux}          # the kernel tree: base + series, where developers edit
AMTREE=${AMTREE:-$CACHE/am}         # scratch worktree where `git am` runs
BUILD=${BUILD:-$CACHE/build-guest}  # O= for the guest kernel
KUNIT_BUILD=${KUNIT_BUILD:-$CACHE/build-kunit}
PATCHES=${PATCHES:-$WB_TOP/patches}
LLVM_SUFFIX=${LLVM_SUFFIX:--22}
JOBS=${JOBS:-$(nproc)}
# The revision of the series: [PATCH vN] (series.sh, send-check.sh).
REVISION=${REVISION:-2}
BASE_VERSION=$(cat "$WB_TOP/BASE")
# Git refs cannot contain '~'.
BASE_TAG="base-$(printf '%s' "$BASE_VERSION" | tr '~:' '__')"

export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm$LLVM_SUFFIX/lib}
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[wb] %s\n' "$*" >&2; }
die() { printf '[wb] ERROR: %s\n' "$*" >&2; exit 1; }

kmake() {
	make -C "$TREE" O="$1" ARCH=x86_64 LLVM="$LLVM_SUFFIX" -j"$JOBS" "${@:2}"
}
