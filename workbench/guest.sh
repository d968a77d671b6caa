#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the guest kernel of $BUILD under QEMU (TCG) with an initramfs that runs
# the given tests, then check the results with tapcheck.py.
#
#   guest.sh RUN-NAME [--expect FILE] SPEC...
#
# SPEC is NAME=COMMAND[@TIMEOUT] (TAP output expected) or raw:NAME=COMMAND
# (free-form output; only the exit code and the kernel log count).  COMMAND
# runs in /st of the guest, where the selftests and workbench programs are.
. "$(dirname "$0")/lib.sh"

run=$1; shift
expect=()
if [ "${1:-}" = --expect ]; then expect=(--expect "$2"); shift 2; fi
[ -f "$BUILD/arch/x86/boot/bzImage" ] || die "no guest kernel in $BUILD; run 'make build'"

ST=$CACHE/st
"$WB_TOP/workbench/programs.sh"

rd=$CACHE/runs/$run
rm -rf "$rd"; mkdir -p "$rd/root"/{bin,dev,proc,sys,tmp,st}
cp /bin/busybox "$rd/root/bin/busybox"
install -m 755 "$WB_TOP/workbench/guest/init" "$rd/root/init"
install -m 755 "$WB_TOP/workbench/guest/impl" "$rd/root/st/impl"
cp -a "$ST"/. "$rd/root/st/"
specs=()
for s in "$@"; do
	kind=tap
	case $s in raw:*) kind=raw; s=${s#raw:} ;; esac
	name=${s%%=*}; cmd=${s#*=}; tmo=1200
	case $cmd in *@[0-9]*) tmo=${cmd##*@}; cmd=${cmd%@*} ;; esac
	printf '%s|%s|%s\n' "$name" "$tmo" "$cmd" >> "$rd/root/st/tests.list"
	specs+=("$kind:$name")
done
(cd "$rd/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$rd/initramfs.gz"

timeout_s=${GUEST_TIMEOUT:-2400}
log "booting $run under QEMU/TCG (console: $rd/console.log, tests: $rd/tests.log)"
start=$(date +%s)
set +e
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel "${QEMU_ACCEL:-tcg,thread=multi}" -smp 2 -m 3G -nographic -no-reboot \
	-kernel "$BUILD/arch/x86/boot/bzImage" -initrd "$rd/initramfs.gz" \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=7 transparent_hugepage=always numa=fake=2 ${GUEST_APPEND:-}" \
	-monitor none -serial "file:$rd/console.log" -serial "file:$rd/tests.log" \
	-display none ${QEMU_EXTRA:-} >"$rd/qemu.log" 2>&1 </dev/null
qrc=$?
set -e
log "guest ran $(( $(date +%s) - start ))s (qemu exit $qrc)"
[ $qrc = 124 ] && echo "@@@ TIMEOUT after ${timeout_s}s" >> "$rd/tests.log"
python3 "$WB_TOP/workbench/tapcheck.py" --console "$rd/console.log" --tests "$rd/tests.log" \
	"${expect[@]}" "${specs[@]}"
