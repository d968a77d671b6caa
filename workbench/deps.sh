#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the workbench needs, only where it is missing.  Idempotent.
. "$(dirname "$0")/lib.sh"

PKGS=(clang-22 lld-22 llvm-22 libclang-22-dev flex bison bc cpio libelf-dev libssl-dev
      qemu-system-x86 busybox-static codespell python3 gcc make git rsync
      debian-archive-keyring dwarves python3-ply python3-git)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root: install them with apt-get"
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q update >/dev/null || die "apt-get update failed"
	apt-get -q install -y --no-install-recommends "${missing[@]}" >"${TMPDIR:-/tmp}/wb-apt.log" 2>&1 ||
		{ tail -20 "${TMPDIR:-/tmp}/wb-apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
fi

command -v rustup >/dev/null || die "rustup not found (the Rust toolchain comes from rustup)"
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || {
	log "rustup component add rust-src"
	rustup component add rust-src >/dev/null 2>&1 || die "rustup component add rust-src failed"
}
for c in rustfmt clippy; do
	rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 ||
		die "rustup component add $c failed"
done
if ! bindgen --version 2>/dev/null | grep -q '^bindgen 0\.72\.'; then
	log "cargo install --locked bindgen-cli@0.72 (a few minutes)"
	cargo install -q --locked bindgen-cli --version '^0.72' >/dev/null 2>&1 || die "cargo install bindgen-cli failed"
fi
for t in clang$LLVM_SUFFIX ld.lld$LLVM_SUFFIX qemu-system-x86_64 busybox rustc bindgen codespell; do
	command -v "$t" >/dev/null || die "required tool '$t' is missing after installation"
done
[ -e "$LIBCLANG_PATH/libclang.so" ] || ls "$LIBCLANG_PATH"/libclang*.so* >/dev/null 2>&1 ||
	die "no libclang in LIBCLANG_PATH=$LIBCLANG_PATH"
