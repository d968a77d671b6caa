#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the guest kernel of $TREE in $BUILD (incremental) with clippy, plus the
# uapi headers the selftests compile against.  The .config is regenerated from
# tinyconfig + config/guest.config (+ the fragments in $GUEST_EXTRA, which
# override it: config/bench.config for make bench) and replaced only when it
# changes.
. "$(dirname "$0")/lib.sh"

frag=$WB_TOP/config/guest.config
extra=()
for f in ${GUEST_EXTRA:-}; do extra+=("$WB_TOP/$f"); done
cfg=$CACHE/config-gen${GUEST_EXTRA:+-$(basename "${extra[-1]}" .config)}
mkdir -p "$cfg" "$BUILD"
log "generating the guest .config (tinyconfig + config/guest.config${GUEST_EXTRA:+ + $GUEST_EXTRA})"
kmake "$cfg" -s tinyconfig >"$cfg/gen.log" 2>&1 || { cat "$cfg/gen.log" >&2; die "tinyconfig failed"; }
"$TREE/scripts/kconfig/merge_config.sh" -m -O "$cfg" "$cfg/.config" "$frag" "${extra[@]}" >>"$cfg/gen.log" 2>&1
kmake "$cfg" -s olddefconfig >>"$cfg/gen.log" 2>&1 || { cat "$cfg/gen.log" >&2; die "olddefconfig failed"; }
# Each symbol as the last fragment that names it sets it.
missing=$(cat "$frag" "${extra[@]}" |
	sed -n -e 's/^\(CONFIG_[A-Z0-9_]*\)=.*/\1 &/p' -e 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1 &/p' |
	awk '{sym=$1; sub(/^[^ ]+ /, ""); want[sym]=$0; if (!(sym in seen)) order[n++]=sym; seen[sym]=1}
	     END {for (i = 0; i < n; i++) print want[order[i]]}' |
	while read -r line; do
	case $line in
	"# "*) sym=${line#\# }; sym=${sym%% *}
		! grep -q "^$sym=" "$cfg/.config" || echo "$sym" ;;
	*) grep -qxF -- "$line" "$cfg/.config" || echo "${line%%=*}" ;;
	esac
done)
if [ -n "$missing" ]; then
	if echo "$missing" | grep -qx CONFIG_RUST; then
		kmake "$cfg" rustavailable >&2 || true
	fi
	die "config fragment symbols not as asked after olddefconfig: $(echo $missing)"
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
