#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest kernel of $TREE in $BUILD (incremental) with clippy, plus the
# uapi headers the selftests compile against.  The .config is regenerated from
# tinyconfig + config/guest.config and replaced only when it changes.
. "$(dirname "$0")/lib.sh"

frag=$WB_TOP/config/guest.config
cfg=$CACHE/config-gen
mkdir -p "$cfg" "$BUILD"
log "generating the guest .config (tinyconfig + config/guest.config)"
kmake "$cfg" -s tinyconfig >"$cfg/gen.log" 2>&1 || { cat "$cfg/gen.log" >&2; die "tinyconfig failed"; }
"$TREE/scripts/kconfig/merge_config.sh" -m -O "$cfg" "$cfg/.config" "$frag" >>"$cfg/gen.log" 2>&1
kmake "$cfg" -s olddefconfig >>"$cfg/gen.log" 2>&1 || { cat "$cfg/gen.log" >&2; die "olddefconfig failed"; }
missing=$(grep -E '^CONFIG_[A-Z0-9_]+=' "$frag" | while read -r line; do
	grep -qxF -- "$line" "$cfg/.config" || echo "${line%%=*}"
done)
if [ -n "$missing" ]; then
	if echo "$missing" | grep -qx CONFIG_RUST; then
		kmake "$cfg" rustavailable >&2 || true
	fi
	die "config/guest.config symbols not set after olddefconfig: $(echo $missing)"
fi
if ! cmp -s "$cfg/.config" "$BUILD/.config"; then
	cp "$cfg/.config" "$BUILD/.config"
	log "guest .config updated"
fi

log "building the guest kernel in $BUILD (log: $BUILD/build.log)"
start=$(date +%s)
if ! kmake "$BUILD" CLIPPY=1 bzImage headers >"$BUILD/build.log" 2>&1; then
	grep -E -B2 -A8 'error(\[E[0-9]+\])?:|Error [0-9]+' "$BUILD/build.log" | tail -60 >&2
	die "guest kernel build failed (full log: $BUILD/build.log)"
fi
log "guest kernel built in $(( $(date +%s) - start ))s: $BUILD/arch/x86/boot/bzImage"
